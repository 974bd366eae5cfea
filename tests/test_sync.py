"""Code sync: every node runs the same code as the controller's source tree."""

import pytest

from preflight import remote
from preflight.checks import sync
from preflight.checks.findings import require

pytestmark = [pytest.mark.sync, pytest.mark.reads("sync")]


@pytest.fixture(scope="session")
def source_tree(cluster):
    if cluster.sync_source is None:
        pytest.skip("no sync.source in cluster.yaml: nothing to compare the nodes with")
    hashes, _ = remote.probe_module().tree_hashes(str(cluster.sync_source), cluster.sync.exclude,
                                                 cluster.sync.max_files)
    return hashes


def test_sync_code_tree_matches_source(node, facts, source_tree):
    require(sync.same_tree(node, facts, source_tree))
