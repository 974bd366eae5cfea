"""cluster.yaml: resolution of settings, node ranges, and one-line errors with file:line."""

import textwrap

import pytest

from preflight.config import inventory
from preflight.core.errors import UserError
from preflight.launchers import probe as facts

ENV = "name: pytorch-dist\ndependencies: [python=3.11]\n"


def write(tmp_path, text, env=ENV):
    (tmp_path / "environment.yml").write_text(env)
    path = tmp_path / "cluster.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path) -> str:
    with pytest.raises(UserError) as caught:
        inventory.load(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_ranges_defaults_and_overrides(tmp_path):
    path = write(tmp_path, """
        cluster: a
        defaults: {user: ubuntu, gpus: 8}
        nodes:
          - {name: head, role: master, address: 10.0.0.1}
          - {name: "worker-[1-3]"}
          - {name: worker-4, gpus: 7, user: ops}
    """)
    cluster = inventory.load(path)
    assert [n.name for n in cluster.nodes] == ["head", "worker-1", "worker-2", "worker-3",
                                               "worker-4"]
    assert cluster.master.name == "head"
    assert cluster.node("worker-2").gpus == 8
    assert cluster.node("worker-4").gpus == 7
    assert cluster.node("worker-4").user == "ops"
    assert cluster.node("worker-1").env_prefix == "/opt/miniconda/envs/pytorch-dist"
    assert cluster.node("worker-1").connect_timeout == 10.0


def test_first_node_is_master_when_none_is_named(tmp_path):
    cluster = inventory.load(write(tmp_path, "cluster: a\nnodes: [{name: 'n[1-2]'}]\n"))
    assert cluster.master.name == "n1"


def test_select_by_nodeset_and_role(tmp_path):
    cluster = inventory.load(write(tmp_path, "cluster: a\nnodes: [{name: 'w[1-6]'}]\n"))
    assert [n.name for n in cluster.select("w[2-3],w5")] == ["w2", "w3", "w5"]
    assert [n.name for n in cluster.select(role="master")] == ["w1"]
    with pytest.raises(UserError, match="w9"):
        cluster.select("w9")


def test_unknown_key_names_line_node_and_suggestion(tmp_path):
    path = write(tmp_path, """\
        cluster: a
        nodes:
          - name: worker-1
            addres: 10.0.0.1
    """)
    assert error_of(path) == (f"{path}:4: unknown key 'addres' in node 'worker-1' "
                              "(did you mean 'address'?)")


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "cluster: a\nnode: [{name: x}]\nnodes: [{name: y}]\n")
    assert error_of(path) == f"{path}:2: unknown key 'node' (did you mean 'nodes'?)"


def test_malformed_yaml(tmp_path):
    path = write(tmp_path, "cluster: a\nnodes:\n  - name: [x\n")
    assert error_of(path).startswith(f"{path}:4: malformed YAML")


def test_wrong_type(tmp_path):
    path = write(tmp_path, "cluster: a\ndefaults:\n  port: twenty-two\nnodes: [{name: x}]\n")
    message = error_of(path)
    assert message.startswith(f"{path}:3: defaults.port:")
    # what was there, never the text itself: a secret pasted into the wrong key stays out
    assert message.endswith("got text of 10 characters")
    assert "twenty-two" not in message


def test_duplicate_node(tmp_path):
    path = write(tmp_path, "cluster: a\nnodes:\n  - name: 'w[1-3]'\n  - name: w2\n")
    assert error_of(path) == f"{path}:4: node 'w2' is listed twice (first at line 3); remove one"


def test_bad_range(tmp_path):
    path = write(tmp_path, "cluster: a\nnodes:\n  - name: 'w[1-'\n")
    assert error_of(path).startswith(f"{path}:3: bad node range 'w[1-'")


def test_missing_cluster_file(tmp_path):
    assert error_of(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such cluster file"


def test_missing_environment_file(tmp_path):
    path = write(tmp_path, "cluster: a\nenvironment: envs/x.yml\nnodes: [{name: x}]\n")
    assert error_of(path).startswith(f"{path}:2: environment file 'envs/x.yml' not found")


def test_missing_required_key(tmp_path):
    path = write(tmp_path, "nodes: [{name: x}]\n")
    assert error_of(path) == f"{path}:1: 'cluster' is required"


def test_two_masters(tmp_path):
    path = write(tmp_path, "cluster: a\nnodes: [{name: 'w[1-2]', role: master}]\n")
    assert "more than one master" in error_of(path)


def test_dcgm_diag_reaches_the_probe_with_its_own_bound(tmp_path):
    path = write(tmp_path, """
        cluster: a
        defaults: {command_timeout: 60}
        gpu_health: {dcgm_diag: 1, dcgm_timeout: 90}
        nodes: [{name: n1}]
    """)
    cluster = inventory.load(path)
    node = cluster.node("n1")
    assert facts.cluster_args(cluster, node, None)["dcgm"] == {"level": 1, "timeout": 90}
    assert facts.probe_bound(cluster, node) == (150, "command_timeout + gpu_health.dcgm_timeout")
    off = inventory.load(write(tmp_path, """
        cluster: a
        gpu_health: {dcgm_diag: 1, groups: [pcie, xid]}
        nodes: [{name: n1}]
    """))
    assert facts.cluster_args(off, off.node("n1"), None)["dcgm"] is None  # its group is left out
    assert facts.probe_bound(off, off.node("n1")) == (off.node("n1").command_timeout,
                                                      "command_timeout")
    message = error_of(write(tmp_path, "cluster: a\ngpu_health: {dcgm_diag: 5}\n"
                                       "nodes: [{name: n1}]\n"))
    assert "gpu_health.dcgm_diag" in message
    assert "less than or equal to 3" in message
    message = error_of(write(tmp_path, "cluster: a\ngpu_health: {mig_mode: off}\n"
                                       "nodes: [{name: n1}]\n"))
    assert "gpu_health.mig_mode" in message


def test_a_huge_node_range_is_refused_before_it_is_expanded(tmp_path):
    """n[1-100000000] once ended in a MemoryError after 17 s: now one line, at once,
    in cluster.yaml's nodes and in --nodes alike."""
    import time
    started = time.monotonic()
    message = error_of(write(tmp_path, "cluster: a\nnodes: [{name: 'n[1-100000000]'}]\n"))
    assert "names 100000000 nodes, more than the limit of 10000" in message
    cluster = inventory.load(write(tmp_path, "cluster: a\nnodes: [{name: 'w[1-6]'}]\n"))
    with pytest.raises(UserError, match="more than the limit"):
        cluster.select("w[1-100000000]")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("text", "words"), [
    ("cluster: 2026-02-30\nnodes: [{name: a}]\n", ":1: malformed YAML: '2026-02-30' is not a "
     "date that exists"),
    ("cluster: a\n? [a, b]\n: 1\nnodes: [{name: a}]\n", ":2: a key that is a list"),
])
def test_an_impossible_date_or_a_list_key_is_one_line_with_its_line(tmp_path, text, words):
    assert words in error_of(write(tmp_path, text))
