"""SSH, code-sync and Jupyter suites on the simulated cluster: secrets stay on the node."""

from __future__ import annotations

import pytest

from selftest.suites import run_suites

pytestmark = pytest.mark.simcluster

# Each access fault failing exactly its node: selftest/test_fault_catalogue.py.


def test_jupyter_token_never_reaches_a_report(sim, tmp_path):
    """A protected server passes, and its token is in no file the run writes."""
    sim.ensure(4)
    token = "tok-5f0c1e9a7b3d"
    sim.fault("jupyter-token", "node-2", token)
    run = run_suites(sim.cluster_yaml, tmp_path, "-m", "jupyter")
    assert run.rc == 0, run.output[-2000:]
    assert token not in run.output
    for report in tmp_path.rglob("*"):
        if report.is_file():
            assert token not in report.read_text(errors="replace"), report
