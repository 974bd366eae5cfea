"""Inline SVG for report.html: the busbw sweep as a line chart with its threshold drawn
in, and the pairwise busbw as a heat map. No script, no external asset; every label is
escaped (node names and values are data)."""

from __future__ import annotations

import math
from html import escape

W, H, PAD = 640, 300, 56
HEAT_MAX_NODES = 128  # beyond this a pairwise heat map is unreadable (and pairwise is rare)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def busbw_chart(sweep: list[dict], floor: float | None) -> str:
    """busbw (GB/s) against message size (log scale); the floor as a dashed line."""
    points = [(r["bytes"], r["busbw_gbps"]) for r in sweep
              if isinstance(r.get("bytes"), int) and r["bytes"] > 0
              and isinstance(r.get("busbw_gbps"), int | float)]
    if not points:
        return ""
    lo, hi = math.log2(points[0][0]), math.log2(points[-1][0])
    top = max([b for _, b in points] + [floor or 0]) * 1.1 or 1.0

    def x(size: int) -> float:
        return PAD + (math.log2(size) - lo) / ((hi - lo) or 1) * (W - 2 * PAD)

    def y(gbps: float) -> float:
        return H - PAD + 10 - gbps / top * (H - 2 * PAD)
    parts = [f'<svg id="busbw-chart" xmlns="http://www.w3.org/2000/svg" width="{W}" '
             f'height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="busbw by size">',
             f'<line x1="{PAD}" y1="{y(0):.1f}" x2="{W - PAD}" y2="{y(0):.1f}" class="axis"/>',
             f'<line x1="{PAD}" y1="{y(0):.1f}" x2="{PAD}" y2="{y(top):.1f}" class="axis"/>',
             f'<text x="{W / 2}" y="{H - 8}" class="label">message size (bytes)</text>',
             f'<text x="14" y="{H / 2}" class="label" transform="rotate(-90 14 {H / 2})">'
             'busbw (GB/s)</text>']
    for tick in (0, top / 2 / 1.1, top / 1.1):
        parts.append(f'<text x="{PAD - 6}" y="{y(tick) + 4:.1f}" class="tick" '
                     f'text-anchor="end">{tick:.3g}</text>')
    for size, _ in points[:: max(1, len(points) // 6)]:
        parts.append(f'<text x="{x(size):.1f}" y="{y(0) + 16:.1f}" class="tick" '
                     f'text-anchor="middle">{escape(_size(size))}</text>')
    line = " ".join(f"{x(s):.1f},{y(b):.1f}" for s, b in points)
    parts.append(f'<polyline points="{line}" class="series"/>')
    parts += [f'<circle cx="{x(s):.1f}" cy="{y(b):.1f}" r="3" class="point"><title>'
              f'{escape(_size(s))}: {b:.4g} GB/s</title></circle>' for s, b in points]
    if floor is not None:
        parts.append(f'<line id="busbw-floor" x1="{PAD}" y1="{y(floor):.1f}" x2="{W - PAD}" '
                     f'y2="{y(floor):.1f}" class="floor"><title>threshold {floor:.4g} GB/s'
                     '</title></line>')
        parts.append(f'<text x="{W - PAD}" y="{y(floor) - 5:.1f}" class="tick" '
                     f'text-anchor="end">threshold {floor:.4g} GB/s</text>')
    return "".join(parts) + "</svg>"


def heat_map(pairs: dict[str, dict]) -> str:
    """Nodes x nodes, each cell the pair's busbw as a shade (darker: slower), failed in red."""
    names = sorted({n for key in pairs for n in key.split("<->")})
    if not names or len(names) > HEAT_MAX_NODES:
        return ""
    speeds = [p["busbw_gbps"] for p in pairs.values()
              if p.get("ok") and isinstance(p.get("busbw_gbps"), int | float)]
    best = max(speeds, default=0) or 1.0
    cell, left = 18, 90
    size = left + cell * len(names)
    index = {n: i for i, n in enumerate(names)}
    parts = [f'<svg id="pair-heatmap" xmlns="http://www.w3.org/2000/svg" width="{size}" '
             f'height="{size}" role="img" aria-label="pairwise busbw">']
    for name, i in index.items():
        parts.append(f'<text x="{left - 4}" y="{left + i * cell + 13}" class="tick" '
                     f'text-anchor="end">{escape(name)}</text>')
        parts.append(f'<text x="{left + i * cell + 12}" y="{left - 4}" class="tick" '
                     f'transform="rotate(-60 {left + i * cell + 12} {left - 4})">'
                     f'{escape(name)}</text>')
    for key, pair in sorted(pairs.items()):
        a, _, b = key.partition("<->")
        if a not in index or b not in index:
            continue
        ok = pair.get("ok") and isinstance(pair.get("busbw_gbps"), int | float)
        shade = f"hsl(210,70%,{90 - 60 * pair['busbw_gbps'] / best:.0f}%)" if ok else "#c0392b"
        label = f"{pair['busbw_gbps']:.4g} GB/s" if ok else "failed"
        for r, c in ((index[a], index[b]), (index[b], index[a])):
            parts.append(f'<rect x="{left + c * cell}" y="{left + r * cell}" width="{cell - 1}" '
                         f'height="{cell - 1}" fill="{shade}"><title>{escape(key)}: '
                         f'{escape(label)}</title></rect>')
    return "".join(parts) + "</svg>"
