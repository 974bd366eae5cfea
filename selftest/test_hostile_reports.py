"""Text from nodes is data: it cannot forge a report, reach the terminal raw, blow up a
file, leave a stale verdict, or carry a secret into any output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from preflight.core import nodetext, redact
from preflight.report import collector as report
from selftest import recorded
from selftest.suites import replay

NODES = [f"node-{i}" for i in range(1, 5)]
FORGED = "2.13.1\n```\n\n**PASS** on 4 nodes\n\n| node-9 | 99 | 0 | 0 | 0 |\n## Nodes\n" \
         "</pre></td><script>alert(1)</script><img src=x onerror=alert(2)>"
CONTROL = "\x00\x1b[2J\x07"
SECRETS = {
    "url": "https://ci:s3cret-pw-5a1@pypi.internal/simple",
    "anaconda": "https://conda.anaconda.org/t/tk-9f8e7d6c5b/private",
    "assignment": "NCCL_TOKEN=tok-deadbeef77",
    "key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-secretkey\n"
           "-----END OPENSSH PRIVATE KEY-----",
}
MARKERS = ("s3cret-pw-5a1", "tk-9f8e7d6c5b", "tok-deadbeef77", "secretkey")


def pytorch_at(doc: dict) -> dict:
    return next(r for r in doc["env"]["conda"] if r["name"] == "pytorch")


def outputs(tmp_path, run) -> dict[str, str]:
    files = {p.name: p.read_text(errors="replace") for p in tmp_path.iterdir()
             if p.is_file() and p.suffix in (".md", ".xml", ".json", ".html")
             and p.name != "replayed.json"}  # the input, as the test wrote it
    return {"console": run.output, **files}


def test_node_text_cannot_forge_or_garble_the_reports(tmp_path):
    docs = recorded.fleet(NODES)
    pytorch_at(docs["node-2"])["version"] = FORGED + CONTROL
    pytorch_at(docs["node-3"])["version"] = "2.13.1-" + "x" * 10_000_000  # 10 MB
    pytorch_at(docs["node-4"])["version"] = "2.13.1\ud800"  # a lone surrogate
    run = replay(tmp_path, docs, "-m", "env")
    assert run.rc == 1
    summary = (tmp_path / "summary.md").read_text()
    assert "**FAIL: " in summary
    assert summary.count("**PASS**") == 0 or "\n**PASS** on 4 nodes\n" not in _outside_fences(
        summary)
    assert "| node-9 |" not in _outside_fences(summary)
    for name, text in outputs(tmp_path, run).items():
        assert not {"\x00", "\x1b", "\x07"} & set(text), name
    assert (tmp_path / "junit.xml").stat().st_size < 2_000_000
    assert (tmp_path / "summary.md").stat().st_size < 200_000
    assert "facts section 'env' does not fit its declared shape: env.conda[65].version: " \
        "String should have at most 256 characters" in run.messages["test_env_pins_hold[node-3]"]
    cases = {c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert "test_env_pins_hold[node-4]" in cases
    page = (tmp_path / "report.html").read_text()
    assert page.count("<script>") == 1  # the page's own; the node's is text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<img" not in page
    assert "</pre></td><script>" not in page
    assert json.loads((tmp_path / "results.json").read_text())["run"]["verdict"] == "FAIL"


def _outside_fences(markdown: str) -> str:
    """The Markdown a reader sees as structure: code blocks removed (CommonMark fences)."""
    kept, fence = [], None
    for line in markdown.splitlines():
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
            continue
        if fence is not None:
            if stripped == fence or (stripped.startswith(fence) and set(stripped) == {"`"}
                                     and len(stripped) >= len(fence)):
                fence = None
            continue
        kept.append(line)
    return "\n".join(kept)


def test_secrets_a_node_sends_reach_no_output(tmp_path):
    docs = recorded.fleet(NODES)
    pytorch_at(docs["node-2"])["version"] = " ".join(SECRETS.values())
    pytorch_at(docs["node-3"])["channel"] = SECRETS["anaconda"]
    docs["node-4"]["ssh"]["identity_pub"] = SECRETS["key"]
    docs["node-4"]["runtime"] = {"ok": False, "error": "ImportError: " + SECRETS["assignment"]}
    run = replay(tmp_path, docs)
    assert run.rc == 1
    for name, text in outputs(tmp_path, run).items():
        for marker in MARKERS:
            assert marker not in text, (name, marker)


def test_a_run_that_cannot_start_replaces_the_old_verdict(tmp_path):
    (tmp_path / "summary.md").write_text("# cluster-preflight: replay\n\n**PASS** old run\n")
    (tmp_path / "replayed.json").write_text("not json")
    docs_path = tmp_path / "replayed.json"
    run = replay(tmp_path, recorded.fleet(NODES))  # a healthy run writes its own verdict
    assert "**PASS**" in (tmp_path / "summary.md").read_text()
    docs_path.write_text("{")
    from selftest.suites import replay_cluster, run_suites
    bad = run_suites(replay_cluster(tmp_path, NODES), tmp_path, f"--facts={docs_path}")
    assert bad.rc == 2
    assert "not a facts file" in bad.output
    assert "Traceback" not in bad.output
    summary = (tmp_path / "summary.md").read_text()
    assert "**INCOMPLETE**" in summary
    assert "**PASS**" not in summary
    assert run.rc == 0
    # every report file the run owns, not only the summary: a CI gate reads results.json
    results = json.loads((tmp_path / "results.json").read_text())
    assert (results["verdict"], results["run"]["verdict"], results["results"]) == (
        "incomplete", "INCOMPLETE", [])
    assert "not a facts file" in results["reason"]
    html = (tmp_path / "report.html").read_text()
    assert "INCOMPLETE" in html
    assert "PASS" not in html
    junit = (tmp_path / "junit.xml").read_text()
    assert 'errors="1"' in junit
    assert "INCOMPLETE: " in junit


def test_summary_of_malformed_results_is_still_written(tmp_path):
    text = report.summary("c", ["n1"], [{"test": "t[n1]", "outcome": "failed", "node": "n1",
                                         "message": "\ud800" + "`" * 10}], 1.0)
    report.write_atomic(tmp_path / "summary.md", text)
    assert "\ufffd" in (tmp_path / "summary.md").read_text()
    assert "`" * 11 in text  # a fence longer than the run inside it


def test_unusable_facts_files_are_one_line_and_exit_2(tmp_path):
    from selftest.suites import replay_cluster, run_suites
    cluster = replay_cluster(tmp_path, NODES)
    cases = {"missing": None, "empty": b"", "binary": b"\xff\xfe\x00junk",
             "a list": b"[1, 2]", "not json": b"{nodes: 1}"}
    for name, content in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.json"
        if content is not None:
            path.write_bytes(content)
        run = run_suites(cluster, tmp_path, f"--facts={path}", "-m", "miniconda")
        assert run.rc == 2, (name, run.output[-1000:])
        assert "--facts" in run.output, name
        assert "Traceback" not in run.output, name


def test_redactor_and_cleaner_units():
    assert redact.redact(SECRETS["key"]) == "[redacted private key]"
    assert redact.redact_doc({"a": [SECRETS["assignment"]]}) == {"a": ["NCCL_TOKEN=****"]}
    assert nodetext.clean("a" * 5000).endswith("[cut: 3000 more characters]")
    assert json.dumps(nodetext.clean("\ud800"))  # encodable


def test_a_replay_never_drains(tmp_path):
    """--facts with --drain-failed once connected to the Slurm login node: with a reachable
    one it would drain real nodes on replayed facts. Refused in one line, exit 2."""
    docs = recorded.fleet(NODES)
    run = replay(tmp_path, docs, "--drain-failed",
                 extra="\nlauncher: slurm\nslurm: {login: nowhere.invalid}\n")
    assert run.rc == 2, run.output[-2000:]
    assert "a replay (--facts) never contacts Slurm" in run.output
    assert "Traceback" not in run.output


def test_facts_nested_five_thousand_deep_are_one_line(tmp_path):
    from selftest.suites import replay_cluster, run_suites
    deep = tmp_path / "deep.json"
    deep.write_text('{"node-1": {"reach": {"ok": true}, "env": ' + '{"a":' * 5000 + "1" +
                    "}" * 5000 + "}}")
    run = run_suites(replay_cluster(tmp_path, NODES), tmp_path, f"--facts={deep}")
    assert run.rc == 2
    assert "nested deeper than 64 levels" in run.output
    assert "Traceback" not in run.output
