"""The test bed's CLI answers a wrong environment with one line and exit 2, no traceback."""

import platform

import pytest
from simcluster import __main__ as cli
from simcluster import host


@pytest.mark.parametrize(("patch", "says"), [
    (("os.geteuid", lambda: 1000), "needs root"),
    (("platform.system", lambda: "Darwin"), "needs Linux namespaces; this is Darwin"),
])
def test_up_without_root_or_linux(monkeypatch, capsys, patch, says):
    target, value = patch
    module, name = target.split(".")
    monkeypatch.setattr(host.os if module == "os" else platform, name, value)
    assert cli.main(["up", "--nodes", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert says in err[0]


def test_missing_tools_name_the_packages(monkeypatch):
    monkeypatch.setattr(host.os, "geteuid", lambda: 0)
    monkeypatch.setattr(host.shutil, "which", lambda tool: None)
    with pytest.raises(host.SimError, match=r"missing packages .*openssh-server"):
        host.require()


def test_unknown_fault_is_one_line(capsys):
    assert cli.main(["fault", "no-such-fault", "node-1"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
