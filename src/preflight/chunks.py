"""Checks over chunks of nodes: above `--chunk-from` nodes, one pytest item runs a check
over up to `--chunk-size` nodes and reports each node as its own test.

pytest costs about 2 ms of controller CPU per item (fixture setup, three reports, hooks,
xdist's transport), 38 items a node: that, not our checks, is what a 2,000-node run
spends. A chunk item pays it once for many nodes. What users rely on stays per node,
because each node still gets its own setup/call/teardown reports under the nodeid it has
below the threshold (`tests/test_env.py::test_env_pins_hold[node-17]`): JUnit testcases,
results.json, report.html, summary.md, waivers, Slurm drain reasons and --lf all read
reports. -k is applied per node here (pytest's own matcher, the node's names), and --lf
keeps a chunk that holds a node that failed last time and then runs only those nodes.

Per node, the runner recomputes the function-scoped fixtures that depend on `node`
(`facts`, and fixtures built on it such as `ssh_facts`); a check that needs anything
else per node (testinfra's `host`, a generator fixture, another parameter) stays per node.
"""

from __future__ import annotations

import inspect
import time
import traceback
from dataclasses import dataclass

import pytest
from _pytest.mark import KeywordMatcher
from _pytest.mark.expression import Expression
from ClusterShell.NodeSet import NodeSet

CHUNK_FROM = 256  # nodes; below it every check is one item per node, as always
CHUNK_SIZE = 128
SELECTED = pytest.StashKey[tuple]()  # the chunk's nodes this run reports (-k, --lf)
REPORTS = pytest.StashKey[list]()  # the nodes' reports of the chunk being run
KEYWORDS = pytest.StashKey[dict]()  # the chunk item's keywords, walked once
KEYWORD = pytest.StashKey[str]()  # -k as given, put back once collection is done
INJECTED = pytest.StashKey[set]()  # chunk ids added to --lf's record, taken out at the end


@dataclass(frozen=True)
class NodeChunk:
    nodes: tuple

    def __str__(self) -> str:
        return str(NodeSet.fromlist([n.name for n in self.nodes]))


def parametrize(metafunc: pytest.Metafunc, nodes: list) -> bool:
    """Parametrize `node` with chunks when the run is big enough and the check can run
    per node inside one item; False: the caller parametrizes per node."""
    config = metafunc.config
    if len(nodes) < config.getoption("chunk_from") or not _chunkable(metafunc):
        return False
    size = config.getoption("chunk_size")
    chunks = [NodeChunk(tuple(nodes[i:i + size])) for i in range(0, len(nodes), size)]
    metafunc.parametrize("node", chunks, ids=[str(c) for c in chunks])
    return True


def _chunkable(metafunc: pytest.Metafunc) -> bool:
    closure = metafunc.fixturenames
    if "host" in closure or "record_property" in closure:
        return False
    if any(m.name == "parametrize" for m in metafunc.definition.iter_markers()):
        return False
    for name in _per_node(metafunc._arg2fixturedefs, closure):
        if inspect.isgeneratorfunction(metafunc._arg2fixturedefs[name][-1].func):
            return False
    return True


def _per_node(defs: dict, closure) -> list[str]:
    """Function-scoped fixtures that depend on `node`, dependencies first."""
    order: list[str] = []

    def depends(name: str, seen: frozenset = frozenset()) -> bool:
        if name == "node":
            return True
        if name in seen or name not in defs:
            return False
        fixture = defs[name][-1]
        return fixture.scope == "function" and any(
            depends(arg, seen | {name}) for arg in fixture.argnames)

    def visit(name: str) -> None:
        if name in order or name == "node" or not depends(name):
            return
        for arg in defs[name][-1].argnames:
            visit(arg)
        order.append(name)
    for name in closure:
        visit(name)
    return order


def is_chunk(item: pytest.Item) -> bool:
    spec = getattr(item, "callspec", None)
    return spec is not None and isinstance(spec.params.get("node"), NodeChunk)


