"""Findings read as ops need them, and require() reports all of them at once."""

import pytest

from preflight.checks.findings import CheckFailed, Finding, require


def test_finding_line():
    finding = Finding("worker-2", "env pins", "pytorch=2.0.1", "pytorch 2.0.2", "3 others")
    assert str(finding) == ("worker-2: env pins: expected pytorch=2.0.1, found pytorch 2.0.2 "
                            "(3 others)")


def test_require_raises_with_every_finding():
    found = [Finding("n1", "c", "a", "b"), Finding("n1", "c", "x", "y")]
    with pytest.raises(CheckFailed) as caught:
        require(found)
    assert caught.value.findings == found
    assert str(caught.value).count("\n") == 1


def test_require_passes_without_findings():
    require([])
