"""Provisioning: read facts, plan per node and resource, then apply only where they differ.

Reading (facts), deciding (plan) and changing (apply) stay apart, as in pyinfra: the plan
is a pure function of the one-probe facts and the wanted state; apply never decides.
"""

# Exit statuses of `preflight provision` (README: provisioning).
NOTHING_TO_DO = 0
CHANGES_PENDING = 10  # the plan has work; nothing was changed
FAILED = 1  # apply: an action failed, a node was unreachable, or the checks after it fail
CONFIG_ERROR = 2  # cluster.yaml, environment.yml, the lock, the installer or the solve
