"""Slurm as the launcher (`launcher: slurm` in cluster.yaml): the probe runs as one job
step on every node inside one allocation, instead of one SSH session per node; failed
nodes can be drained with a prefixed reason and resumed when they pass again.

login.py  where Slurm commands run (the login node over SSH, or this machine)
alloc.py  node states, the allocation held by a live salloc, steps inside it
probe.py  the facts of every node from one srun step
drain.py  drain what failed, resume only what we drained and now passes
"""
