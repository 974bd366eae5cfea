"""report.html: one self-contained page for ops, rendered from results.json.

One file: inline CSS, a few lines of inline script (open a finding from its matrix cell;
nothing is hidden without it), inline SVG, and a Content-Security-Policy that forbids any
request, so it opens the same from disk, a CI artifact or a mail. Every string from the
document is escaped here: node text is data, never markup.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape

from ClusterShell.NodeSet import NodeSet

from preflight.report import svgcharts, text

CELL = {"passed": ("p", ""), "failed": ("f", "F"), "error": ("e", "E"),
        "skipped": ("s", "S"), "waived": ("w", "W")}
FINDINGS_MAX = 3000  # findings written out in full; the rest are in results.json
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 3em;color:#1d232a}
h1{font-size:1.5em;margin:.6em 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .4em}
.verdict{display:inline-block;padding:.1em .6em;border-radius:4px;color:#fff;font-weight:700}
.PASS{background:#2e7d32}.FAIL{background:#c62828}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:.4em 0}
dl.facts dt{color:#5a6570}dl.facts dd{margin:0;font-family:monospace}
nav a{margin-right:1em}table{border-collapse:collapse;margin:.3em 0}
th,td{border:1px solid #d5dbe1;padding:2px 6px;text-align:left;vertical-align:top}
#matrix td{width:1.3em;text-align:center;padding:1px;font-weight:700}
#matrix thead th{font-weight:400;font-size:12px}
td.p{background:#c8e6c9}td.f{background:#ef9a9a}td.e{background:#ffcc80}
td.s{background:#eceff1;color:#78909c}td.w{background:#e1bee7}
td a{color:inherit;text-decoration:none}th.fold{font-weight:400;color:#2e7d32}
section{content-visibility:auto;contain-intrinsic-size:auto 40em}
details.finding{content-visibility:auto;contain-intrinsic-size:auto 1.6em}
details.finding{border-left:4px solid #c62828;margin:.3em 0;padding:.2em .6em;background:#fafafa}
details.error{border-color:#ef6c00}details.waived{border-color:#8e24aa}
details.finding:target{outline:2px solid #1565c0}
pre{white-space:pre-wrap;word-break:break-word;margin:.3em 0;font-size:12px}
.muted{color:#5a6570}svg .axis{stroke:#555}svg .series{fill:none;stroke:#1565c0;stroke-width:2}
svg .point{fill:#1565c0}svg .floor{stroke:#c62828;stroke-dasharray:6 4;stroke-width:1.5}
svg .label,svg .tick{font-size:11px;fill:#333}
"""
SCRIPT = """
window.onerror=function(m){var d=document.documentElement.dataset;d.errors=(d.errors||'')+m+';'};
function openHash(){var t=location.hash&&document.getElementById(location.hash.slice(1));
if(t&&t.tagName==='DETAILS')t.open=true}
window.addEventListener('hashchange',openHash);
window.addEventListener('load',function(){openHash();document.body.offsetHeight;
var d=document.documentElement.dataset;d.renderMs=performance.now().toFixed(1);d.ready='1'});
"""


def render(doc: dict) -> str:
    """The page for one results document."""
    results = doc["results"]
    bad = sorted((r for r in results if r["outcome"] in ("failed", "error")),
                 key=lambda r: (r["outcome"] != "error", r["suite"], r["check"], r["node"]))
    waived = [r for r in results if r["outcome"] == "waived"]
    shown = bad[:FINDINGS_MAX] + waived[:FINDINGS_MAX]
    anchors = {id(r): f"r{i}" for i, r in enumerate(shown)}
    body = [_header(doc), _diff(doc.get("diff")), _findings(bad, anchors),
            _matrix(doc["run"]["nodes"], results, anchors), _drift(doc.get("env") or {}),
            _collective(doc.get("collective")), _skipped(results),
            _waivers(waived, doc.get("waivers") or {}, anchors), _slurm(doc.get("slurm"))]
    title = f"cluster-preflight: {doc['run']['cluster']}: {doc['run']['verdict']}"
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name=viewport content="width=device-width">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            + "".join(body) + f"<script>{SCRIPT}</script></body></html>\n")


