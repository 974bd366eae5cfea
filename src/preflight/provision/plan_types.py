"""One planned action: a node, a resource, a verb and the reason.

    >>> str(Action("node-2", "env", "replace", "pip-installed nvidia-nccl-cu11 2.21.5",
    ...            "269.8 MB env archive"))
    'node-2  env         replace  pip-installed nvidia-nccl-cu11 2.21.5 [269.8 MB env archive]'
"""

from __future__ import annotations

from dataclasses import dataclass, field

VERBS = ("ok", "create", "update", "replace", "error")


@dataclass(frozen=True)
class Action:
    node: str
    resource: str
    verb: str  # one of VERBS; error: the facts needed to decide are missing or broken
    reason: str = ""
    transfer: str = ""  # what will travel to the node, for the plan's reader
    detail: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def changes(self) -> bool:
        return self.verb in ("create", "update", "replace")

    def __str__(self) -> str:
        sent = f" [{self.transfer}]" if self.transfer else ""
        return f"{self.node}  {self.resource:<10}  {self.verb:<7}  {self.reason}{sent}".rstrip()
