"""cluster.yaml's schema: every key, its type and bounds, strictly (pydantic), and how a
validation error reads as one line for the user."""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from preflight.config import yamlpos
from preflight.core.errors import did_you_mean
from preflight.core.nodetext import one_line


class Strict(BaseModel):
    """Unknown keys refused; no coercion: `gpus: true` is not 1, `port: "22"` not 22;
    numbers finite (`deadline: .inf` is no deadline)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Settings(Strict):
    """What a node entry may override; `defaults` holds the same keys for every node."""

    user: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    identity_file: str | None = None
    proxy_jump: str | None = None
    connect_timeout: float | None = Field(None, gt=0, le=600)
    command_timeout: float | None = Field(None, gt=0, le=86400)
    miniconda: str | None = None
    env_name: str | None = None
    workspace: str | None = None
    gpus: int | None = Field(None, ge=0, le=64)


class Defaults(Settings):
    ssh_config: str | None = "~/.ssh/config"
    known_hosts: str = "~/.ssh/known_hosts"
    trust_new_host_keys: bool = False
    parallelism: int = Field(32, ge=1, le=1024)


class NodeEntry(Settings):
    name: str
    address: str | None = None
    role: Literal["master", "worker"] = "worker"


class NcclSettings(Strict):
    """The cross-node collective test: torchrun on every node, then a size sweep."""

    master_port: int = Field(29500, ge=1, le=65535)
    backend: Literal["auto", "nccl", "gloo"] = "auto"  # auto: nccl where GPUs are declared
    env: dict[str, str] = {}  # NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME, NCCL_IB_DISABLE, ...
    rdzv_timeout: float = Field(30, gt=0)
    collective_timeout: float = Field(60, gt=0)
    deadline: float = Field(180, gt=0)  # the whole run, after which every node is cleaned
    min_bytes: int = Field(1024, ge=4)
    max_bytes: int = Field(16 << 20, ge=4)
    factor: int = Field(4, ge=2)
    iterations: int = Field(10, ge=1)
    warmup: int = Field(3, ge=0)
    pairwise_bytes: int = Field(4 << 20, ge=4)
    # a number, or "auto": the reference for the nodes' GPU model and `link` (references.py)
    min_busbw_gbps: Annotated[float, Field(gt=0)] | Literal["auto"] | None = None
    link: str | None = Field(None, max_length=100)  # e.g. nvlink, ib-ndr-400g-x8
    references: str | None = None  # your own reference file (default: the built-in one)
    busbw_tolerance: float = Field(0.1, ge=0, lt=1)
    resolve_all_peers_max: int = Field(256, ge=1)  # above it: the master and 8 neighbours
    # the MTU every node's up, physical-or-IB links must have (None: only the same on all)
    mtu: int | None = Field(None, ge=68, le=65536)

    @model_validator(mode="after")
    def _consistent(self) -> NcclSettings:
        if self.min_bytes > self.max_bytes:
            msg = f"min_bytes ({self.min_bytes}) is above max_bytes ({self.max_bytes})"
            raise ValueError(msg)
        if self.deadline < self.rdzv_timeout:
            msg = f"deadline ({self.deadline:g} s) is shorter than rdzv_timeout " \
                  f"({self.rdzv_timeout:g} s)"
            raise ValueError(msg)
        return self


class SyncSettings(Strict):
    """The code tree every node must carry, compared by content hash with `source`."""

    source: str | None = None  # on the controller, relative to cluster.yaml; None: no check
    exclude: list[str] = ["__pycache__", "*.pyc", ".git", ".ipynb_checkpoints", ".DS_Store"]
    max_files: int = Field(20000, ge=1)


class SshSettings(Strict):
    """SSH as multi-node launchers need it: the client config, keys, and a hardened sshd."""

    check: bool = True
    host_pattern: str = "*"  # the client config's Host block for the nodes, e.g. worker-*
    user: str | None = None  # expected User there (default: the user we log in as)
    identity_file: str = "~/.ssh/id_ed25519"  # on every node, for node-to-node launches
    client_config: str = "~/.ssh/config"  # on every node
    server_alive_interval: int | None = Field(60, ge=1)
    check_controller: bool = True  # also the controller's ssh_config
    # node-to-node logins: "ring" (the launcher to every node, each node to the next:
    # ~2N logins), "full" (every pair: N x (N-1), for small clusters) or false
    node_to_node: Literal["ring", "full"] | bool = "ring"
    sshd: dict[str, list[str]] = {
        "passwordauthentication": ["no"], "kbdinteractiveauthentication": ["no"],
        "pubkeyauthentication": ["yes"], "permitemptypasswords": ["no"],
        "permitrootlogin": ["no", "prohibit-password", "without-password"]}


class JupyterSettings(Strict):
    """The env's kernel must be registered; a running server must not be open to all."""

    check: bool = True
    kernel_name: str | None = None  # default: the env's name
    display_name: str | None = None  # e.g. "Python (PyTorch-Dist)"; None: not checked


