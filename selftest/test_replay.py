"""--facts replays a recorded run: the suites run on those facts, no node is contacted."""

import json
import subprocess
import sys

import pytest

from selftest import recorded
from selftest.suites import REPO


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_miniconda_suite_on_recorded_facts(tmp_path, workers):
    (tmp_path / "environment.yml").write_text("name: dist\ndependencies: [python]\n")
    # loopback port 9: nothing listens, so an SSH attempt would show as an error
    (tmp_path / "cluster.yaml").write_text(
        "cluster: replay\ndefaults: {port: 9}\nnodes:\n  - {name: w1, address: 127.0.0.1}\n"
        "  - {name: w2, address: 127.0.0.2}\n")
    broken = recorded.set_path(recorded.healthy("w2"), "miniconda.layout.condabin/conda",
                               {"exists": False})
    (tmp_path / "facts.json").write_text(json.dumps({"w1": recorded.healthy("w1"), "w2": broken}))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "--rootdir", str(REPO), "-p", "no:cacheprovider",
         "-q", "-m", "miniconda", f"--cluster={tmp_path / 'cluster.yaml'}",
         f"--facts={tmp_path / 'facts.json'}", f"--report-dir={tmp_path}", *workers],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "1 failed, 13 passed" in done.stdout
    assert "w2: miniconda layout: expected /opt/miniconda/condabin/conda, found missing" \
        in (tmp_path / "summary.md").read_text()
