"""The pytest plugin: options, one parametrization over nodes, facts gathered once per run.

Facts are gathered in the controlling process before xdist starts its workers (in
pytest_configure); workers read the file. `--dist loadgroup` is not relied on: with
pytest 9.2 it does not keep a group on one worker (pytest-xdist#1386).
"""

from __future__ import annotations

import contextlib
import datetime
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from preflight import chunks
from preflight.checks import logins
from preflight.checks.findings import CheckFailed, NotChecked, worst
from preflight.config import envspec, inventory, lockfile, waivers
from preflight.core import channels, progress
from preflight.core.errors import UserError
from preflight.core.nodetext import TEXT_MAX, clean
from preflight.facts import contract
from preflight.facts import store as facts_mod
from preflight.facts.contract import SectionBroken
from preflight.launchers import probe, registry
from preflight.plugin_live import collective, collective_pairs, master_port  # noqa: F401 - fixtures
from preflight.report import collector as report
from preflight.runstate import CLUSTER, FACTS, LAUNCHER, LOCK, NODES, STATE, WORKERINPUT, RunState

MESSAGE_MAX = 8 * TEXT_MAX  # one test's whole message (many findings)
MARKERS = {
    "miniconda": "Miniconda install and layout",
    "env": "conda environment pins, provenance and cross-node sameness",
    "cuda": "torch runtime, GPUs, CUDA and driver",
    "gpu_health": "PCIe links, XIDs, throttling, ECC, GPU modes, DCGM, NVLink, InfiniBand "
                  "(severity-tagged)",
    "ssh": "SSH client and server configuration, keys, node-to-node",
    "nccl": "cross-node collective test and its network pre-checks (slow)",
    "jupyter": "the env's Jupyter kernel and no server open without auth",
    "sync": "the code tree on every node matches the controller's source tree",
    "network": "name resolution, interfaces and the master port, before any torchrun",
    "host": "shared memory and disk: what NCCL and a job need of the host",
    "slow": "takes more than a few seconds",
    "reads": "the facts sections a check reads: it ERRORS where one of them is broken",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cluster", "cluster-preflight")
    group.addoption("--cluster", default=None,
                    help="cluster.yaml to check (default: ./cluster.yaml when running tests/)")
    group.addoption("--nodes", default=None,
                    help="check only these nodes, in ClusterShell syntax: worker-[1-4],head")
    group.addoption("--role", choices=("master", "worker"), default=None,
                    help="check only nodes with this role")
    group.addoption("--trust-new-host-keys", action="store_true",
                    help="accept and record host keys not yet in known_hosts (new cluster)")
    group.addoption("--facts", default=None,
                    help="use facts from this JSON file instead of probing the nodes")
    group.addoption("--pairwise", action="store_true",
                    help="also run the collective between pairs of nodes to name a slow one")
    group.addoption("--drain-failed", action="store_true",
                    help="Slurm: drain every node that failed a check (reason prefixed "
                         "with slurm.drain_prefix); without it the report lists what would be")
    group.addoption("--resume-fixed", action="store_true",
                    help="Slurm: resume nodes this harness drained that now pass (never a "
                         "node drained by anyone else)")
    group.addoption("--report-dir", default="reports",
                    help="where facts.json and summary.md go (default: reports)")
    group.addoption("--chunk-from", type=int, default=chunks.CHUNK_FROM,
                    help="from this many nodes, one item runs a check over a chunk of "
                         "nodes, still reported per node (default: %(default)s)")
    group.addoption("--chunk-size", type=int, default=chunks.CHUNK_SIZE,
                    help="nodes per chunk item (default: %(default)s)")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` (nox -s check) on a run that checks in chunks (from --chunk-from nodes)
    means no workers: each would load every node's facts and send every node's reports
    back one by one. Measured at 2,000 nodes on 2 cores: 21 ms a node in one process,
    44 with two workers (docs/scale.md). An explicit `-n N` is still obeyed."""
    path = _cluster_path(config)
    if path is None:
        return None
    try:
        cluster = _load(config, path)
        count = len(cluster.select(config.getoption("nodes"), config.getoption("role")))
    except UserError:
        return None  # pytest_configure says why, once
    return 0 if count >= config.getoption("chunk_from") else None


EARLY = pytest.StashKey[inventory.Cluster]()  # cluster.yaml as the xdist hook read it


def _load(config: pytest.Config, path: Path) -> inventory.Cluster:
    """cluster.yaml, parsed once per process (the xdist hook may have read it already)."""
    if EARLY not in config.stash:
        config.stash[EARLY] = inventory.load(path)
    return config.stash[EARLY]


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.pluginmanager.register(chunks.Runner(config, _emit), "preflight-chunks")
    path = _cluster_path(config)
    if path is None:
        return
    try:
        cluster = _load(config, path)
        if config.getoption("trust_new_host_keys"):
            cluster = _with_trust(cluster)
        nodes = _sorted(cluster.select(config.getoption("nodes"), config.getoption("role")))
        # read here, once per process: a garbage lock is one line and exit 2, not N errors
        config.stash[LOCK] = lockfile.read(cluster.lock) if cluster.lock else None
    except UserError as exc:
        _stop(config, str(exc))
    config.stash[CLUSTER] = cluster
    config.stash[NODES] = nodes
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: the controller has gathered and checked
        state = RunState.from_dict(workerinput[WORKERINPUT])
        config.stash[STATE] = state
        config.stash[LAUNCHER] = registry.create(cluster, state=state.launcher)
        checked = facts_mod.load(Path(state.checked_facts))
        config.stash[FACTS] = {name: contract.wrap(doc) for name, doc in checked.items()}
        return
    if config.option.collectonly:
        return
    if config.getoption("facts") and (config.getoption("drain_failed") or
                                      config.getoption("resume_fixed")):
        _stop(config, "--drain-failed and --resume-fixed act on live nodes: a replay "
              "(--facts) never contacts Slurm; run without --facts to drain or resume")
    progress.use_terminal()  # capture is suspended here: stderr is what the user sees
    state = config.stash[STATE] = RunState()
    launcher = config.stash[LAUNCHER] = registry.create(cluster)  # the one choice of a run
    config.add_cleanup(launcher.release)  # the run's Slurm job, held until the run ends
    # its clock includes the gathering
    collector = report.Collector(config, cluster, nodes, state, lambda results: launcher.after_run(
        results, drain=config.getoption("drain_failed"),
        resume=config.getoption("resume_fixed")))
    _mark_incomplete(config, "the run started and has not finished (or was stopped)")
    try:
        config.stash[FACTS] = collector.gathered = _facts_for_run(config, cluster, nodes)
    except UserError as exc:
        _stop(config, str(exc))
    config.pluginmanager.register(collector, "preflight-report")


def _mark_incomplete(config: pytest.Config, reason: str) -> None:
    """Until this run's reports are written, every one of them (summary.md, results.json,
    report.html, the JUnit file) says the run is incomplete: a previous run's verdict
    never stands beside this run's results."""
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    name = config.stash[CLUSTER].name if CLUSTER in config.stash else "cluster"
    junit = getattr(config.option, "xmlpath", None)
    with contextlib.suppress(OSError):  # an unwritable report dir is pytest's error to give
        report.mark_incomplete(Path(config.getoption("report_dir")),
                               Path(junit) if junit else None, name, reason)


def _stop(config: pytest.Config, message: str) -> None:
    """One line, exit 2; the summary says why the run stopped."""
    message = clean(message, 1000)
    _mark_incomplete(config, message)
    pytest.exit(message, returncode=UserError.exit_code)


def _facts_for_run(config: pytest.Config, cluster, nodes) -> dict:
    """Gathered (or replayed) facts, validated against the contract; the validated form
    goes to the xdist workers, the raw one stays in facts.json for replay."""
    out = Path(config.getoption("report_dir"))
    replay = config.getoption("facts")
    if replay:
        gathered = facts_mod.load_replay(Path(replay))
    else:
        gathered = config.stash[LAUNCHER].gather(nodes)
        facts_mod.save(gathered, out / "facts.json")
    checked, ignored = contract.validate_all(gathered, contract.Expect.of(cluster),
                                             [n.name for n in nodes])
    if ignored:
        shown = ", ".join(map(str, ignored[:8])) + (" ..." if len(ignored) > 8 else "")
        config.issue_config_time_warning(pytest.PytestWarning(
            f"facts of {len(ignored)} node(s) outside this run's selection ignored: {shown}"),
            stacklevel=2)
    # for the xdist workers only: a private temp file, removed with the run (the redacted,
    # user-facing copy is facts.json; redacting 2,000 nodes again would cost minutes)
    folder = Path(tempfile.mkdtemp(prefix="preflight-facts-"))
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    path = folder / "checked.json"
    facts_mod.save(checked, path, redact=False)
    state = config.stash[STATE]
    state.checked_facts = str(path)
    state.launcher = config.stash[LAUNCHER].as_state()
    config.pluginmanager.register(_XdistWorkers(state), "preflight-xdist")
    return checked


class _XdistWorkers:
    """Hands each xdist worker the run's state (workerinput): run id, the validated
    facts file, the launcher's state."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        node.workerinput[WORKERINPUT] = self.state.as_dict()


def _cluster_path(config: pytest.Config) -> Path | None:
    """--cluster, or ./cluster.yaml when the run includes the suites in tests/."""
    given = config.getoption("cluster")
    if given:
        return Path(given)
    suites = (config.rootpath / "tests").resolve()
    args = [Path(a.split("::")[0]).resolve() for a in config.args] or [suites]
    if any(a == suites or suites in a.parents for a in args):
        return config.rootpath / "cluster.yaml"
    return None


def _with_trust(cluster: inventory.Cluster) -> inventory.Cluster:
    from dataclasses import replace
    return replace(cluster, trust_new_host_keys=True)


def _sorted(nodes: list) -> list:
    def natural(node):
        return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", node.name)]
    return sorted(nodes, key=natural)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "node" not in metafunc.fixturenames:
        return
    if NODES not in metafunc.config.stash:
        msg = "this suite checks a cluster: run it with --cluster cluster.yaml"
        raise pytest.UsageError(msg)
    nodes = metafunc.config.stash[NODES]
    if not chunks.parametrize(metafunc, nodes):
        metafunc.parametrize("node", nodes, ids=[n.name for n in nodes])


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> inventory.Cluster:
    return pytestconfig.stash[CLUSTER]


@pytest.fixture(scope="session")
def cluster_facts(pytestconfig: pytest.Config) -> dict[str, dict]:
    """Facts of every selected node, reachable or not (check `reach`)."""
    return pytestconfig.stash[FACTS]


@pytest.fixture(scope="session")
def ssh_logins(cluster: inventory.Cluster, cluster_facts, pytestconfig: pytest.Config) -> dict:
    """The node-to-node logins each node's probe made (checks/logins.from_facts), over the
    plan the launcher gave the probes: the selected nodes, in order."""
    if cluster.ssh.node_to_node is False:
        pytest.skip("ssh.node_to_node is false in cluster.yaml")
    return logins.from_facts(probe.login_plan(cluster, pytestconfig.stash[NODES]),
                             cluster_facts)


@pytest.fixture(scope="session")
def env_spec(pytestconfig: pytest.Config) -> envspec.EnvSpec:
    """environment.yml, parsed: conda MatchSpecs, pip requirements, unchecked lines."""
    return pytestconfig.stash[CLUSTER].env


@pytest.fixture(scope="session")
def allowed_channels(cluster, env_spec) -> set[str]:
    """Channels packages may come from: environment.yml's plus cluster.yaml's allow-list."""
    return channels.allowed([*env_spec.channels, *cluster.allowed_channels])


@pytest.fixture(scope="session")
def busbw_threshold(cluster, cluster_facts):
    """The busbw the collective must reach: cluster.yaml's number, or with `auto` the
    reference for the cluster's GPU model and link (references.py), or none (and why)."""
    from preflight.checks import references
    try:
        return references.for_cluster(cluster, cluster_facts)
    except UserError as exc:
        pytest.fail(f"cannot read the bandwidth references: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def env_lock(pytestconfig: pytest.Config):
    """The lock named in cluster.yaml, read; tests that need it skip when there is none."""
    locked = pytestconfig.stash[LOCK]
    if locked is None:
        pytest.skip("no lock in cluster.yaml (write one with `nox -s lock`)")
    return locked


@pytest.fixture
def facts(request: pytest.FixtureRequest, node, cluster_facts) -> dict:
    """This node's facts; the test errors (never passes or skips) when the node was not
    reached or a section the test reads (its `reads` marker) is broken on the node."""
    if isinstance(node, chunks.NodeChunk):
        return None  # a chunk item: chunks.run_nodes makes this fixture for each node
    found = cluster_facts[node.name]  # every selected node has an entry (validate_all)
    if not found["reach"]["ok"]:
        pytest.fail(f"{node.name} {found['reach']['reason']}", pytrace=False)
    cause = contract.broken_cause(found, request.node.get_closest_marker("reads").args)
    if cause:
        pytest.fail(f"{node.name}: {request.node.originalname}: cannot check: {cause}",
                    pytrace=False)
    return found


@pytest.fixture
def host(node, cluster):
    """A testinfra host riding on our strict SSH transport, for testinfra-style checks."""
    from preflight.launchers import testinfra_host
    return testinfra_host.get(cluster, node)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item], config: pytest.Config) -> None:
    """Every test that takes `facts` declares the sections it reads, checked once here
    rather than per test (58,000 items at 2,000 nodes). -k and --lf per node of a chunk
    (chunks.select) before pytest's own see the items."""
    chunks.select(items, config)
    for item in items:
        if "facts" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("reads")
        if marker is None or not marker.args:
            msg = f"{item.nodeid} reads facts without declaring which: add @pytest.mark.reads"
            raise pytest.UsageError(msg)
        unknown = set(marker.args) - set(contract.SECTIONS)
        if unknown:
            msg = f"{item.nodeid}: unknown facts sections {sorted(unknown)}"
            raise pytest.UsageError(msg)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    chunks.restore(session.config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    chunks.forget_chunks(session.config)


def _emit(item: pytest.Item, node, when: str, error: BaseException | None,  # noqa: PLR0917 - one call shape for both callers
          setup: pytest.TestReport | None, duration: float) -> list[pytest.TestReport]:
    """One node's reports for a check a chunk item ran, as pytest_runtest_makereport
    would have made them for that node's own item; chunks.Runner logs them."""
    nodeid = chunks.nodeid_of(item, node)
    props = [("node", node.name), ("check", item.originalname)]
    outcome, longrepr = "passed", None
    if setup is not None:  # the chunk's own setup skipped or failed: so did this node's
        outcome, longrepr = setup.outcome, setup.longrepr
    elif isinstance(error, NotChecked | pytest.skip.Exception):
        reason = str(error) if isinstance(error, NotChecked) else error.msg
        outcome, longrepr = "skipped", (str(item.path), (item.location[1] or 0) + 1,
                                        f"Skipped: {clean(reason)}")
    elif isinstance(error, CheckFailed):
        props += _finding_properties(error)
        outcome, longrepr = "failed", clean(str(error), MESSAGE_MAX)
    elif isinstance(error, SectionBroken | pytest.fail.Exception):
        outcome, longrepr = "failed", clean(str(error), MESSAGE_MAX)
    elif error is not None:
        outcome, longrepr = "failed", clean(chunks.traceback_text(error), MESSAGE_MAX)
    if chunks.KEYWORDS not in item.stash:  # walking the item's keyword chain costs
        item.stash[chunks.KEYWORDS] = dict.fromkeys(item.keywords, 1)
    keywords = {**item.stash[chunks.KEYWORDS], node.name: 1}
    location = (item.location[0], item.location[1], f"{item.originalname}[{node.name}]")
    # no report for a passed setup (no reader acts on one): two reports a node, not three
    reports = []
    for phase in (when, "teardown"):
        mine = phase == when
        rep = pytest.TestReport(nodeid, location, keywords,
                                outcome if mine else "passed", longrepr if mine else None,
                                phase, duration=duration if mine else 0.0,
                                user_properties=list(props))
        if mine and rep.failed:
            _apply_waiver(item, rep, node.name)
        reports.append(rep)
    return reports


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """A check that says "not checked: why" (NotChecked) is a skip with that reason."""
    try:
        return (yield)
    except NotChecked as exc:  # reported at the test's line, as a skip marker is
        raise pytest.skip.Exception(str(exc), _use_item_location=True) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Node, check, expected and found as JUnit properties; findings as the message.

    JUnit takes properties from item.user_properties (copied into each report), so
    they are set on the item before the report is made.
    """
    node = getattr(item, "callspec", None) and item.callspec.params.get("node")
    if isinstance(node, chunks.NodeChunk):  # never logged: each node is (_emit)
        return (yield)
    if node is not None and call.when == "setup":
        item.user_properties += [("node", node.name), ("check", item.originalname)]
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, CheckFailed):
        item.user_properties += _finding_properties(error)
    rep = yield
    if isinstance(error, CheckFailed | SectionBroken | pytest.fail.Exception):
        # the message is the whole report: no traceback, node text made safe (nodetext)
        rep.longrepr = clean(str(error), MESSAGE_MAX)
    elif rep.skipped and isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
        path, line, reason = rep.longrepr
        rep.longrepr = (path, line, clean(reason))
    if rep.failed and node is not None:
        _apply_waiver(item, rep, node.name)
    return rep


def _finding_properties(error: CheckFailed) -> list[tuple[str, str]]:
    """A failed check's findings as JUnit properties (results.json reads them too)."""
    found = error.findings
    return [("expected", clean("; ".join(f.expected for f in found))),
            ("found", clean("; ".join(f.found for f in found))),
            ("hint", clean("; ".join(f.hint for f in found if f.hint))),
            ("severity", worst(found))]


def _apply_waiver(item: pytest.Item, rep: pytest.TestReport, node: str) -> None:
    """A failure a live waiver covers becomes a skip that says it is waived (JUnit:
    skipped, with the reason and expiry); past its date, the failure stands and says so."""
    cluster = item.config.stash[CLUSTER]
    if not cluster.waivers:
        return
    today = datetime.date.today()
    waiver = waivers.find(cluster.waivers, item.originalname, node, today)
    if waiver is None:
        return
    failure = clean(str(rep.longrepr), MESSAGE_MAX)
    if waiver.expired(today):
        rep.longrepr = f"{failure}\nwaiver {waiver.id} expired on {waiver.expires}: " \
                       f"{clean(waiver.reason)} (owner {clean(waiver.owner)})"
        rep.user_properties += [("waiver", waiver.id), ("waiver_state", "expired")]
        return
    rep.outcome = "skipped"
    first = failure.strip().splitlines()[-1] if failure.strip() else ""
    rep.longrepr = (str(item.path), (item.location[1] or 0) + 1,
                    f"waived: {clean(waiver.describe())}; the failure: {first}")
    rep.user_properties += [("waiver", waiver.id), ("waiver_state", "applied")]
