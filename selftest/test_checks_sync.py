"""Code-tree hashing (shared by node and controller) and the sync check's findings."""

from preflight import remote
from preflight.checks import sync
from selftest.builders import NODE

EXCLUDE = ["__pycache__", "*.pyc", ".git"]


def tree(tmp_path, files: dict[str, str]):
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return remote.probe_module().tree_hashes(str(tmp_path), EXCLUDE, 100)


def test_hashes_skip_excluded_names(tmp_path):
    hashes, truncated = tree(tmp_path, {"train.py": "a", "pkg/m.py": "b", "pkg/m.pyc": "x",
                                        "__pycache__/t.pyc": "x", ".git/HEAD": "x"})
    assert sorted(hashes) == ["pkg/m.py", "train.py"]
    assert not truncated
    assert len(hashes["train.py"]) == 16


def test_differences_named_by_kind(tmp_path):
    source, _ = tree(tmp_path / "src", {"a.py": "1", "b.py": "2", "c.py": "3"})
    node_files, _ = tree(tmp_path / "node", {"a.py": "1", "b.py": "CHANGED", "d.py": "4"})
    facts = {"sync": {"target": "/workspace/src", "exists": True, "files": node_files,
                      "truncated": False}}
    found = [f.found for f in sync.same_tree(NODE, facts, source)]
    assert found == ["1 missing: c.py", "1 added: d.py", "1 changed: b.py"]
    assert sync.same_tree(NODE, {"sync": {**facts["sync"], "files": source}}, source) == []


def test_missing_tree():
    facts = {"sync": {"target": "/workspace/src", "exists": False}}
    assert sync.same_tree(NODE, facts, {"a.py": "x"})[0].found == "no such folder"
