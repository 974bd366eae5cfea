"""Declared shapes of the probe's sections (see contract.py), one TypedDict per section.

Keys the checks read are declared; a node may send more (newer probes), never less or of
another type. Validation is strict: "false" is not a boolean, 1 is not a string.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints
from typing_extensions import NotRequired, TypedDict

# Bounds on what a node may send: a 10 MB "version" is no version (and would cost every
# check that reads it); such a section does not fit and its checks ERROR on that node.
Word = Annotated[str, StringConstraints(max_length=256)]  # names, versions, builds
Path = Annotated[str, StringConstraints(max_length=4096)]
Text = Annotated[str, StringConstraints(max_length=4 << 20)]  # whole files, command output

Addresses = list[str] | str  # addresses, or "cannot resolve: ..."


class Reach(TypedDict):
    ok: bool
    reason: str | None
    executions: NotRequired[int]
    seconds: NotRequired[float]
    # the controller's clock when the probe was sent and its answer received
    sent: NotRequired[float]
    received: NotRequired[float]


class PathInfo(TypedDict):
    exists: bool
    kind: NotRequired[str]
    mode: NotRequired[int]
    uid: NotRequired[int]
    gid: NotRequired[int]
    owner: NotRequired[str]
    target: NotRequired[str]
    resolves: NotRequired[bool]


class Space(TypedDict):
    size: int
    free: int
    inodes: int
    inodes_free: int
    path: NotRequired[Path]


class Hung(TypedDict):
    pid: int
    comm: Word


class PortUse(TypedDict):
    port: int
    listening: bool


class TimeSync(TypedDict):
    daemon: Literal["chronyd", "systemd-timesyncd", "ntpd"] | None
    synchronized: bool | None


class Stray(TypedDict):
    d_state: Annotated[list[Hung], Field(max_length=20)]
    master_port: NotRequired[PortUse]  # on the master only


class NodeFacts(TypedDict):
    hostname: Word
    uid: int
    user: Word
    kernel: NotRequired[str]
    os: NotRequired[str]
    groups: NotRequired[list[str]]
    # host readiness (older probes: absent)
    shm: NotRequired[Space | None]
    disks: NotRequired[dict[Literal["env", "workspace", "tmp", "tmpdir", "home"], Space]]
    glibc: NotRequired[Word]
    tunables: NotRequired[dict[Literal["thp", "numa_balancing", "cpu_governor"], Word | None]]
    stray: NotRequired[Stray]
    modules: NotRequired[Annotated[list[Word], Field(max_length=16)]]
    cmdline_iommu: NotRequired[Annotated[list[Word], Field(max_length=16)]]
    timesync: NotRequired[TimeSync]
    daemons: NotRequired[list[Literal["chronyd", "systemd-timesyncd", "ntpd",
                                      "nv-fabricmanager"]]]
    tools: NotRequired[dict[Literal["tar", "zstd", "gzip", "rsync"], bool]]


class LoginFacts(TypedDict):
    cuda_visible_devices: str | None
    shell: NotRequired[str]


class PythonRun(TypedDict):
    runs: bool
    error: str
    path: NotRequired[str]
    version: NotRequired[str]


class CommandRun(TypedDict):
    rc: int
    stdout: str
    stderr: str


class MinicondaFacts(TypedDict):
    prefix: str
    root: PathInfo
    layout: dict[str, PathInfo]
    world_writable: NotRequired[list[str]]
    installing: NotRequired[bool]  # provision's installer marker: the base is partial
    base_python: NotRequired[PythonRun]
    conda_sh: NotRequired[CommandRun]


class CondaRecord(TypedDict):
    name: Word
    version: Word
    build: Word
    build_number: int | None
    channel: Path | None
    subdir: Word | None
    file: NotRequired[Path]
    url: NotRequired[str | None]
    md5: NotRequired[str | None]
    sha256: NotRequired[str | None]


class BrokenRecord(TypedDict):
    file: str
    error: str


class PipDist(TypedDict):
    name: Word | None
    version: Word | None
    installer: Word | None
    path: Path


class Mismatch(TypedDict):
    """A file that differs from its record (remote/probe_install.integrity)."""
    file: Path
    package: Word
    what: Literal["missing", "kind", "size", "sha256"]
    expected: Word
    found: Word


class Integrity(TypedDict):
    mode: Literal["size", "sha256"]
    files: int
    hashed: int
    unsized: int  # prefix-rewritten text files: only their hash can be checked
    mismatches: Annotated[list[Mismatch], Field(max_length=50)]
    more: int
    seconds: float


class EnvFacts(TypedDict):
    prefix: str
    root: PathInfo
    name: NotRequired[str]
    versions: NotRequired[dict[Word, bool]]  # envs/.NAME-<hash> -> complete
    world_writable: NotRequired[list[str]]
    conda: NotRequired[list[CondaRecord]]
    conda_broken: NotRequired[list[BrokenRecord]]
    pip: NotRequired[list[PipDist]]
    integrity: NotRequired[Integrity]


class SmiReport(TypedDict):
    rc: int
    text: str
    error: str
    format: NotRequired[str]


class Acs(TypedDict):
    checked: bool
    reason: NotRequired[Word]
    src_valid: NotRequired[Annotated[list[Word], Field(max_length=64)]]  # lspci's lines


class GpuFacts(TypedDict):
    dev: list[str]
    nvidia_smi: str | None
    cuda_visible_devices: NotRequired[str | None]
    smi: NotRequired[SmiReport]
    acs: NotRequired[Acs]


class NvlinkReport(TypedDict):
    rc: int
    text: str
    error: str


class XidEvent(TypedDict):
    xid: int
    count: int
    devices: list[str]
    last: str


class KernelXids(TypedDict):
    readable: bool
    source: str | None
    reason: str | None
    events: list[XidEvent]


class IbPort(TypedDict):
    state: str | None
    phys_state: str | None
    rate: str | None
    link_layer: str | None


class IbDevice(TypedDict):
    ports: dict[str, IbPort]


class IbFacts(TypedDict):
    present: bool
    devices: dict[str, IbDevice]


class NcclConf(TypedDict):
    files: dict[str, dict[str, str]]  # path -> NCCL_* keys it sets
    env: dict[str, str]  # NCCL_* in the probe's environment


class DcgmRun(TypedDict):
    level: int
    found: bool
    rc: int | None
    text: str  # dcgmi diag -j's JSON, parsed by preflight.facts.dcgmdiag
    error: str
    seconds: float


class HealthFacts(TypedDict):
    nvlink: NvlinkReport | None
    xid: KernelXids
    ib: IbFacts
    nccl_conf: NcclConf
    dcgm: DcgmRun | None  # None: cluster.yaml did not ask for it


class Link(TypedDict):
    mtu: int
    speed: int | None  # Mb/s; None where the driver does not say (virtual links)
    operstate: Word


class NetFacts(TypedDict):
    hostname: str
    hostname_addrs: Addresses
    peers: dict[str, Addresses]
    interfaces: dict[str, str]
    links: NotRequired[Annotated[dict[Word, Link], Field(max_length=256)]]


class SyncFacts(TypedDict):
    target: str
    exists: bool
    files: NotRequired[dict[str, str]]
    truncated: NotRequired[bool]


class PeerLoginsFacts(TypedDict):
    # target node -> "ok" or why the login failed (ssh's last line, capped on the node)
    tried: dict[Word, Annotated[str, StringConstraints(max_length=1024)]]
    seconds: float


class Identity(PathInfo):
    path: str
    kind: NotRequired[str | None]  # type: ignore[misc] - 'private' / 'not a private key'


class SshFacts(TypedDict):
    home: str
    dot_ssh: PathInfo
    identity: Identity
    identity_pub: str | None
    client_config: dict[str, str]
    client_config_path: str
    system_client_config: NotRequired[dict[str, str]]
    sshd_config: dict[str, str]
    authorized_keys: list[str]
    authorized_keys_files: NotRequired[list[Path]]
    known_hosts: NotRequired[list[Text]]
    sshd_t: NotRequired[CommandRun | dict]


class Kernel(TypedDict):
    name: str
    path: str
    display_name: NotRequired[str | None]
    python: NotRequired[str]
    error: NotRequired[str]


class Server(TypedDict):
    alive: bool
    has_token: bool
    password: bool
    pid: NotRequired[int | None]
    port: NotRequired[int | None]
    hostname: NotRequired[str | None]
    file: NotRequired[str]
    folder: NotRequired[Path]  # the runtime folder it was found in
    owner: NotRequired[Word]  # who wrote it


class Listening(TypedDict):
    port: int
    any: bool


class JupyterProcess(TypedDict):
    """A Jupyter server process in the node's network namespace, whoever runs it."""
    pid: int
    user: Word
    runtime_dir: Path | None
    listening: Annotated[list[Listening], Field(max_length=64)]


