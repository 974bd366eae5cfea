"""The conda env: environment.yml holds, packages come from the right place, nodes agree."""

import pytest

from preflight.checks import environment, integrity, lock, sameness
from preflight.checks.findings import require

pytestmark = [pytest.mark.env, pytest.mark.reads("env")]


@pytest.fixture(scope="session")
def census(cluster_facts):
    """Versions per package across the reached nodes, counted once."""
    return environment.census(cluster_facts)


@pytest.fixture(scope="session")
def drift(cluster_facts):
    """Packages that differ between nodes, computed once, not once per node."""
    return sameness.Drift(cluster_facts)


def test_env_pins_hold(node, facts, env_spec, census):
    require(environment.pins(node, facts, env_spec, census))


def test_env_channels_allowed(node, facts, allowed_channels):
    require(environment.env_missing(node, facts)
            or environment.provenance(node, facts, allowed_channels))


def test_env_records_intact(node, facts):
    require(environment.env_missing(node, facts) or environment.records_intact(node, facts))


def test_env_files_match_their_records(node, facts):
    """Every file of every record there at its recorded size (env.verify: sha256 hashes)."""
    require(environment.env_missing(node, facts) or integrity.files_match_records(node, facts))


def test_env_no_pip_copy_of_conda_package(node, facts, env_spec):
    require(environment.env_missing(node, facts) or
            environment.installed_twice(node, facts, env_spec))


def test_env_same_on_every_node(node, facts, drift):
    require(*drift.sameness(node))


def test_env_matches_lock(node, facts, env_lock):
    require(environment.env_missing(node, facts) or lock.matches_lock(node, facts, env_lock))


def test_env_spec_fully_checkable(env_spec):
    """Lines of environment.yml the harness cannot check are reported, never dropped."""
    if env_spec.unchecked:
        pytest.skip("; ".join(str(u) for u in env_spec.unchecked))