def nodeid_of(item: pytest.Item, node) -> str:
    """The nodeid this node's test has below the threshold."""
    return f"{item.nodeid.split('[', 1)[0]}[{node.name}]"


def select(items: list[pytest.Item], config: pytest.Config) -> None:
    """-k per node (pytest's matcher with the node's names in place of the chunk's) and
    --lf per node, before pytest's own -k and --lf see the items."""
    if not any(is_chunk(i) for i in items):
        return  # below the threshold pytest's own -k and --lf act, as always
    expr_text = config.option.keyword.lstrip()
    try:
        expr = Expression.compile(expr_text) if expr_text else None
    except SyntaxError as exc:  # what pytest's own -k says for it
        raise pytest.UsageError(f"Wrong expression passed to '-k': {exc.text}: at column "
                                f"{exc.offset}: {exc.msg}") from None
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    failed = set(cache.get("cache/lastfailed", {})) if cache is not None and \
        config.getoption("lf", False) else set()
    lf = config.pluginmanager.get_plugin("lfplugin")
    keep, dropped = [], []
    for item in items:
        if not is_chunk(item):
            if expr is None or expr.evaluate(KeywordMatcher.from_item(item)):
                keep.append(item)
            else:
                dropped.append(item)
            continue
        base = KeywordMatcher.from_item(item)._names - {item.name}
        chosen = tuple(n for n in item.callspec.params["node"].nodes
                       if (expr is None or expr.evaluate(KeywordMatcher(
                           base | {n.name, f"{item.originalname}[{n.name}]"})))
                       and (not failed or nodeid_of(item, n) in failed))
        if not chosen:
            dropped.append(item)
            continue
        item.stash[SELECTED] = chosen
        keep.append(item)
        if failed and lf is not None:  # so --lf keeps the chunk; cleared at the end
            key = getattr(item, "id", item.nodeid)  # pytest 9 keys it by a structured id
            lf.lastfailed[key] = True
            config.stash.setdefault(INJECTED, set()).add(key)
    if expr is not None:
        config.option.keyword = ""  # applied here, per node; pytest's would drop chunks
        config.stash[KEYWORD] = expr_text
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def restore(config: pytest.Config) -> None:
    if KEYWORD in config.stash:
        config.option.keyword = config.stash[KEYWORD]


def forget_chunks(config: pytest.Config) -> None:
    """--lf's record keeps per-node nodeids only, never the chunks' select() added."""
    lf = config.pluginmanager.get_plugin("lfplugin")
    if lf is not None:
        for nodeid in config.stash.get(INJECTED, set()):
            lf.lastfailed.pop(nodeid, None)


def run_protocol(item: pytest.Item, nextitem, emit, log) -> None:
    """The chunk's own setup/call/teardown, unlogged; each node is logged by the call
    (run_nodes). A chunk whose setup fails or skips (a session fixture, ssh.check off)
    logs that for each of its nodes."""
    from _pytest.runner import runtestprotocol
    nodes = item.stash.get(SELECTED, item.callspec.params["node"].nodes)
    _log_edge(item, nodes[0], "logstart")  # once a chunk: the terminal's file name
    item.stash[REPORTS] = []
    setup = runtestprotocol(item, log=False, nextitem=nextitem)[0]
    if not setup.passed:
        for node in nodes:
            item.stash[REPORTS] += emit(item, node, "setup", None, setup, 0.0)
    log(item, item.stash[REPORTS])
    _log_edge(item, nodes[-1], "logfinish")  # once a chunk: the terminal's last 100 %


def _log_edge(item: pytest.Item, node, hook: str) -> None:
    location = (item.location[0], item.location[1], f"{item.originalname}[{node.name}]")
    getattr(item.ihook, f"pytest_runtest_{hook}")(nodeid=nodeid_of(item, node),
                                                   location=location)