def _header(doc: dict) -> str:
    run = doc["run"]
    counts = ", ".join(f"{n} {k}" for k, n in run["counts"].items() if n)
    env = run.get("env") or {}
    facts = [("nodes checked", f"{len(run['nodes'])}: {NodeSet.fromlist(run['nodes'])}"),
             ("checks", counts or "none"), ("finished", f"{run['finished']} "
                                                      f"({run['seconds']} s)"),
             ("commit", run.get("commit") or "not a git checkout"),
             (f"env ({env.get('file')})", f"sha256 {env.get('sha256')}"), ("run id", run["id"])]
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts)
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("diff", "since last run"), ("failures", "failures"), ("matrix", "matrix"),
        ("drift", "env drift"), ("collective", "collective"), ("skipped", "skipped"),
        ("waivers", "waivers")))
    return (f'<header id="summary"><h1>cluster-preflight: {escape(run["cluster"])} '
            f'<span class="verdict {run["verdict"]}" id="verdict">{run["verdict"]}</span></h1>'
            f'<dl class="facts">{rows}</dl><nav>{nav}</nav></header>')


def _diff(diff: dict | None) -> str:
    if not diff:
        return '<section id="diff"><h2>Since the last run</h2><p class="muted">no earlier ' \
               'run of this cluster in reports/history/</p></section>'
    prev = diff["previous"]
    items = []
    for key, title in (("newly_failing", "newly failing"), ("fixed", "fixed"),
                       ("still_failing", "still failing"), ("nodes_added", "nodes added"),
                       ("nodes_removed", "nodes removed")):
        values = diff.get(key) or []
        shown = ", ".join(escape(v) for v in values[:200]) + (" ..." if len(values) > 200 else "")
        items.append(f'<li id="diff-{key}"><b>{title}</b> ({len(values)}): {shown}</li>')
    moved = "".join(f"<li>{escape(c['what'])}: {c['before']:.4g} &rarr; {c['now']:.4g} GB/s "
                    f"({c['change']:+.1%})</li>" for c in diff.get("busbw") or [])
    items.append(f'<li id="diff-busbw"><b>busbw changes beyond 5 %</b> '
                 f'({len(diff.get("busbw") or [])})<ul>{moved}</ul></li>')
    return (f'<section id="diff"><h2>Since the last run</h2><p class="muted">against run '
            f'{escape(str(prev.get("id")))} of {escape(str(prev.get("finished")))} '
            f'({escape(str(prev.get("verdict")))})</p><ul>{"".join(items)}</ul></section>')


def _finding(result: dict, anchor: str) -> str:
    fields = [(k, result.get(k)) for k in ("expected", "found", "hint", "severity")
              if result.get(k)]
    facts = "".join(f"<dt>{k}</dt><dd>{escape(v)}</dd>" for k, v in fields)
    severity = f' &middot; <b>{escape(result["severity"])}</b>' if result.get("severity") \
        else ""
    return (f'<details class="finding {result["outcome"]}" id="{anchor}"><summary>'
            f'<b>{escape(result["node"])}</b> &middot; {escape(result["test"])} &middot; '
            f'{result["outcome"]}{severity}</summary><dl class="facts">{facts}</dl>'
            f'<pre>{escape(result["message"])}</pre></details>')


def _findings(bad: list[dict], anchors: dict) -> str:
    inner = "".join(_finding(r, anchors[id(r)]) for r in bad if id(r) in anchors)
    more = len(bad) - FINDINGS_MAX
    if more > 0:
        inner += f"<p>{more} more in results.json</p>"
    return f'<section id="failures"><h2>Failures and errors ({len(bad)})</h2>' \
           f'{inner or "<p>none</p>"}</section>'


