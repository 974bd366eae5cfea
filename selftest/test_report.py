"""The summary and the per-node JUnit regrouping."""

import xml.etree.ElementTree as ET

from preflight.report import collector as report


def test_summary_lists_failures_by_node():
    results = [
        {"test": "test_a[n2]", "outcome": "failed", "node": "n2", "message": "n2: bad"},
        {"test": "test_a[n1]", "outcome": "passed", "node": "n1", "message": ""},
        {"test": "test_b[n1]", "outcome": "error", "node": "n1", "message": "n1 unreachable: x"},
    ]
    text = report.summary("c", ["n1", "n2"], results, 1.0)
    assert "FAIL: 2 of 3 checks" in text
    assert "| n1 | 1 | 0 | 1 | 0 | 0 |" in text
    assert text.index("n1 unreachable") < text.index("n2: bad")


def test_junit_grouped_by_node(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase name="t[n1]"><properties><property name="node" value="n1"/></properties>'
        '</testcase><testcase name="t[n2]"><properties><property name="node" value="n2"/>'
        '</properties><failure message="x"/></testcase></testsuite></testsuites>')
    report.group_junit_by_node(path, "demo")
    suites = ET.parse(path).getroot().findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in suites] == [
        ("demo:n1", "1", "0"), ("demo:n2", "1", "1")]