class InstallerSettings(Strict):
    """The Miniconda installer provision runs on a node without a base (-b -p PREFIX)."""

    path: str  # on the controller, relative to cluster.yaml
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # a mismatch refuses the installer


class PipSettings(Strict):
    """Where the controller's pip finds environment.yml's pip section (default: pip's own
    configuration on the controller). Nodes never reach an index: they get the wheels."""

    index_url: str | None = None
    find_links: list[str] = []  # folders or URLs of wheels
    no_index: bool = False  # only find_links (an offline wheel folder)


# sshd settings provision.harden_sshd writes (sshd_config(5) keys, lowercase)
HARDENED_SSHD = {"passwordauthentication": "no", "kbdinteractiveauthentication": "no",
                 "permitrootlogin": "prohibit-password"}


class ProvisionSettings(Strict):
    """How `nox -s provision` makes nodes right (see README: provisioning)."""

    installer: InstallerSettings | None = None
    pip: PipSettings = PipSettings()
    # the `sshd` resource: true writes a drop-in (or a block atop sshd_config) that wins;
    # force also rewrites Match blocks that undo it; false leaves sshd alone
    harden_sshd: bool | Literal["force"] = False
    sshd_settings: dict[str, str] = Field(default_factory=lambda: dict(HARDENED_SSHD))
    # channel name (as environment.yml writes it) -> where to fetch it: a mirror or file://
    channels: dict[str, str] = {}
    # __glibc, __cuda, ... of the nodes for the solve (default: what this machine has)
    virtual_packages: dict[str, str] = {}
    cache: str = "~/.cache/cluster-preflight"  # solved envs and their archives
    compression: Literal["gzip", "zstd"] = "gzip"  # gzip: any node's tar reads it
    fanout: int = Field(4, ge=1, le=256)  # nodes the controller sends the env to itself


class SlurmSettings(Strict):
    """`launcher: slurm`: the probe and the cluster-wide steps as Slurm job steps inside
    one allocation held for the run; Slurm commands run on `login` (over SSH, like a node)
    or, without it, on this machine."""

    login: str | None = None  # a host (ssh_config alias or address) with srun/scontrol
    partition: str | None = None
    account: str | None = None
    reservation: str | None = None
    # salloc --time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS (30 minutes)
    time_limit: str = Field("30", pattern=r"^(\d{1,4}-\d{1,2}(:\d{1,2}){0,2}|\d{1,6}"
                                           r"(:\d{1,2}){0,2})$")
    alloc_wait: float = Field(60, gt=0, le=3600)  # seconds salloc may wait for the nodes
    step_timeout: float = Field(300, gt=0, le=86400)  # the probe's srun step, then cancelled
    salloc_options: list[str] = []  # passed to salloc as given, e.g. ["--exclusive"]
    srun_options: list[str] = []
    drain_prefix: str = Field("preflight:", min_length=1, max_length=40)


# XID codes that mean "take the node out" in Azure's GPU XID health check
# (Azure/azurehpc-health-checks customTests/azure_gpu_xid.nhc, also AKS's GPU node problem
# detector); meanings in NVIDIA's "XID Errors" catalogue (docs.nvidia.com/deploy/xid-errors).
DRAIN_XIDS = (48, 56, 57, 58, 62, 63, 64, 65, 68, 69, 73, 74, 79, 80, 81, 92, 119, 120)
HealthGroup = Literal["pcie", "xid", "clocks", "nvlink", "ib", "ecc", "modes", "dcgm",
                      "fabric", "processes"]
# nvidia-smi's compute modes a shared training node may be in (Prohibited runs nothing;
# Exclusive_Thread is deprecated)
COMPUTE_MODES = ("Default", "Exclusive_Process")