def _matrix(nodes: list[str], results: list[dict], anchors: dict) -> str:
    """Nodes x checks grouped by suite. Nodes with a failure or error get a row each, on
    top; the rest fold into one row per identical outcome pattern (worker-[001-120])."""
    columns = sorted({(r["suite"], r["check"]) for r in results if r["node"] != "cluster"})
    col = {c: i for i, c in enumerate(columns)}
    cells: dict[str, list] = defaultdict(lambda: [None] * len(columns))
    for r in results:
        if (r["suite"], r["check"]) in col:
            cells[r["node"]][col[(r["suite"], r["check"])]] = r
    order = [n for n in nodes if n in cells] + sorted(set(cells) - set(nodes))
    bad = [n for n in order if any(r and r["outcome"] in ("failed", "error") for r in cells[n])]
    folded: dict[tuple, list[str]] = defaultdict(list)
    for name in order:
        if name not in bad:
            folded[tuple(r and r["outcome"] for r in cells[name])].append(name)
    rows = [_row(escape(n), "", cells[n], anchors) for n in bad]
    for pattern, names in sorted(folded.items(), key=lambda kv: -len(kv[1])):
        label = escape(str(NodeSet.fromlist(names)))
        note = "all pass" if all(o in ("passed", None) for o in pattern) else \
            ", ".join(f"{pattern.count(o)} {o}" for o in sorted({o for o in pattern if o}))
        rows.append(_row(label, f"{len(names)} nodes: {note}", cells[names[0]],
                         anchors if len(names) == 1 else {}))
    suites = defaultdict(int)
    for suite, _ in columns:
        suites[suite] += 1
    head1 = "".join(f'<th colspan="{n}">{escape(s)}</th>' for s, n in suites.items())
    head2 = "".join(f'<th title="{escape(c)}">{i + 1}</th>' for i, (_, c) in enumerate(columns))
    legend = "".join(f"<li>{i + 1}: {escape(s)} / {escape(c)}</li>"
                     for i, (s, c) in enumerate(columns))
    return (f'<section id="matrix"><h2>Nodes by check</h2><table><thead><tr><th></th>'
            f'<th></th>{head1}</tr><tr><th>node</th><th></th>{head2}</tr></thead><tbody>'
            f'{"".join(rows)}</tbody></table><details><summary>check numbers</summary>'
            f'<ol class="muted">{legend}</ol></details></section>')


def _row(label: str, note: str, cells: list, anchors: dict) -> str:
    kind = "folded" if note else "bad"
    out = [f'<tr class="{kind}"><th>{label}</th><th class="fold">{note}</th>']
    for r in cells:
        if r is None:
            out.append("<td></td>")
            continue
        cls, mark = CELL[r["outcome"]]
        anchor = anchors.get(id(r))
        out.append(f'<td class={cls}><a href="#{anchor}">{mark}</a></td>' if anchor
                   else f"<td class={cls}>{mark}</td>")
    return "".join(out) + "</tr>"


def _variants(rows: list[dict], key: str, table_id: str, none: str) -> str:
    """A drift table: one row per package or variable, a cell per value with its nodes."""
    body = "".join(
        f"<tr><th>{escape(row[key])}</th>" + "".join(
            f"<td>{escape(v['value'])}<br><span class=muted>{escape(v['nodes'])}</span></td>"
            for v in row["variants"]) + "</tr>" for row in rows)
    return f'<table id="{table_id}">{body}</table>' if body else f"<p>{none}</p>"


def _drift(env: dict) -> str:
    table = _variants(env.get("drift") or [], "package", "drift-table",
                      "every reached node has the same packages")
    launch_table = _variants(env.get("launch_drift") or [], "variable", "launch-drift-table",
                             "every reached node gives a job the same launch environment")
    unchecked = "".join(f"<li>{escape(u)}</li>" for u in env.get("unchecked") or [])
    return (f'<section id="drift"><h2>Env drift (packages that differ between nodes)</h2>'
            f'{table}<h3>Launch environment drift (variables a job gets that differ between '
            f'nodes)</h3>{launch_table}<h3>Lines of environment.yml not checked</h3>'
            f'<ul id="unchecked">{unchecked or "<li>none</li>"}</ul></section>')


