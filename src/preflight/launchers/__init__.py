"""Stage 2, how we reach nodes: gather facts, run one command per node under a deadline,
hold and release a run's allocation. SSH, Slurm and the node itself behind one interface."""
