"""What a check reports: a difference between what a node should have and what it has."""

from __future__ import annotations

from dataclasses import dataclass, fields

from preflight.core.nodetext import clean


@dataclass(frozen=True)
class Finding:
    """One difference on one node. str() is the line ops read:

    >>> str(Finding("worker-2", "env pins", "pytorch=2.0.1", "pytorch 2.0.2", "3 others: 2.0.1"))
    'worker-2: env pins: expected pytorch=2.0.1, found pytorch 2.0.2 (3 others: 2.0.1)'
    """

    node: str
    check: str
    expected: str
    found: str
    hint: str = ""
    severity: str = ""  # "", or what ops should do: SEVERITIES

    def __post_init__(self) -> None:
        # node text is data: redacted, control characters visible, capped (nodetext)
        for part in fields(self):
            object.__setattr__(self, part.name, clean(getattr(self, part.name)))

    def __str__(self) -> str:
        tail = f" ({self.hint})" if self.hint else ""
        return f"{self.node}: {self.check}: expected {self.expected}, found {self.found}{tail}"


# What a finding asks of ops, most urgent first (a gate may fail on "drain" only):
# drain: take the node out of the queue now; reboot: a reset/reboot clears it (then check
# again); investigate: look before the next job, the node may still run.
SEVERITIES = ("drain", "reboot", "investigate")


def worst(findings: list[Finding]) -> str:
    """The most urgent severity among findings, "" when none has one."""
    given = [f.severity for f in findings if f.severity in SEVERITIES]
    return min(given, key=SEVERITIES.index) if given else ""


class CheckFailed(AssertionError):
    """Raised by require(); carries every finding so reports can show them all."""

    def __init__(self, findings: list[Finding], detail: str = "") -> None:
        self.findings = list(findings)
        lines = [str(f) for f in self.findings] + ([detail] if detail else [])
        super().__init__("\n".join(lines))


def require(findings: list[Finding], detail: str = "") -> None:
    """Fail the calling test with all findings at once (detail, e.g. a table, after them),
    or pass when there are none."""
    __tracebackhide__ = True
    if findings:
        raise CheckFailed(findings, detail)


class NotChecked(Exception):
    """The check could not judge this node, and says why ("not checked: ..."). Checks
    stay free of pytest; the plugin turns this into a skip with the same text."""
