"""Small inputs that once ended in a traceback: each is now one line (a UserError) or a
finding, never a crash."""

from __future__ import annotations

import pytest

from preflight.checks import jupyter
from preflight.config import lockfile, sshconfig
from preflight.config.clusterfile import SlurmSettings
from preflight.core.errors import UserError
from preflight.core.nodetext import clean
from selftest.builders import NODE


def test_an_identityfile_line_without_a_value_is_one_line(tmp_path):
    path = tmp_path / "ssh_config"
    path.write_text("Host w1\n  HostName 10.0.0.1\n  IdentityFile\n")
    with pytest.raises(UserError, match="not an ssh_config ssh can read: Unparsable line"):
        sshconfig.load(path)


def test_a_lock_entry_whose_name_is_a_number_is_one_line(tmp_path):
    path = tmp_path / "conda-lock.yml"
    path.write_text("version: 1\nmetadata: {}\npackage:\n  - {name: 123, version: '1.0', "
                    "manager: conda, platform: linux-64, url: 'https://x/y.conda'}\n")
    with pytest.raises(UserError, match="package 123: a name must be text"):
        lockfile.read(path)


def test_a_kernelspec_without_a_python_is_a_finding():
    class Cluster:
        class jupyter:  # stands in for the settings
            kernel_name = None
            display_name = None
    facts = {"jupyter": {"kernels": [{"name": "dist", "path": "/k"}], "servers": [],
                         "listening": []}}
    found = jupyter.kernel_registered(NODE, facts, Cluster)
    assert [f.found for f in found] == ["no argv"]


def test_noncharacters_are_written_visibly():
    assert clean("a\ufffeb\uffffc\ufdd0") == "a\\ufffeb\\uffffc\\ufdd0"


@pytest.mark.parametrize("limit", ["-", "-5", "1:2:3:4", "1--2", ""])
def test_a_slurm_time_limit_slurm_would_refuse_is_refused_here(limit):
    with pytest.raises(ValueError, match="time_limit"):
        SlurmSettings(time_limit=limit)
