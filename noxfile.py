"""cluster-preflight sessions: `nox -l` lists them."""

from __future__ import annotations

import os

import nox

nox.needs_version = ">=2024.3.2"
nox.options.sessions = ["check"]
nox.options.reuse_existing_virtualenvs = True

REPORTS = "reports"
SIM = ["python", "-m", "simcluster"]


def _install(session: nox.Session, extra: str = "") -> None:
    session.install("-e", f".{extra}")


def _pytest_cluster(session: nox.Session, cluster: str, *args: str, **kw) -> None:
    session.run("pytest", "tests", "--rootdir", ".", f"--cluster={cluster}", "-n", "auto",
                f"--junitxml={REPORTS}/junit.xml", *args, *session.posargs, **kw)


@nox.session
def check(session: nox.Session) -> None:
    """Run every check on every node of cluster.yaml; JUnit and summary into reports/."""
    _install(session)
    _pytest_cluster(session, "cluster.yaml")


@nox.session(default=False)
def nccl(session: nox.Session) -> None:
    """The network pre-checks and the cross-node collective alone (-- --pairwise to add pairs)."""
    _install(session)
    session.run("pytest", "tests", "--rootdir", ".", "--cluster=cluster.yaml", "-m", "nccl",
                f"--junitxml={REPORTS}/junit-nccl.xml", *session.posargs)


@nox.session(default=False)
def provision(session: nox.Session) -> None:
    """The plan that makes nodes right (exit 10: changes pending); -- --apply carries it out."""
    _install(session)
    session.run("python", "-m", "preflight", "provision", *session.posargs,
                success_codes=[0, 10])


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Write conda-lock.yml from a reference node (-- --node NAME; default: the master)."""
    _install(session)
    session.run("python", "-m", "preflight", "lock", *session.posargs)


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """A 4-node simulated cluster: checked healthy, two nodes broken and caught, provisioned."""
    _install(session, "[simcluster]")
    session.run(*SIM, "up", "--nodes", "4")
    # the cluster.yaml `simcluster up` writes: the shipped one with what this machine
    # cannot change said in it (its open-file limit, where below the default)
    bed = f"{os.environ.get('SIMCLUSTER_HOME', '/var/tmp/simcluster')}/run/cluster.yaml"
    try:
        _pytest_cluster(session, bed, "-m", "not nccl")
        _show_summary(session)
        session.log("Now breaking two nodes the way real clusters break: node-3 gets another "
                    "NCCL (an unpinned upgrade), node-2 a pip-installed NCCL.")
        session.run(*SIM, "fault", "conda-version", "node-3", "nccl", "2.21.5.1")
        session.run(*SIM, "fault", "pip-copy", "node-2")
        _pytest_cluster(session, bed, "-m", "not nccl", success_codes=[1])
        _show_summary(session)
        session.log("Act three: provision plans exactly those two nodes (changes nothing) ...")
        session.run("python", "-m", "preflight", "--cluster", bed, "provision",
                    success_codes=[10])
        session.log("... then applies the plan and checks again: green.")
        session.run("python", "-m", "preflight", "--cluster", bed, "provision", "--apply")
        session.log("The collective across all 4 nodes (nox -s nccl on a real cluster):")
        session.run("pytest", "tests", "--rootdir", ".", f"--cluster={bed}", "-m", "nccl",
                    "-q", f"--junitxml={REPORTS}/junit-nccl.xml")
        _show_summary(session)
    finally:
        session.run(*SIM, "down")


def _show_summary(session: nox.Session) -> None:
    with open(f"{REPORTS}/summary.md") as summary:
        session.log("reports/summary.md:\n" + summary.read())
    session.log(f"the same run for ops, in one file: {REPORTS}/report.html (open it in a "
                "browser; it shows what changed since the previous run)")


def _selftest(session: nox.Session, layer: str, *args: str) -> None:
    session.run("pytest", "selftest", "--rootdir", ".", "-m", layer,
                f"--junitxml={REPORTS}/selftest-{layer.replace(' ', '-')}.xml", *args,
                *session.posargs)


@nox.session
def unit(session: nox.Session) -> None:
    """The harness's unit layer: no test bed, in parallel (replays run in-process)."""
    _install(session, "[dev]")
    _selftest(session, "not simcluster", "-n", "auto")


@nox.session(default=False)
def e2e(session: nox.Session) -> None:
    """The end-to-end layer: the real suites on a simulated cluster (root, Linux)."""
    _install(session, "[dev]")
    _selftest(session, "simcluster")


@nox.session
def selftest(session: nox.Session) -> None:
    """The harness's own tests: the unit layer, then the end-to-end layer."""
    _install(session, "[dev]")
    _selftest(session, "not simcluster", "-n", "auto")
    _selftest(session, "simcluster")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff, and the layering contracts (import-linter: stages import one way)."""
    session.install("ruff", "import-linter>=2.1")
    session.run("ruff", "check", "src", "tests", "fixtures", "selftest", "noxfile.py",
                *session.posargs)
    session.install("-e", ".")
    session.run("lint-imports", "--no-cache")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Measure the test bed and the harness; JSON into reports/bench/."""
    _install(session, "[dev]")
    session.run("python", "-m", "selftest.bench", *session.posargs)