def _collective(col: dict | None) -> str:
    if not col:
        return '<section id="collective"><h2>Collective</h2><p class="muted">not run in ' \
               'this selection (nox -s nccl)</p></section>'
    threshold = col.get("threshold") or {}
    floor = threshold.get("floor_gbps")
    sweep = svgcharts.busbw_chart(col.get("sweep") or [], floor) or \
        "<p>no bandwidth measured (the run failed)</p>"
    source = f"threshold {floor:.4g} GB/s ({escape(threshold.get('source', ''))})" \
        if floor is not None else f"not judged: {escape(threshold.get('source', 'no threshold'))}"
    pairs = col.get("pairs")
    heat = ""
    if pairs:
        verdict = "".join(f"<li>{escape(k)}: {escape(v)}</li>"
                          for k, v in (col.get("pair_verdict") or {}).items())
        chart = svgcharts.heat_map(pairs) or "<p>too many nodes for a heat map</p>"
        heat = f"<h3>Pairwise busbw</h3>{chart}<ul>{verdict}</ul>"
    return (f'<section id="collective"><h2>Collective: all_reduce over {col.get("world")} '
            f'nodes ({escape(str(col.get("backend")))}, '
            f'{escape(str(col.get("launcher") or "ssh"))})</h2><p>{source}</p>{sweep}{heat}'
            "</section>")


def _skipped(results: list[dict]) -> str:
    """Skips grouped by check and reason, nodes folded (text.folded_skips)."""
    rows = "".join(f"<tr><td>{escape(check)}</td><td>{escape(nodes)}</td>"
                   f"<td>{escape(reason)}</td></tr>"
                   for check, nodes, reason in text.folded_skips(results))
    body = f'<table id="skipped-table"><tr><th>check</th><th>nodes</th><th>reason</th></tr>' \
           f"{rows}</table>" if rows else "<p>none</p>"
    return f'<section id="skipped"><h2>Skipped, and why</h2>{body}</section>'


def _waivers(waived: list[dict], waivers: dict, anchors: dict) -> str:
    inner = "".join(_finding(r, anchors[id(r)]) for r in waived if id(r) in anchors) or \
        "<p>none</p>"
    expired = "".join(f"<li>{escape(w['id'])}: {escape(w['check'])} on {escape(w['nodes'])} "
                      f"expired {escape(w['expires'])} ({escape(w['reason'])}, "
                      f"{escape(w['owner'])})</li>" for w in waivers.get("expired") or [])
    stale = "".join(f"<li>{escape(w['id'])}: {escape(w['check'])} on {escape(w['nodes'])} "
                    f"({escape(w['reason'])}, {escape(w['owner'])}): matched no failure "
                    "this run; remove it?</li>" for w in waivers.get("stale") or [])
    return (f'<section id="waivers"><h2>Waived ({len(waived)})</h2>{inner}'
            f'<h3>Expired waivers</h3><ul id="waivers-expired">{expired or "<li>none</li>"}</ul>'
            f'<h3>Stale waivers</h3><ul id="waivers-stale">{stale or "<li>none</li>"}</ul>'
            "</section>")


def _slurm(actions: dict | None) -> str:
    if not actions:
        return ""
    from preflight.report.text import scheduler_lines
    items = "".join(f"<li>{escape(line)}</li>" for line in scheduler_lines(actions)) or \
        "<li>nothing to drain or resume</li>"
    note = "dry run: nothing was changed (--drain-failed, --resume-fixed)" \
        if actions["dry_run"] else "carried out"
    return (f'<section id="slurm"><h2>Slurm drain and resume</h2><p class="muted">{note}</p>'
            f'<ul id="slurm-actions">{items}</ul></section>')


def incomplete(cluster: str, reason: str) -> str:
    """The page of a run that has not finished (or was stopped): no earlier verdict."""
    return ("<!doctype html><html lang=en><meta charset=utf-8><title>cluster-preflight: "
            f"{escape(cluster)}: INCOMPLETE</title><body><h1>cluster-preflight: "
            f"{escape(cluster)}</h1><p id=verdict><strong>INCOMPLETE</strong>: "
            f"{escape(reason)}</p></body></html>\n")
