"""The facts contract: every section of the probe's document with its declared shape.

Facts come from machines we do not control, so the controller checks each node's document
against these shapes before any check reads it (the way pyinfra declares its facts). A
section that failed on the node, or does not fit its shape, is *broken*: it is left out
of the node's facts and every check that reads it ERRORS on that node with the cause;
checks on other nodes and cross-node votes leave that node out. Checks never see a
section of the wrong shape.

    >>> doc = validate({"reach": {"ok": "false", "reason": None}}, Expect())
    >>> doc["reach"]["ok"], doc["reach"]["reason"]
    (False, 'facts document does not fit: reach.ok: Input should be a valid boolean')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from preflight.core.nodetext import clean
from preflight.facts import shapes

SECTIONS = shapes.SECTIONS  # declared with the shapes, one place per section
CAUSE_MAX = 300  # characters of a node-side cause kept in a finding

# Validated strictly ("false" is no bool); keys beyond the declared ones are kept as sent.
_ADAPTERS = {name: TypeAdapter(shape) for name, shape in SECTIONS.items()}
_REACH = TypeAdapter(shapes.Reach)


@dataclass(frozen=True)
class Expect:
    """What cluster.yaml asked the probe for: a null optional section is then right."""

    off: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, cluster) -> Expect:
        off = {"ssh"} if not cluster.ssh.check else set()
        off |= {"jupyter"} if not cluster.jupyter.check else set()
        off |= {"sync"} if cluster.sync_source is None else set()
        off |= {"peer_logins"} if cluster.ssh.node_to_node is False else set()
        return cls(frozenset(off))


class SectionBroken(AssertionError):
    """A check read a section that is broken on this node; never a pass."""


class Facts(dict):
    """One node's validated facts; reading a broken section raises SectionBroken."""

    def __getitem__(self, key):
        self._guard(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._guard(key)
        return super().get(key, default)

    def _guard(self, key) -> None:
        broken = dict.get(self, "broken") or {}
        if key in broken:
            msg = f"{dict.get(self, 'name', 'node')}: facts section '{key}' {broken[key]}"
            raise SectionBroken(msg)


def validate(doc: object, expect: Expect, name: str = "node") -> Facts:
    """A node's raw document -> Facts with reach, the sections that fit, and `broken`
    (section -> cause) for those that did not. Node-sent controller keys are replaced."""
    if not isinstance(doc, dict):
        return _unusable(name, f"facts document is a {type(doc).__name__}, not an object")
    try:
        reach = _REACH.validate_python(doc.get("reach"), strict=True)
    except ValidationError as exc:
        return _unusable(name, f"facts document does not fit: reach{_first_error(exc)}")
    out = Facts(name=name, reach=dict(reach), broken={})
    if not reach["ok"]:
        return out
    errors = doc.get("probe_errors") if isinstance(doc.get("probe_errors"), dict) else {}
    for section, adapter in _ADAPTERS.items():
        cause = _section_cause(section, doc, errors, expect, adapter)
        if cause is None:
            out[section] = doc.get(section)
        else:
            out["broken"][section] = cause
    for key in ("probe_version", "probe_seconds", "section_seconds", "probe_started",
                "probe_ended"):
        if key in doc:
            out[key] = doc[key]
    return out


def _section_cause(section: str, doc: dict, errors: dict, expect: Expect,
                   adapter: TypeAdapter) -> str | None:
    if section in errors:
        return "failed on the node: " + clean(errors[section], CAUSE_MAX)
    value = doc.get(section)
    if value is None:
        if section in expect.off:
            return None
        return "is missing from the node's facts" if section not in doc else \
            "is null although cluster.yaml asks for it"
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError as exc:
        return "does not fit its declared shape: " + section + _first_error(exc)
    return None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    more = exc.error_count() - 1
    return clean(f"{where}: {first['msg']}" + (f" (and {more} more)" if more else ""), CAUSE_MAX)


def _unusable(name: str, reason: str) -> Facts:
    return Facts(name=name, reach={"ok": False, "reason": reason, "executions": 0},
                 broken={})


def validate_all(gathered: object, expect: Expect, selected: list[str]) -> tuple[
        dict[str, Facts], list[str]]:
    """Facts of the selected nodes, validated; and the names of nodes in the document
    that are not selected (ignored: they must not vote on what the others should have)."""
    docs = gathered if isinstance(gathered, dict) else {}
    out = {name: validate(docs[name], expect, name) if name in docs else
           _unusable(name, "no facts were gathered for it") for name in selected}
    return out, sorted(set(docs) - set(selected), key=str)


def usable(cluster_facts: dict[str, dict], *sections: str) -> dict[str, dict]:
    """The nodes that were reached and whose given sections are intact: the only ones
    that take part in a cross-node comparison of those sections."""
    return {name: f for name, f in cluster_facts.items()
            if f["reach"]["ok"] and not set(sections) & set(dict.get(f, "broken") or {})}


def broken_cause(facts: dict, sections: tuple[str, ...]) -> str | None:
    """Why a check reading these sections cannot run on this node, or None."""
    broken = dict.get(facts, "broken") or {}
    causes = [f"facts section '{s}' {broken[s]}" for s in sections if s in broken]
    return "; ".join(causes) or None


def wrap(doc: dict) -> Facts:
    """Facts again from a document the controller validated and saved (xdist workers)."""
    return Facts(doc)
