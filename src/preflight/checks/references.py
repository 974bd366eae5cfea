"""Bus bandwidth references: what `nccl.min_busbw_gbps: auto` compares a run against.

The numbers are data (data/busbw_references.yaml, each with its source), looked up by the
cluster's GPU model (the plurality of nvidia-smi's product names), GPUs per node and the
link cluster.yaml names (`nccl.link`). A user's own file of the same shape replaces the
built-in one (`nccl.references`).
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from preflight.config import yamlpos
from preflight.core.errors import UserError
from preflight.core.nodetext import one_line

BUILT_IN = Path(__file__).parents[1] / "data" / "busbw_references.yaml"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    gpu: str = Field(min_length=1)
    gpus_per_node: int = Field(ge=0, le=64)
    link: str = Field(min_length=1)
    busbw_gbps: float = Field(gt=0)
    tolerance: float = Field(0.1, ge=0, lt=1)
    bytes: int = Field(ge=4)
    source: str = Field(min_length=1)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    references: list[_Entry]


@dataclass(frozen=True)
class Reference:
    gpu: str
    gpus_per_node: int
    link: str
    busbw_gbps: float
    tolerance: float
    bytes: int
    source: str

    @property
    def floor(self) -> float:
        """The lowest busbw that passes."""
        return self.busbw_gbps * (1 - self.tolerance)


@dataclass(frozen=True)
class Threshold:
    """What the busbw check compares against, or why there is nothing to compare with."""

    floor_gbps: float | None
    wanted_gbps: float | None
    tolerance: float
    source: str  # "cluster.yaml" or the reference's source, or why none applies

    def as_dict(self) -> dict:
        return {"floor_gbps": self.floor_gbps, "wanted_gbps": self.wanted_gbps,
                "tolerance": self.tolerance, "source": self.source}


def load(path: Path = BUILT_IN) -> tuple[Reference, ...]:
    doc = yamlpos.load(path, "bandwidth references")
    try:
        spec = _File.model_validate(doc.data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        raise UserError(f"{doc.where(loc)}: {'.'.join(map(str, loc))}: "
                        f"{error['msg'].lower()}") from None
    return tuple(Reference(**entry.model_dump()) for entry in spec.references)


def gpu_model(stacks: dict[str, dict]) -> tuple[str, int]:
    """The plurality GPU model and count per node, from nvidia-smi's report of each node
    ({"gpus": [{"name": ...}]}); ("none", 0) on CPU-only nodes."""
    seen = Counter()
    for report in stacks.values():
        names = [g.get("name", "") for g in report.get("gpus", ())]
        if names:
            seen[(Counter(names).most_common(1)[0][0], len(names))] += 1
    return seen.most_common(1)[0][0] if seen else ("none", 0)


def lookup(refs: tuple[Reference, ...], gpu: str, gpus: int, link: str) -> Reference | None:
    return next((r for r in refs if fnmatch.fnmatchcase(gpu, r.gpu)
                 and r.gpus_per_node == gpus and r.link == link), None)


def threshold(setting, tolerance: float, link: str | None, refs: tuple[Reference, ...], *,
              gpu: str, gpus: int) -> Threshold:
    """cluster.yaml's min_busbw_gbps: a number, "auto" (the reference) or None."""
    if setting is None:
        return Threshold(None, None, tolerance, "no min_busbw_gbps in cluster.yaml")
    if setting != "auto":
        return Threshold(setting * (1 - tolerance), setting, tolerance, "cluster.yaml")
    if link is None:
        return Threshold(None, None, tolerance, "min_busbw_gbps is auto but cluster.yaml "
                         "names no nccl.link to look the reference up by")
    ref = lookup(refs, gpu, gpus, link)
    if ref is None:
        return Threshold(None, None, tolerance, f"no bandwidth reference for "
                         f"{one_line(gpu, 80)} x {gpus} on link {one_line(link, 60)}")
    return Threshold(ref.floor, ref.busbw_gbps, ref.tolerance, ref.source)


def for_cluster(cluster, cluster_facts: dict[str, dict]) -> Threshold:
    """The threshold for this cluster: its setting, its GPUs (usable nodes' nvidia-smi
    reports) and its link; a bad references file raises UserError."""
    from preflight.checks import cuda
    from preflight.facts import contract
    s = cluster.nccl
    refs: tuple[Reference, ...] = ()
    if s.min_busbw_gbps == "auto":
        refs = load(cluster.path.parent / Path(s.references).expanduser()
                    if s.references else BUILT_IN)
    stacks = {n: cuda.smi(f) or {} for n, f in contract.usable(cluster_facts, "gpu").items()}
    gpu, count = gpu_model(stacks)
    return threshold(s.min_busbw_gbps, s.busbw_tolerance, s.link, refs, gpu=gpu, gpus=count)
