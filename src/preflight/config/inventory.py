"""cluster.yaml: which nodes, how to reach them, and what each must have.

    cluster: train-a
    environment: environment.yml
    defaults: {user: ubuntu, gpus: 8, ssh_config: ~/.ssh/config}
    nodes:
      - {name: head, role: master, address: 10.0.0.10}
      - {name: "worker-[1-4]"}
      - {name: worker-5, gpus: 7}     # per-node override; each node appears once

Resolution order for a setting: the node's entry, then `defaults`, then ~/.ssh/config
(for user, port, address, identity and proxy), then the built-in default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from pydantic import ValidationError

from preflight.config import envspec, sshconfig, yamlpos
from preflight.config.clusterfile import (
    ClusterFile,
    Defaults,
    NodeEntry,
    explain,
)
from preflight.config.envspec import EnvSpec
from preflight.config.noderange import MAX_NODES, expand_nodes
from preflight.core.errors import UserError
from preflight.core.nodetext import one_line

BUILTIN = {"connect_timeout": 10.0, "command_timeout": 120.0, "miniconda": "/opt/miniconda",
           "workspace": "/workspace/src", "gpus": 0}


@dataclass(frozen=True)
class Node:
    """One node with every setting resolved (cluster.yaml entry > defaults > built-in)."""

    name: str
    role: str
    address: str | None
    user: str | None
    port: int | None
    identity_file: str | None
    proxy_jump: str | None
    connect_timeout: float
    command_timeout: float
    miniconda: str
    env_name: str
    workspace: str
    gpus: int

    @property
    def env_prefix(self) -> str:
        return f"{self.miniconda}/envs/{self.env_name}"


@dataclass(frozen=True)
class Cluster:
    """cluster.yaml, read and checked. Each block (nccl, ssh, gpu_health, ...) is declared
    once, in clusterfile.ClusterFile, and read from the validated model: `cluster.nccl` is
    `cluster.spec.nccl`. A new block needs no field here. The fields below are what
    loading derives: resolved paths, the parsed environment, the nodes."""

    spec: ClusterFile
    path: Path
    environment: Path
    env: EnvSpec  # environment.yml, parsed once here
    lock: Path | None
    sync_source: Path | None
    installer: Path | None  # provision.installer.path, resolved and existing
    waivers: tuple  # waivers.Waiver, read from report.waivers
    login: Node | None  # where Slurm commands run (slurm.login, resolved like a node)
    ssh_config: Path | None
    known_hosts: Path
    trust_new_host_keys: bool
    parallelism: int
    nodes: tuple[Node, ...]

    def __getattr__(self, name: str):
        """A cluster.yaml block, from the validated model (only for names not above)."""
        spec = self.__dict__.get("spec")
        if spec is not None and name in type(spec).model_fields:
            return getattr(spec, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def name(self) -> str:
        return self.spec.cluster

    def with_blocks(self, **blocks) -> Cluster:
        """This cluster with some blocks replaced (already validated models).

        >>> from preflight.config.clusterfile import NcclSettings
        >>> c = Cluster(ClusterFile(cluster="c", nodes=[{"name": "n1"}]), *[None] * 12, ())
        >>> c.with_blocks(nccl=NcclSettings(rdzv_timeout=10)).nccl.rdzv_timeout
        10.0
        """
        return replace(self, spec=self.spec.model_copy(update=blocks))

    @property
    def allowed_channels(self) -> tuple[str, ...]:
        return tuple(self.spec.allowed_channels)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    @property
    def master(self) -> Node:
        return next(n for n in self.nodes if n.role == "master")

    def select(self, nodeset: str | None = None, role: str | None = None) -> list[Node]:
        """Nodes in nodeset (ClusterShell syntax) with role, sorted by name as given."""
        chosen = list(self.nodes)
        if nodeset:
            wanted = set(expand_nodes(nodeset, "--nodes"))
            unknown = sorted(wanted - {n.name for n in chosen})
            if unknown:
                msg = f"--nodes names {', '.join(unknown)}, not in {self.path}"
                raise UserError(msg)
            chosen = [n for n in chosen if n.name in wanted]
        if role:
            chosen = [n for n in chosen if n.role == role]
        return chosen


def load(path: str | Path) -> Cluster:
    """Read and check cluster.yaml; a mistake raises UserError naming file and line."""
    path = Path(path)
    doc = yamlpos.load(path, "cluster")
    if not isinstance(doc.data, dict):
        raise UserError(f"{path}:1: expected a mapping with 'cluster' and 'nodes' keys")
    try:
        spec = ClusterFile.model_validate(doc.data)
    except ValidationError as exc:
        raise UserError(explain(exc.errors()[0], doc)) from None
    base = path.parent
    env_path = _existing(base, spec.environment, doc, ("environment",), "environment")
    lock = _existing(base, spec.lock, doc, ("lock",), "lock") if spec.lock else None
    env = envspec.load(env_path)
    d = spec.defaults
    return Cluster(
        spec=spec, path=path, environment=env_path, lock=lock,
        sync_source=_source_dir(base, spec.sync.source, doc),
        installer=_existing(base, spec.provision.installer.path, doc,
                            ("provision", "installer", "path"), "installer")
        if spec.provision.installer else None,
        waivers=_waivers(base, spec.report.waivers, doc),
        login=_resolve(spec.slurm.login, NodeEntry(name=spec.slurm.login), d, env.name)
        if spec.slurm.login else None,
        ssh_config=_ssh_config(base, d, doc),
        known_hosts=_user_path(base, d.known_hosts),
        trust_new_host_keys=d.trust_new_host_keys, parallelism=d.parallelism,
        env=env, nodes=_nodes(spec, doc, env.name))


def _nodes(spec: ClusterFile, doc: yamlpos.Located, env_name: str) -> tuple[Node, ...]:
    seen: dict[str, int] = {}
    addresses: dict[str, str] = {}  # address:port -> node
    nodes = []
    for index, entry in enumerate(spec.nodes):
        where = doc.where(("nodes", index, "name"))
        names = expand_nodes(entry.name, where)
        if len(names) > 1 and entry.address:
            raise UserError(f"{where}: 'address' given for the range {entry.name}; "
                            "give each node its own entry or resolve names via ssh_config")
        if entry.address:  # one address may serve two nodes only on different ports
            at = f"{entry.address}:{entry.port or spec.defaults.port or 22}"
            if at in addresses:
                raise UserError(f"{doc.where(('nodes', index, 'address'))}: address "
                                f"{one_line(at, 60)} is also node '{addresses[at]}'s; each "
                                "node needs its own")
            addresses[at] = names[0]
        if len(seen) + len(names) > MAX_NODES:
            raise UserError(f"{where}: more than {MAX_NODES} nodes in all")
        for name in names:
            if name in seen:
                raise UserError(f"{where}: node '{name}' is listed twice "
                                f"(first at line {seen[name]}); remove one")
            seen[name] = doc.line(("nodes", index, "name"))
            nodes.append(_resolve(name, entry, spec.defaults, env_name))
    masters = [n.name for n in nodes if n.role == "master"]
    if len(masters) > 1:
        raise UserError(f"{doc.path}: more than one master ({', '.join(masters)}); "
                        "torchrun needs exactly one")
    if not masters:  # the first node leads the rendezvous unless told otherwise
        nodes[0] = Node(**{**{f.name: getattr(nodes[0], f.name) for f in fields(Node)},
                          "role": "master"})
    return tuple(nodes)


def _resolve(name: str, entry: NodeEntry, defaults: Defaults, env_name: str) -> Node:
    def pick(key):
        for source in (entry, defaults):
            if getattr(source, key) is not None:
                return getattr(source, key)
        return BUILTIN.get(key)
    keys = [f.name for f in fields(Node) if f.name not in ("name", "role", "address", "env_name")]
    return Node(name=name, role=entry.role, address=entry.address,
                env_name=pick("env_name") or env_name, **{k: pick(k) for k in keys})


def _existing(base: Path, rel: str, doc, loc: tuple, what: str) -> Path:
    path = _user_path(base, rel)
    if not path.is_file():
        raise UserError(f"{doc.where(loc)}: {what} file '{rel}' not found (looked at {path})")
    return path


def _waivers(base: Path, rel: str | None, doc) -> tuple:
    from preflight.config import waivers
    if rel is None:
        return ()
    return waivers.load(_existing(base, rel, doc, ("report", "waivers"), "waivers"))


def _source_dir(base: Path, rel: str | None, doc) -> Path | None:
    if rel is None:
        return None
    path = _user_path(base, rel)
    if not path.is_dir():
        raise UserError(f"{doc.where(('sync', 'source'))}: sync source '{rel}' is not a "
                        f"folder (looked at {path})")
    return path


def _ssh_config(base: Path, defaults: Defaults, doc) -> Path | None:
    """The controller's ssh_config; one named in cluster.yaml must exist (the built-in
    ~/.ssh/config may be absent, as for ssh itself)."""
    if not defaults.ssh_config:
        return None
    path = _user_path(base, defaults.ssh_config)
    if "ssh_config" in defaults.model_fields_set and not path.is_file():
        raise UserError(f"{doc.where(('defaults', 'ssh_config'))}: ssh_config file "
                        f"'{defaults.ssh_config}' not found (looked at {path})")
    sshconfig.load(path)  # an Include loop or a runaway expansion: one line, now
    return path


def _user_path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
