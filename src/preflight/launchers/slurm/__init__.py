"""Slurm as the launcher (`launcher: slurm` in cluster.yaml): the probe runs as one job
step on every node inside one allocation held for the run (the cluster-wide checks run as
further steps of it), instead of one SSH session per node; failed nodes can be drained
with a prefixed reason and resumed when they pass again.

login.py  where Slurm commands run (the login node over SSH, or this machine)
alloc.py  node states, the allocation held by a live salloc, steps inside it
probe.py  the facts of every node from one srun step
runjob.py the run's job (the probe's allocation, held to the end) and steps attached to it
steps.py  per-node commands as one step, each bounded on its node (collective, master port,
          node-to-node logins)
drain.py  drain what failed, resume only what we drained and now passes
"""
