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

from dataclasses import dataclass
from pathlib import Path

import rattler
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from . import channels, yamlpos
from .errors import UserError

# pip lines that name no single checkable requirement, and why
UNCHECKABLE = (("-r", "a requirements file is not read"), ("--", "a pip option"),
               ("-e", "an editable install"), ("-c", "a constraints file is not read"),
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


def load(path: Path) -> EnvSpec:
    """Read environment.yml; a mistake raises UserError with file, line and reason."""
    doc = yamlpos.load(path, "environment")
    data = doc.data
    if not isinstance(data, dict) or not data.get("name"):
        raise UserError(f"{path}:1: environment file needs a 'name' and 'dependencies'")
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        raise UserError(f"{doc.where(('dependencies',))}: 'dependencies' must be a list")
    conda, pip, unchecked = [], [], []
    for index, item in enumerate(deps):
        line = doc.line(("dependencies", index))
        if isinstance(item, dict) and set(item) == {"pip"} and isinstance(item["pip"], list):
            for sub, text in enumerate(item["pip"]):
                sub_line = doc.line(("dependencies", index, "pip", sub))
                _pip_line(str(text).strip(), sub_line, path, pip, unchecked)
        elif isinstance(item, str):
            conda.append(_conda_spec(item.strip(), line, path))
        else:
            msg = (f"{path}:{line}: dependency {item!r} is neither a conda spec string nor "
                   "a 'pip:' list")
            raise UserError(msg)
    return EnvSpec(path, str(data["name"]), tuple(str(c) for c in data.get("channels") or ()),
                   tuple(conda), tuple(pip), tuple(unchecked))


def _conda_spec(text: str, line: int, path: Path) -> CondaSpec:
    try:
        match = rattler.MatchSpec(text, strict=False)
    except Exception as exc:  # py-rattler raises its own error types per problem
        msg = f"{path}:{line}: bad conda spec '{text}': {exc}"
        raise UserError(msg) from None
    if match.name is None:
        raise UserError(f"{path}:{line}: conda spec '{text}' names no package")
    channel = channels.normalise(match.channel.name) if match.channel else None
    return CondaSpec(text, line, match, match.name.normalized, channel,
                     str(match.subdir) if match.subdir else None)


def _pip_line(text: str, line: int, path: Path, pip: list, unchecked: list) -> None:
    for prefix, reason in UNCHECKABLE:
        if text.startswith(prefix):
            unchecked.append(Unchecked(text, line, reason))
            return
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"{path}:{line}: bad pip requirement '{text}': {first}") from None
    if requirement.url:
        unchecked.append(Unchecked(text, line, "a direct URL reference"))
        return
    pip.append(PipSpec(text, line, requirement))
