"""`dcgmi diag -r LEVEL -j` output, parsed: one result per test and GPU (or per test for
the node), with DCGM's own severity turned into ours.

Two layouts are read. DCGM 3 prints {"DCGM GPU Diagnostic": {"test_categories": [...],
"version": ...}} with `gpu_ids` on each result; DCGM 4 prints {"DCGM Diagnostic":
{"test_categories": [...]}, "metadata": {"version": ...}} with `entity_group`/`entity_id`.
Both put warnings as {"warning", "error_id", "error_category", "error_severity"} (names in
DCGM's nvvs/include/NvvsJsonStrings.h). A run that could not start says so in
`runtime_error`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# dcgmErrorSeverity_t (dcgm_errors.h) -> what ops should do (findings.SEVERITIES):
# ISOLATE "cannot perform workload" drains, RESET "drain and reset GPU" is a reboot;
# MONITOR, UNKNOWN, TRIAGE and CONFIG (e.g. persistence mode off) are for a look.
SEVERITY = {2: "drain", 6: "reboot", 1: "investigate", 3: "investigate", 4: "investigate",
            5: "investigate"}
ROOTS = ("DCGM Diagnostic", "DCGM GPU Diagnostic")
NOT_RUN = ("Skip", "Not Run", "NotRun")
RESULTS_MAX = 4096  # results kept from one document (8 GPUs x ~30 tests at level 4)


class DiagError(ValueError):
    """The text is not dcgmi diag JSON we understand."""


@dataclass(frozen=True)
class Message:
    text: str
    error_id: int | None
    severity: int | None


@dataclass(frozen=True)
class Result:
    category: str
    test: str
    entity: str  # "GPU 3", or "node" for a test of the whole node
    status: str  # Pass, Fail, Warn, Skip, Not Run
    warnings: tuple[Message, ...] = ()
    info: tuple[str, ...] = ()


@dataclass
class Diag:
    version: str | None
    runtime_error: str | None
    results: list[Result] = field(default_factory=list)

    @property
    def ran(self) -> list[Result]:
        """Results of tests that judged something (not skipped or not run)."""
        return [r for r in self.results if r.status not in NOT_RUN]


def parse(text: str) -> Diag:
    if "{" not in text:
        raise DiagError("no JSON in the output")
    try:
        doc = json.loads(text[text.find("{"):])
    except ValueError as exc:
        raise DiagError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DiagError(f"a JSON {type(doc).__name__}, not an object")
    root = next((doc[k] for k in ROOTS if isinstance(doc.get(k), dict)), None)
    if root is None:
        if isinstance(doc.get("runtime_error"), str):
            return Diag(None, doc["runtime_error"])
        raise DiagError(f"no {' or '.join(repr(k) for k in ROOTS)} object")
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    version = _str(root.get("version") or metadata.get("version"))
    error = root.get("runtime_error") or doc.get("runtime_error")
    diag = Diag(version, _str(error) if error else None)
    categories = root.get("test_categories")
    if not isinstance(categories, list):
        if diag.runtime_error:
            return diag
        raise DiagError("'test_categories' is not a list")
    for category in categories:
        for test in _list(_dict(category).get("tests")):
            for result in _list(_dict(test).get("results")):
                if len(diag.results) < RESULTS_MAX:
                    diag.results.append(_result(_str(_dict(category).get("category")),
                                                _str(_dict(test).get("name")), _dict(result)))
    return diag


def _result(category: str, test: str, result: dict) -> Result:
    info = result.get("info")  # a list of lines, or one string
    lines = [info] if isinstance(info, str) else _list(info)
    return Result(category or "?", test or "?", _entity(result),
                  _str(result.get("status")) or "?",
                  tuple(_warning(w) for w in _list(result.get("warnings"))[:32]),
                  tuple(_str(line) for line in lines[:8]))


def _entity(result: dict) -> str:
    if "entity_id" in result:  # DCGM 4
        group = _str(result.get("entity_group")) or "GPU"
        return f"{group} {_str(result['entity_id'])}"
    ids = result.get("gpu_ids", result.get("gpu_id"))  # DCGM 3: "0" or "0,1,2"
    if ids is None or ids == "":
        return "node"
    return f"GPU {_str(ids)}"


def _warning(warning) -> Message:
    if not isinstance(warning, dict):
        return Message(_str(warning), None, None)
    return Message(_str(warning.get("warning")), _int(warning.get("error_id")),
                    _int(warning.get("error_severity")))


def severity(result: Result) -> str:
    """Ours for a failed or warned result: the most urgent of its warnings' DCGM
    severities; without one, a failed hardware test drains and the rest asks for a look
    (a Deployment failure is configuration: persistence mode, a driver library)."""
    ours = [SEVERITY[w.severity] for w in result.warnings if w.severity in SEVERITY]
    for level in ("drain", "reboot", "investigate"):
        if level in ours:
            return level
    if result.status == "Fail" and result.category != "Deployment":
        return "drain"
    return "investigate"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _str(value) -> str:
    return "" if value is None else str(value)[:500]


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
