"""waivers.yaml: failures ops know about and accept for a while, each with an owner and
an end date. A waived failure is reported as waived (JUnit: skipped, with the reason and
expiry), never as a pass; past its date it fails again and says so.

    waivers:
      - check: test_gpu_count_*        # fnmatch pattern on the check (test function) name
        nodes: worker-[7-9]            # the inventory's range syntax
        reason: GPU 3 out for RMA, ticket OPS-1234
        owner: alice@example.com
        expires: 2026-12-31            # last day it applies
"""

from __future__ import annotations

import datetime
import fnmatch
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from preflight.config import yamlpos
from preflight.config.clusterfile import picture
from preflight.config.noderange import expand_nodes
from preflight.core.errors import UserError, did_you_mean
from preflight.core.nodetext import one_line


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    check: str = Field(min_length=1, max_length=200)
    nodes: str = Field(min_length=1, max_length=2000)
    reason: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=200)
    expires: datetime.date = Field(strict=False)  # YAML's date, or the same as a string


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    waivers: list[_Entry] = []


@dataclass(frozen=True)
class Waiver:
    id: str  # "waivers.yaml:12": where ops find it
    check: str
    nodes: frozenset[str]
    node_pattern: str
    reason: str
    owner: str
    expires: datetime.date

    def matches(self, check: str, node: str) -> bool:
        return node in self.nodes and fnmatch.fnmatchcase(check, self.check)

    def expired(self, today: datetime.date) -> bool:
        return today > self.expires

    def describe(self) -> str:
        return f"{self.reason} (owner {self.owner}, expires {self.expires}, {self.id})"

    def as_dict(self) -> dict:
        return {"id": self.id, "check": self.check, "nodes": self.node_pattern,
                "reason": self.reason, "owner": self.owner, "expires": str(self.expires)}


def load(path: Path) -> tuple[Waiver, ...]:
    """Read waivers.yaml; a mistake raises UserError naming file and line."""
    doc = yamlpos.load(path, "waivers")
    if doc.data is None:
        return ()
    if not isinstance(doc.data, dict):
        raise UserError(f"{path}:1: expected a mapping with a 'waivers' list")
    try:
        spec = _File.model_validate(doc.data)
    except ValidationError as exc:
        raise UserError(_explain(exc.errors()[0], doc)) from None
    out = []
    for index, entry in enumerate(spec.waivers):
        where = doc.where(("waivers", index))
        names = frozenset(expand_nodes(entry.nodes, f"{where}: nodes"))
        out.append(Waiver(where.rsplit("/", 1)[-1], entry.check, names, entry.nodes,
                          entry.reason, entry.owner, entry.expires))
    return tuple(out)


def _explain(error: dict, doc: yamlpos.Located) -> str:
    loc = tuple(error["loc"])
    where = doc.where(loc)
    if error["type"] == "extra_forbidden":
        valid = _Entry.model_fields if len(loc) > 1 else _File.model_fields
        return f"{where}: unknown key '{one_line(loc[-1], 60)}'" + did_you_mean(loc[-1], valid)
    if error["type"] == "missing":
        return f"{where}: '{loc[-1]}' is required in every waiver " \
               "(check, nodes, reason, owner, expires)"
    key = ".".join(str(part) for part in loc)
    return f"{where}: {key}: {error['msg'].lower()}, got {picture(error)}"


def find(waivers: tuple[Waiver, ...], check: str, node: str,
         today: datetime.date) -> Waiver | None:
    """The waiver for this check on this node: a live one first, else an expired one (so
    the failure can say its waiver ran out)."""
    matching = [w for w in waivers if w.matches(check, node)]
    return next((w for w in matching if not w.expired(today)), None) or \
        next(iter(matching), None)
