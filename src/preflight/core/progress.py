"""Progress while nodes are worked on: nodes done / total and the slowest one still
pending, redrawn on one terminal line. Quiet unless a terminal was attached when the run
started (use_terminal): CI logs and pipes get no carriage-return noise.

    with Progress("facts", len(nodes)) as shown:
        results = pool.map(lambda n: shown.track(n.name, probe, n), nodes)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

_SINK: dict[str, Callable[[str, bool], None] | None] = {"write": None}
TICK_S = 1.0  # redraw at least this often, so a hung node's wait is seen growing


def use_terminal() -> None:
    """Draw progress on the controlling terminal (/dev/tty, outside pytest's capture)
    when stderr is one; call while pytest's capture is suspended (pytest_configure)."""
    import sys
    if not (sys.stderr and sys.stderr.isatty()):
        return
    try:
        tty = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 - held for the run
    except OSError:
        return

    def write(line: str, final: bool) -> None:
        with contextlib.suppress(OSError):
            tty.write("\r\x1b[2K" + line + ("\n" if final else ""))
            tty.flush()
    _SINK["write"] = write


class Progress:
    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.pending: dict[str, float] = {}
        self.done = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if _SINK["write"] is not None and self.total:
            self.ticker = threading.Thread(target=self._tick, daemon=True)
            self.ticker.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        if self.ticker is not None:
            self.ticker.join()
            self._show(final=True)

    def track(self, name: str, work: Callable, *args):
        with self.lock:
            self.pending[name] = time.monotonic()
        try:
            return work(*args)
        finally:
            with self.lock:
                self.pending.pop(name, None)
                self.done += 1

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        with self.lock:
            done, oldest = self.done, min(self.pending.items(), key=lambda kv: kv[1],
                                          default=None)
        tail = f", slowest pending: {oldest[0]} ({now - oldest[1]:.1f} s)" if oldest else ""
        return f"{self.label}: {done}/{self.total} nodes{tail}"

    def _tick(self) -> None:
        while not self.stop.wait(TICK_S):
            self._show(final=False)

    def _show(self, final: bool) -> None:
        write = _SINK["write"]
        if write is not None:
            write(self.line(), final)


def _for_tests(sink: Callable[[str, bool], None] | None) -> None:
    _SINK["write"] = sink

