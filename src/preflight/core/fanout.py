"""Work over many nodes on a bounded thread pool, with progress on a terminal."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from preflight.core.progress import Progress


def fan_out(nodes: list, work, parallelism: int, label: str = "") -> dict[str, object]:
    """work(node) for every node on a bounded pool; results keyed by node name, in order.
    With a label, progress is shown on a terminal (progress.py)."""
    with Progress(label, len(nodes) if label else 0) as shown, \
            ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(nodes)))) as pool:
        return dict(zip([n.name for n in nodes],
                        pool.map(lambda n: shown.track(n.name, work, n), nodes), strict=True))
