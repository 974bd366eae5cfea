"""environment.yml: conda specs (real conda MatchSpec semantics, via py-rattler) and pip
requirements (PEP 440/508, via packaging). What cannot be checked is kept and reported.

    name: pytorch-dist
    channels: [pytorch, nvidia, conda-forge]
    dependencies:
      - pytorch=2.0.1=py3.9_cuda11.8*
      - conda-forge::nccl
      - pip: [torchelastic, "-r extra.txt"]     # the -r line is listed as not checked
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import rattler
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from preflight.config import yamlpos
from preflight.core import channels
from preflight.core.errors import UserError, did_you_mean
from preflight.core.nodetext import one_line
from preflight.core.redact import redact

# pip lines that name no single checkable requirement, and why
UNCHECKABLE = (("-r", "a requirements file is not read"), ("-e", "an editable install"),
               ("-c", "a constraints file is not read"), ("-", "a pip option"),
               ("git+", "a VCS source"), ("http://", "a URL"), ("https://", "a URL"),
               ("file:", "a local path"), (".", "a local path"), ("/", "a local path"))


@dataclass(frozen=True)
class CondaSpec:
    text: str
    line: int
    match: rattler.MatchSpec
    name: str
    channel: str | None  # normalised channel name when the spec is channel-qualified
    subdir: str | None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class PipSpec:
    text: str
    line: int
    requirement: Requirement

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Unchecked:
    text: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"not checked: {self.text} ({self.reason}, line {self.line})"


@dataclass(frozen=True)
class EnvSpec:
    path: Path
    name: str
    channels: tuple[str, ...]
    conda: tuple[CondaSpec, ...]
    pip: tuple[PipSpec, ...]
    unchecked: tuple[Unchecked, ...]


KEYS = ("name", "channels", "dependencies", "prefix", "variables")  # what conda reads
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$")


def load(path: Path) -> EnvSpec:
    """Read environment.yml; a mistake raises UserError with file, line and reason.

    Checked as strictly as cluster.yaml: a typo such as `dependancies:` would otherwise
    drop every pin and let a broken cluster pass."""
    doc = yamlpos.load(path, "environment")
    data = doc.data
    if not isinstance(data, dict):
        raise UserError(f"{path}:1: expected a mapping with 'name' and 'dependencies'")
    _known_keys(doc, data)
    name = data.get("name")
    if "name" not in data:
        raise UserError(f"{path}:1: 'name' is required (the env's name, e.g. pytorch-dist)")
    if not isinstance(name, str) or not NAME.match(name) or name in (".", ".."):
        raise UserError(f"{doc.where(('name',))}: 'name' must be a plain env name (letters, "
                        f"digits, . _ + -), got {_show(name)}")
    chans = data.get("channels", [])
    if not isinstance(chans, list) or not all(isinstance(c, str) and c for c in chans):
        raise UserError(f"{doc.where(('channels',))}: 'channels' must be a list of channel "
                        f"names, got {_show(chans)}")
    deps = data.get("dependencies")
    if not isinstance(deps, list) or not deps:
        raise UserError(f"{doc.where(('dependencies',))}: 'dependencies' must be a non-empty "
                        f"list of conda specs (and one 'pip:' list), got {_show(deps)}")
    conda, pip, unchecked = [], [], []
    for index, item in enumerate(deps):
        line = doc.line(("dependencies", index))
        if isinstance(item, dict) and set(item) == {"pip"} and isinstance(item["pip"], list):
            for sub, text in enumerate(item["pip"]):
                sub_line = doc.line(("dependencies", index, "pip", sub))
                if not isinstance(text, str) or not text.strip():
                    raise UserError(f"{path}:{sub_line}: pip entry {_show(text)} is not a "
                                    "requirement string (quote it)")
                _pip_line(text.strip(), sub_line, path, pip, unchecked)
        elif isinstance(item, str) and item.strip():
            spec = _conda_spec(item.strip(), line, path)
            clash = next((c for c in conda if c.name == spec.name and _clash(c, spec)), None)
            if clash is not None:  # no package satisfies both: every node would fail
                raise UserError(f"{path}:{line}: {spec.name} pinned twice to different "
                                f"versions ({_show(clash.text)} at line {clash.line}, "
                                f"{_show(spec.text)} here): keep one")
            conda.append(spec)
        else:
            raise UserError(f"{path}:{line}: dependency {_show(item)} is neither a conda "
                            "spec string nor a 'pip:' list of strings")
    return EnvSpec(path, name, tuple(chans), tuple(conda), tuple(pip), tuple(unchecked))


def _pin(spec: CondaSpec) -> list[str] | None:
    """The version a spec pins exactly (`=1.26` is 1.26.*, `==2.0`), as its parts; None for
    ranges and wildcards, which combine with other specs as conda ANDs them."""
    if spec.match.version is None:
        return None
    text = str(spec.match.version).removeprefix("==").removesuffix(".*")
    if not text or any(ch in text for ch in "<>!=,|*~ "):
        return None
    return text.split(".")


def _clash(one: CondaSpec, other: CondaSpec) -> bool:
    """Two exact pins of one package where neither is a prefix of the other (1.26 and
    1.26.4 agree; 1.26 and 2.0 cannot both hold).

    >>> import rattler
    >>> spec = lambda t: CondaSpec(t, 1, rattler.MatchSpec(t), "numpy", None, None)
    >>> _clash(spec("numpy=1.26"), spec("numpy=2.0"))
    True
    >>> _clash(spec("numpy=1.26"), spec("numpy==1.26.4"))
    False
    """
    a, b = _pin(one), _pin(other)
    if a is None or b is None:
        return False
    short = min(len(a), len(b))
    return a[:short] != b[:short]


def _known_keys(doc, data: dict) -> None:
    for key in data:
        if key not in KEYS:
            raise UserError(f"{doc.where((key,))}: unknown key '{one_line(key, 60)}'"
                            + did_you_mean(key, KEYS))


def _show(value: object) -> str:
    """A short, redacted picture of a value for an error line (never the whole value)."""
    return one_line(repr(value), 60)


def _conda_spec(text: str, line: int, path: Path) -> CondaSpec:
    try:
        match = rattler.MatchSpec(text, strict=False)
    except Exception as exc:  # py-rattler raises its own error types per problem
        msg = f"{path}:{line}: bad conda spec {_show(text)}: {one_line(exc, 200)}"
        raise UserError(msg) from None
    if match.name is None:
        raise UserError(f"{path}:{line}: conda spec {_show(text)} names no package")
    version = str(match.version) if match.version is not None else ""
    if version and not any(ch.isdigit() or ch == "*" for ch in version):
        # `num py` parses as package num, version py: a space in a name, not a pin
        raise UserError(f"{path}:{line}: conda spec {_show(text)}: {_show(version)} is not a "
                        f"version of {match.name.normalized} (a space inside a package name?)")
    channel = channels.normalise(match.channel.name) if match.channel else None
    return CondaSpec(text, line, match, match.name.normalized, channel,
                     str(match.subdir) if match.subdir else None)


def _pip_line(text: str, line: int, path: Path, pip: list, unchecked: list) -> None:
    for prefix, reason in UNCHECKABLE:
        if text.startswith(prefix):
            unchecked.append(Unchecked(redact(text), line, reason))
            return
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"{path}:{line}: bad pip requirement {_show(text)}: "
                        f"{one_line(first, 200)}") from None
    if requirement.url:
        unchecked.append(Unchecked(redact(text), line, "a direct URL reference"))
        return
    pip.append(PipSpec(text, line, requirement))
