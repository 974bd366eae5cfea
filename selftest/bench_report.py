"""The ops report's cost: building results.json and report.html for 64, 2,000 and 10,000
nodes (40 checks each; 10,000 is the most cluster.yaml allows), their sizes, and the time
headless Chromium takes to load and lay the page out, against the same browser opening an
empty page (the floor) in the same run.

    python -m selftest.bench_report     # prints JSON, writes reports/bench/report.json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from preflight.report import collector as report
from preflight.report import html as htmlreport
from preflight.report import results
from selftest import browser, synthetic

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench"


def one(count: int, folder: Path, bad_share: float = 0.05) -> dict:
    doc = synthetic.document(count, checks=40, bad_share=bad_share)
    started = time.perf_counter()
    report.write_atomic(folder / "results.json", results.dumps(doc))
    json_s = time.perf_counter() - started
    started = time.perf_counter()
    page = htmlreport.render(doc)
    html_s = time.perf_counter() - started
    path = folder / f"report-{count}-{bad_share}.html"
    path.write_text(page)
    out = {"nodes": count, "checks": 40, "results": len(doc["results"]),
           "failing_nodes": len({r["node"] for r in doc["results"] if r["outcome"] == "failed"}),
           "results_json_s": round(json_s, 3),
           "results_json_bytes": (folder / "results.json").stat().st_size,
           "html_build_s": round(html_s, 3), "html_bytes": path.stat().st_size}
    if browser.chromium():
        seen = [browser.render(path, folder / "profile") for _ in range(3)]
        out["chromium_wall_s"] = round(min(s.seconds for s in seen), 3)
        out["chromium_render_ms"] = min(float(browser.dataset(s.dom, "render-ms") or "nan")
                                        for s in seen)
        out["console_messages"] = len(seen[0].console)
    return out


def measure() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # 5 % of nodes failing, and the worst case: every node failing 1 to 3 checks
        data = {"reports": [one(64, folder), one(2000, folder), one(2000, folder, 1.0),
                            one(10000, folder), one(10000, folder, 1.0)]}  # the most allowed
        if browser.chromium():
            blank = folder / "blank.html"
            blank.write_text("<!doctype html><title>blank</title>")
            data["chromium_blank_wall_s"] = round(min(
                browser.render(blank, folder / "profile").seconds for _ in range(3)), 3)
            for entry in data["reports"]:
                entry["wall_over_blank"] = round(entry["chromium_wall_s"] /
                                                 data["chromium_blank_wall_s"], 2)
    return data


def main() -> None:
    data = measure()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(data, indent=2))
    json.dump(data, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
