"""The run's state, in one object: made by the controlling process, handed to each xdist
worker through its workerinput, kept in config.stash. No module globals: a worker knows
the run id, the validated facts file and the launcher's state (the Slurm job it holds)
only from here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

WORKERINPUT = "preflight_run"  # workerinput key: RunState.as_dict()


@dataclass
class RunState:
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    checked_facts: str | None = None  # the validated facts, a private file of this run
    launcher: dict = field(default_factory=dict)  # the launcher's as_state()

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "checked_facts": self.checked_facts,
                "launcher": self.launcher}

    @classmethod
    def from_dict(cls, doc: dict) -> RunState:
        return cls(str(doc["run_id"]), doc.get("checked_facts"), dict(doc.get("launcher") or {}))


# config.stash keys, set in pytest_configure (pytest_plugin.py), read by fixtures anywhere
CLUSTER = pytest.StashKey[object]()  # the validated cluster.yaml (config.inventory.Cluster)
NODES = pytest.StashKey[list]()  # the selected nodes, sorted
LOCK = pytest.StashKey[object]()
FACTS = pytest.StashKey[dict]()  # node -> validated facts
STATE = pytest.StashKey[RunState]()
LAUNCHER = pytest.StashKey[object]()  # the run's launcher (launchers.base.Launcher)