class GpuHealthSettings(Strict):
    """GPU node health beyond "CUDA works": which groups run and their thresholds. The
    ECC defaults are AzNHC's (customTests/azure_gpu_ecc.nhc with its confs'
    `check_gpu_ecc 20000000 10000`): any SRAM uncorrectable, SRAM correctable above 10000,
    DRAM counts above 20000000, more than 512 uncorrectable remapped rows."""

    groups: list[HealthGroup] = list(get_args(HealthGroup))
    drain_xids: list[int] = list(DRAIN_XIDS)
    temp_margin_c: float = Field(5, ge=0, le=50)  # "near the slowdown temperature"
    power_margin: float = Field(0.02, ge=0, le=0.5)  # draw within 2 % of the power limit
    ecc_sram_correctable_max: int = Field(10000, ge=0)
    ecc_dram_max: int = Field(20000000, ge=0)
    remapped_uncorrectable_max: int = Field(512, ge=0)
    # pre-Ampere page retirement: AzNHC's V100 rule (check_SDBE_ecc): >= 62 retired
    # pages with a retirement pending means the table is full
    retired_pages_max: int = Field(62, ge=1)
    ib_hca: str | None = None  # NCCL_IB_HCA to check; default: nccl.env's
    # modes: what every GPU must be in (None: not checked); persistence as AzNHC's
    # azure_gpu_persistence.nhc and DCGM's deployment check want it
    persistence_mode: bool | None = True
    mig_mode: Literal["Disabled", "Enabled"] | None = "Disabled"
    compute_modes: list[Literal["Default", "Exclusive_Process", "Exclusive_Thread",
                                "Prohibited"]] = list(COMPUTE_MODES)
    # DCGM's diagnostic in the probe, where dcgmi is installed: 0 off, 1 quick
    # (deployment checks), 2 medium, 3 long; its own bound, added to command_timeout
    dcgm_diag: int = Field(0, ge=0, le=3)
    dcgm_timeout: float = Field(180, gt=0, le=7200)
    # GPUDirect: nvidia_peermem (or nv_peer_mem) loaded where GPUs and RDMA devices both
    # exist (AWS's GPU cluster health checks; NCCL's guide); gdrdrv only when asked
    gdrcopy: bool = False


class ReportSettings(Strict):
    """reports/: the HTML page, results.json, the run history and accepted failures."""

    waivers: str | None = None  # waivers.yaml, relative to cluster.yaml
    history: int = Field(20, ge=0, le=1000)  # runs kept in reports/history/ for the diff


class LaunchSettings(Strict):
    """What a job's launch environment may hold. may_differ: variables expected to differ
    between nodes (all others must be the same on every node; our default, no anchor
    checks this)."""

    may_differ: list[str] = []


class HostSettings(Strict):
    """Host readiness (what each default rests on: README, tests/test_host.py's row).
    shm_min_bytes: /dev/shm size, 1 GiB (NCCL's troubleshooting guide: Docker's default
    64 MiB breaks NCCL's shared-memory transport; it recommends --shm-size=1g).
    shm_min_free_bytes: free in /dev/shm, 512 MiB (ours: half of that size, so a
    leftover segment from a killed job is seen before it starves the next).
    disk_min_free_bytes / disk_min_free_percent / disk_min_free_inodes_percent: for the
    env, the workspace, /tmp, $TMPDIR and home; 1 GiB, 3 % and 3 % (after LBNL NHC's
    examples, `check_fs_free /tmp 3%`; a torch compile cache or a core dump needs more
    than a nearly full disk has)."""

    shm_min_bytes: int = Field(1 << 30, ge=0)
    shm_min_free_bytes: int = Field(512 << 20, ge=0)
    disk_min_free_bytes: int = Field(1 << 30, ge=0)
    disk_min_free_percent: float = Field(3.0, ge=0, le=100)
    disk_min_free_inodes_percent: float = Field(3.0, ge=0, le=100)
    # limits a job gets (its ssh login or Slurm step): nofile 65536 (ours, the value GPU
    # cluster recipes set: DataLoader workers and NCCL's socket transport open many
    # files); nproc 4096 (ours: threads count against it); memlock unlimited where RDMA
    # devices exist (NCCL's troubleshooting guide: registration fails otherwise)
    nofile_min: int = Field(65536, ge=0)
    nproc_min: int = Field(4096, ge=0)
    memlock_unlimited_with_rdma: bool = True
    # the node's clock against the controller's, bounded by the probe's round trip: 1 s
    # (ours: logs and checkpoints of one job are ordered across nodes; NTP keeps a
    # healthy node within milliseconds)
    clock_max_offset_s: float = Field(1.0, gt=0)
    # kernel, OS, glibc and these tunables are the same on every node (plurality); a
    # tunable named here must also have this value, e.g. {thp: madvise, cpu_governor:
    # performance, numa_balancing: "0"} (no default: sites differ)
    tunables: dict[Literal["thp", "numa_balancing", "cpu_governor"], str] = {}
    may_differ: list[Literal["kernel", "os", "glibc", "thp", "numa_balancing",
                             "cpu_governor"]] = []
    # the IOMMU mode the kernel command line must ask for (None: recorded, not judged)
    iommu: Literal["pt", "on", "off", "default"] | None = None


