"""Jupyter checks on synthetic facts."""

from dataclasses import replace

from preflight.checks import jupyter
from selftest.builders import NODE

ENV_PY = "/opt/miniconda/envs/dist/bin/python"


class Settings:
    kernel_name = None
    display_name = "Python (PyTorch-Dist)"


class Cluster:
    jupyter = Settings()


def facts(kernels=(), servers=(), listening=()):
    return {"jupyter": {"kernels": list(kernels), "servers": list(servers),
                        "listening": list(listening)}}


KERNEL = {"name": "dist", "path": "/root/.local/share/jupyter/kernels",
          "display_name": "Python (PyTorch-Dist)", "python": ENV_PY}


def test_registered_kernel_passes_and_each_difference_fails():
    assert jupyter.kernel_registered(NODE, facts([KERNEL]), Cluster) == []
    missing = jupyter.kernel_registered(NODE, facts([{**KERNEL, "name": "python3"}]), Cluster)
    assert missing[0].found == "not registered (kernels: python3)"
    wrong = jupyter.kernel_registered(NODE, facts([{**KERNEL, "display_name": "Python 3",
                                                    "python": "/usr/bin/python3"}]), Cluster)
    assert [f.found for f in wrong] == ["'Python 3'", "/usr/bin/python3"]


def server(**kw):
    return {"pid": 42, "port": 8888, "alive": True, "hostname": "localhost", "has_token": False,
            "password": False, "file": "jpserver-42.json", **kw}


def test_exposure_needs_any_address_and_no_auth():
    assert jupyter.not_exposed(NODE, facts(servers=[server()])) == []
    assert jupyter.not_exposed(NODE, facts(servers=[server(hostname="0.0.0.0",
                                                           has_token=True)])) == []
    open_ = jupyter.not_exposed(NODE, facts(servers=[server(hostname="0.0.0.0")]))
    assert open_[0].found == "bound to 0.0.0.0 with no token and no password"
    via_socket = facts(servers=[server()], listening=[{"port": 8888, "any": True}])
    assert jupyter.not_exposed(NODE, via_socket)
    stale = facts(servers=[server(hostname="0.0.0.0", alive=False)])
    assert jupyter.not_exposed(replace(NODE), stale) == []


def test_an_open_server_of_another_user_elsewhere_is_named_with_owner_and_folder():
    other = server(hostname="0.0.0.0", owner="nobody", folder="/scratch/jrt")
    found = jupyter.not_exposed(NODE, facts(servers=[other]))
    assert "run by nobody; runtime file in /scratch/jrt" in found[0].hint
    assert found[0].severity == "drain"


def test_a_listening_jupyter_without_a_runtime_file_is_named():
    doc = facts()
    doc["jupyter"]["processes"] = [{"pid": 77, "user": "alice", "runtime_dir": "/x",
                                    "listening": [{"port": 8890, "any": True}]}]
    found = jupyter.not_exposed(NODE, doc)
    assert [f.found for f in found] == ["none found for pid 77, run by alice"]
    doc["jupyter"]["processes"][0]["listening"] = [{"port": 8890, "any": False}]
    assert jupyter.not_exposed(NODE, doc) == []