class JupyterFacts(TypedDict):
    kernels: list[Kernel]
    servers: Annotated[list[Server], Field(max_length=64)]
    listening: list[Listening]
    processes: NotRequired[Annotated[list[JupyterProcess], Field(max_length=32)]]


class TorchDevice(TypedDict):
    name: str
    capability: NotRequired[str]
    memory_mib: NotRequired[int]


class TorchFacts(TypedDict):
    version: Word
    cuda_available: bool
    device_count: int
    cuda_build: NotRequired[str | None]
    nccl: NotRequired[str | None]
    devices: NotRequired[list[TorchDevice]]
    distributed: NotRequired[bool]
    backends: NotRequired[dict[str, bool]]


class ModuleOrigin(TypedDict):
    file: Path
    version: Word


class UserSite(TypedDict):
    enabled: bool
    path: Path
    error: NotRequired[str]
    exists: NotRequired[bool]
    entries: NotRequired[Annotated[list[Word], Field(max_length=64)]]
    count: NotRequired[int]
    # .pth file -> the lines it adds to sys.path
    pth: NotRequired[dict[Word, Annotated[list[Annotated[str, StringConstraints(
        max_length=512)]], Field(max_length=16)]]]


class OnPath(TypedDict):
    path: Path
    real: Path


class Library(TypedDict):
    """A shared library as the loader resolves it in the launch environment."""
    path: Path
    via: Literal["LD_PRELOAD", "LD_LIBRARY_PATH", "env", "ldconfig"]
    version: Word
    env_path: NotRequired[Path]
    env_version: NotRequired[Word]