def run_nodes(item: pytest.Item, emit) -> None:
    """The check once per node of the chunk, its per-node fixtures made fresh for each."""
    chunk = item.callspec.params["node"]
    defs = item._fixtureinfo.name2fixturedefs
    per_node = _per_node(defs, item._fixtureinfo.names_closure)
    argnames = item._fixtureinfo.argnames
    for node in item.stash.get(SELECTED, chunk.nodes):
        values = dict(item.funcargs, node=node, request=item._request)
        started, when, error = time.perf_counter(), "setup", None
        try:
            for name in per_node:
                fixture = defs[name][-1]
                values[name] = fixture.func(**{a: values[a] for a in fixture.argnames})
            when = "call"
            item.obj(**{a: values[a] for a in argnames})
        except (KeyboardInterrupt, pytest.exit.Exception):
            raise
        except BaseException as exc:
            error = exc
        item.stash[REPORTS] += emit(item, node, when, error, None,
                                    time.perf_counter() - started)


def traceback_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


class Runner:
    """The hooks that run a chunk item: its own protocol unlogged, its call per node.
    emit(item, node, when, error, setup_report, seconds) makes one node's reports.

    Run alone (or in xdist's controller) each report is logged as it would be for the
    node's own item. On an xdist worker a chunk's reports travel as one bundle inside one
    report under the chunk's nodeid (xdist sends only its current item's reports, one
    message each: that transport cost as much as everything else together), and the
    controller logs them one by one under each node's own nodeid."""

    def __init__(self, config: pytest.Config, emit) -> None:
        self.config, self.emit = config, emit
        self.worker = hasattr(config, "workerinput")
        self.session: pytest.Session | None = None
        self.expected = 0  # tests the run reports, one per node of each chunk

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """The terminal's progress counts tests as reported: one per node, not per item."""
        if any(is_chunk(i) for i in session.items):
            session.testscollected = sum(
                len(i.stash.get(SELECTED, i.callspec.params["node"].nodes)) if is_chunk(i)
                else 1 for i in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        """The same for xdist's controller, from the workers' item ids (a chunk's id is
        its node set)."""
        self.expected = sum(_count(i) for i in ids)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem) -> bool | None:
        if not is_chunk(item):
            return None
        run_protocol(item, nextitem, self.emit, self.log)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        if not is_chunk(pyfuncitem):
            return None
        run_nodes(pyfuncitem, self.emit)
        return True

    def log(self, item: pytest.Item, reports: list[pytest.TestReport]) -> None:
        if not reports:
            return
        if not self.worker:
            for report in reports:
                item.ihook.pytest_runtest_logreport(report=report)
            return
        bundle = [self.config.hook.pytest_report_to_serializable(config=self.config,
                                                                 report=r) for r in reports]
        carrier = pytest.TestReport(item.nodeid, item.location, {}, "passed", None,
                                    "teardown", preflight_bundle=bundle)
        item.ihook.pytest_runtest_logreport(report=carrier)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """In xdist's controller: a worker's bundle is logged report by report, the
        last one in the carrier's place (the hook goes on with it)."""
        bundle = getattr(report, "preflight_bundle", None)
        if not bundle or self.worker:
            return
        worker = getattr(report, "node", None)  # as xdist sets it on what it logs
        made = [self.config.hook.pytest_report_from_serializable(config=self.config, data=d)
                for d in bundle]
        for one in made[:-1]:
            one.node = worker
            self.config.hook.pytest_runtest_logreport(report=one)
        report.__dict__.clear()
        report.__dict__.update(made[-1].__dict__)
        report.node = worker
        if self.expected and self.session is not None:
            self.session.testscollected = self.expected


def _count(nodeid: str) -> int:
    """Tests an item reports: a chunk's id is its node set; anything else is one."""
    if not nodeid.endswith("]"):
        return 1
    try:
        return len(NodeSet(nodeid.split("[", 1)[1][:-1]))
    except Exception:
        return 1
