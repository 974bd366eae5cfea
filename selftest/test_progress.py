"""Progress: done / total and the slowest pending node; silent without a terminal."""

from __future__ import annotations

import threading

from preflight.core import progress


def test_line_names_the_slowest_pending_node():
    shown = progress.Progress("facts", 3)
    release = threading.Event()
    shown.pending["node-9"] = 100.0
    shown.track("node-1", lambda: None)
    worker = threading.Thread(target=shown.track, args=("node-2", release.wait))
    worker.start()
    try:
        assert shown.line(now=104.25) == "facts: 1/3 nodes, slowest pending: node-9 (4.2 s)"
    finally:
        release.set()
        worker.join()
    shown.pending.clear()
    assert shown.line() == "facts: 2/3 nodes"


def test_drawn_only_with_a_sink_and_ends_with_a_final_line(monkeypatch):
    lines: list[tuple[str, bool]] = []
    monkeypatch.setattr(progress, "TICK_S", 0.01)
    with progress.Progress("facts", 2) as shown:  # no terminal: no ticker, nothing drawn
        shown.track("a", lambda: None)
    assert shown.ticker is None
    progress._for_tests(lambda line, final: lines.append((line, final)))
    try:
        with progress.Progress("facts", 2) as shown:
            shown.track("a", lambda: None)
            shown.track("b", lambda: None)
    finally:
        progress._for_tests(None)
    assert lines[-1] == ("facts: 2/2 nodes", True)