class RuntimeFacts(TypedDict):
    ok: bool
    error: NotRequired[str]
    python: NotRequired[str]
    torch: NotRequired[TorchFacts]
    torch_error: NotRequired[str]
    # what the launch environment really gives a job (older probes: absent)
    modules: NotRequired[Annotated[dict[Word, ModuleOrigin], Field(max_length=256)]]
    modules_seen: NotRequired[int]  # top-level modules loaded from files, all looked at
    user_site: NotRequired[UserSite]
    sys_path: NotRequired[Annotated[list[Path], Field(max_length=64)]]
    launch_env: NotRequired[dict[Word, Annotated[str, StringConstraints(max_length=2048)]]]
    which: NotRequired[dict[Literal["python", "torchrun"], OnPath | None]]
    libraries: NotRequired[dict[Word, Library]]
    # [soft, hard], -1 for unlimited, as the launcher gave the job
    limits: NotRequired[dict[Literal["memlock", "nofile", "nproc"],
                             Annotated[list[int], Field(min_length=2, max_length=2)]]]
    limits_error: NotRequired[Annotated[str, StringConstraints(max_length=800)]]
    libraries_error: NotRequired[Annotated[str, StringConstraints(max_length=800)]]


# section -> its shape. The node side registers a function under the same name with
# @section (remote/probe_*.py); selftest/test_contract.py holds the two lists equal.
SECTIONS: dict[str, type] = {
    "node": NodeFacts,
    "login": LoginFacts,
    "miniconda": MinicondaFacts,
    "env": EnvFacts,
    "gpu": GpuFacts,
    "health": HealthFacts,
    "net": NetFacts,
    "sync": SyncFacts,
    "ssh": SshFacts,
    "peer_logins": PeerLoginsFacts,
    "jupyter": JupyterFacts,
    "runtime": RuntimeFacts,
}