class EnvSettings(Strict):
    """How far the probe verifies the env's installed files against their records. size
    (default): every file of every conda record (paths_data) and pip RECORD exists with its
    recorded size, one stat each; sha256: shared libraries and Python files are hashed
    too, as `conda doctor`/conda's verify step does (seconds a node: opt in); off."""

    verify: Literal["off", "size", "sha256"] = "size"


class ClusterFile(Strict):

    cluster: str
    environment: str = "environment.yml"
    lock: str | None = None
    allowed_channels: list[str] = []  # beyond environment.yml's own channels
    nccl: NcclSettings = NcclSettings()
    sync: SyncSettings = SyncSettings()
    ssh: SshSettings = SshSettings()
    jupyter: JupyterSettings = JupyterSettings()
    provision: ProvisionSettings = ProvisionSettings()
    report: ReportSettings = ReportSettings()
    gpu_health: GpuHealthSettings = GpuHealthSettings()
    launch: LaunchSettings = LaunchSettings()
    host: HostSettings = HostSettings()
    env: EnvSettings = EnvSettings()  # the block; Cluster.env is environment.yml's spec
    launcher: Literal["ssh", "slurm"] = "ssh"
    slurm: SlurmSettings = SlurmSettings()
    defaults: Defaults = Defaults()
    nodes: list[NodeEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _sshd_settings_pass_the_check(self) -> ClusterFile:
        """What harden_sshd writes must be what the sshd check accepts, and one plain
        sshd_config line each (a value is never a second line)."""
        for key, value in self.provision.sshd_settings.items():
            if not re.fullmatch(r"[A-Za-z]{2,40}", key) or \
                    not re.fullmatch(r"[A-Za-z0-9 ,.*@:/%_+-]{1,200}", value):
                raise ValueError(f"provision.sshd_settings: {key[:40]!r} must be an sshd "
                                 "keyword with a one-line value")
            allowed = self.ssh.sshd.get(key.lower())
            if allowed and value.lower() not in allowed:
                raise ValueError(f"provision.sshd_settings: {key} {value} is not what "
                                 f"ssh.sshd accepts ({' or '.join(allowed)})")
        return self


def explain(error: dict, doc: yamlpos.Located) -> str:
    loc = tuple(error["loc"])
    where = doc.where(loc)
    key = ".".join(str(part) for part in loc)
    owner = _owner(loc, doc.data)
    if error["type"] == "extra_forbidden":
        model = SECTION_MODELS.get(loc[0], ClusterFile) if len(loc) > 1 else ClusterFile
        return f"{where}: unknown key '{one_line(loc[-1], 60)}'{owner}" + \
            did_you_mean(loc[-1], model.model_fields)
    if error["type"] == "missing":
        return f"{where}: '{loc[-1]}' is required{owner}"
    return f"{where}: {key}: {error['msg'].lower()}, got {picture(error)}{owner}"


def picture(error: dict) -> str:
    """What the file holds, for an error line, without repeating a secret pasted into the
    wrong key: text is quoted only where a choice was expected and it is short (a typo
    of 'slurm'), otherwise only its length is said; numbers and the like are shown.

    >>> picture({"type": "literal_error", "input": "slrum"})
    "'slrum'"
    >>> picture({"type": "int_parsing", "input": "hf_s3cretT0ken"})
    'text of 14 characters'
    """
    value = error.get("input")
    if isinstance(value, str):
        if error.get("type") == "literal_error" and len(value) <= 24:
            return one_line(repr(value), 60)
        return f"text of {len(value)} characters"
    return one_line(repr(value), 60)


def _owner(loc: tuple, data: dict) -> str:
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
        entry = data["nodes"][loc[1]]
        if isinstance(entry, dict) and "name" in entry:
            return f" in node '{one_line(entry['name'], 60)}'"
    return ""


# top-level key -> the model of its block, for "did you mean" among that block's keys
SECTION_MODELS: dict[str, type[BaseModel]] = {
    "defaults": Defaults, "nccl": NcclSettings, "sync": SyncSettings, "ssh": SshSettings,
    "jupyter": JupyterSettings, "nodes": NodeEntry, "provision": ProvisionSettings,
    "report": ReportSettings, "slurm": SlurmSettings, "gpu_health": GpuHealthSettings,
    "launch": LaunchSettings, "env": EnvSettings, "host": HostSettings}
