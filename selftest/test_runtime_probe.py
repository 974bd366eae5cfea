"""The runtime probe's node side (remote/runtime.py), its functions run here: launch
variables chosen and secrets masked on the node; libraries resolved in the loader's
order with their versions; a user site's listing and .pth lines."""

from pathlib import Path

import pytest

from preflight import remote


@pytest.fixture(scope="module")
def runtime() -> dict:
    namespace = {"__name__": "runtime_under_test"}
    exec(compile(remote.source("runtime.py"), "runtime.py", "exec"), namespace)  # noqa: S102
    return namespace


def test_launch_variables_are_chosen_and_a_secret_never_leaves_the_node(runtime):
    env = {"PATH": "/usr/bin", "NCCL_DEBUG": "INFO", "NCCL_IB_HCA": "mlx5", "HOME": "/root",
           "OMP_NUM_THREADS": "8", "TORCH_HUB_TOKEN": "hf_s3cret", "GLOO_SOCKET_IFNAME": "eth0",
           "CUDA_HOME": "/usr/local/cuda", "AWS_SECRET_ACCESS_KEY": "x"}
    assert runtime["launch_env"](env) == {
        "CUDA_HOME": "/usr/local/cuda", "GLOO_SOCKET_IFNAME": "eth0", "NCCL_DEBUG": "INFO",
        "NCCL_IB_HCA": "mlx5", "OMP_NUM_THREADS": "8", "PATH": "/usr/bin",
        "TORCH_HUB_TOKEN": "****"}


def nccl(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a stand-in carrying the banner a real libnccl.so.2 has compiled in, after 1 MiB
    path.write_bytes(b"\0" * (1 << 20) + b"NCCL version " + version.encode() + b"\0tail")
    return path


def test_library_path_wins_over_the_env_copy_as_the_loader_orders_them(runtime, tmp_path,
                                                                       monkeypatch):
    prefix = tmp_path / "env"
    nccl(prefix / "lib" / "libnccl.so.2", "2.23.4+cuda11.8")
    other = nccl(tmp_path / "other" / "libnccl.so.2", "2.18.1+cuda12.1")
    real = prefix / "lib" / "libcudart.so.11.8.89"
    real.write_bytes(b"\0")
    (prefix / "lib" / "libcudart.so.11.0").symlink_to(real.name)
    (prefix / "lib" / "libcudart.so").symlink_to(real.name)  # the dev link: not a soname
    monkeypatch.setenv("LD_LIBRARY_PATH", f"{other.parent}:/nonexistent")
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    found = runtime["libraries"](str(prefix))
    assert found == {
        "libcudart.so.11.0": {"path": f"{prefix}/lib/libcudart.so.11.0", "via": "env",
                              "version": "11.8.89", "env_path": f"{prefix}/lib/libcudart.so.11.0",
                              "env_version": "11.8.89"},
        "libnccl.so.2": {"path": str(other), "via": "LD_LIBRARY_PATH",
                         "version": "2.18.1+cuda12.1",
                         "env_path": f"{prefix}/lib/libnccl.so.2",
                         "env_version": "2.23.4+cuda11.8"}}
    monkeypatch.setenv("LD_PRELOAD", str(other))
    monkeypatch.delenv("LD_LIBRARY_PATH")
    assert runtime["libraries"](str(prefix))["libnccl.so.2"]["via"] == "LD_PRELOAD"


def test_a_user_site_listing_holds_its_pth_lines(runtime, tmp_path):
    (tmp_path / "requests").mkdir()
    (tmp_path / "old.pth").write_text("# a comment\n/scratch/libs\n\nimport os\n")
    found = runtime["site_listing"](str(tmp_path))
    assert found == {"exists": True, "entries": ["old.pth", "requests"], "count": 2,
                     "pth": {"old.pth": ["/scratch/libs", "import os"]}}
    assert runtime["site_listing"](str(tmp_path / "none")) == {"exists": False}


def test_loaded_modules_are_torch_numpy_and_any_from_outside_the_env(runtime):
    class Module:
        def __init__(self, file, version=""):
            self.__file__, self.__version__ = file, version
    env = "/opt/conda/envs/dist"
    modules = {"numpy": Module(f"{env}/lib/python3.11/site-packages/numpy/__init__.py", "2.0"),
               "torch": Module(f"{env}/lib/python3.11/site-packages/torch/__init__.py", "2.1"),
               "jinja2": Module("/scratch/libs/jinja2/__init__.py", "3.0"),
               "json": Module(f"{env}/lib/python3.11/json/__init__.py"),
               "json.decoder": Module(f"{env}/lib/python3.11/json/decoder.py"),
               "sys": Module(None)}
    found, seen = runtime["loaded_modules"](modules, env)
    assert list(found) == ["torch", "numpy", "jinja2"]
    assert found["jinja2"] == {"file": "/scratch/libs/jinja2/__init__.py", "version": "3.0"}
    assert seen == 4
