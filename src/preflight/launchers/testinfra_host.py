"""A testinfra `host` whose commands travel over our strict, bounded SSH connection.

    def test_ntp_running(host):
        assert host.service("chrony").is_running
"""

from __future__ import annotations

from preflight.config.inventory import Cluster, Node
from preflight.launchers import transport

_HOSTS: dict[tuple, object] = {}


def get(cluster: Cluster, node: Node):
    """One testinfra host per node and cluster file, for the whole process (as testinfra)."""
    key = (str(cluster.path), str(cluster.known_hosts), cluster.trust_new_host_keys, node)
    if key not in _HOSTS:
        _HOSTS[key] = _make(cluster, node)
    return _HOSTS[key]


def _make(cluster: Cluster, node: Node):
    try:
        import testinfra
        from testinfra.backend.paramiko import ParamikoBackend
    except ImportError as exc:
        msg = "the `host` fixture needs pytest-testinfra: pip install pytest-testinfra"
        raise RuntimeError(msg) from exc

    class Backend(ParamikoBackend):
        """testinfra's backend with its client replaced by ours (host keys checked)."""

        @property
        def client(self):
            return self._connection().client

        @client.deleter
        def client(self):  # testinfra drops a broken client this way; reconnect next time
            self._conn = None

        def _connection(self):
            if getattr(self, "_conn", None) is None:
                self._conn = transport.connect(cluster, node)
            return self._conn

    backend = Backend(node.name, timeout=int(node.command_timeout))
    return testinfra.host.Host(backend)
