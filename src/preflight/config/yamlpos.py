"""Load YAML keeping where each value came from, so errors can name file and line."""

from __future__ import annotations

from pathlib import Path

import yaml

from preflight.core.errors import UserError
from preflight.core.nodetext import clean

MAX_BYTES = 1 << 20  # a cluster.yaml for 2,000 nodes is ~100 KB
MAX_DEPTH = 32  # nesting of mappings and lists; ours go 4 deep


class Located:
    """A parsed YAML document plus the line of every mapping key and sequence item.

    Bounded before it is parsed: no aliases (a 483-byte alias bomb expands to GBs), no
    nesting past MAX_DEPTH, no duplicate keys (YAML lets the last one silently win)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        try:
            _check_events(path, text)
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            _no_duplicate_keys(path, self.root)
            self.data = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader's subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            msg = f"{path}{line}: malformed YAML: {clean(problem, 200)} (fix the indentation " \
                  "or quoting)"
            raise UserError(msg) from None

    def line(self, loc: tuple) -> int:
        """Line (1-based) of the deepest node along loc that exists."""
        node, line = self.root, 1
        for key in loc:
            if node is None:
                break
            line = node.start_mark.line + 1
            node, key_line = _child(node, key)
            line = key_line or line
        return line

    def where(self, loc: tuple) -> str:
        return f"{self.path}:{self.line(loc)}"


class _Loader(yaml.SafeLoader):
    """SafeLoader whose faults are YAML errors with a line: a date that does not exist
    (2026-02-30) is not a ValueError traceback."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a date that exists ({exc})",
                node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _child(node, key):
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node, key_node.start_mark.line + 1
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item = node.value[key]
        return item, item.start_mark.line + 1
    return None, None


def _check_events(path: Path, text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise UserError(f"{path}:{event.start_mark.line + 1}: YAML aliases (*name) are "
                            "not accepted here; write the value out")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise UserError(f"{path}:{event.start_mark.line + 1}: nested deeper than "
                                f"{MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _no_duplicate_keys(path: Path, node) -> None:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in current.value:
                line = key.start_mark.line + 1
                if not isinstance(key, yaml.ScalarNode):
                    raise UserError(f"{path}:{line}: a key that is a "
                                    f"{'list' if isinstance(key, yaml.SequenceNode) else 'mapping'}"
                                    "; keys are names")
                if key.value in seen:
                    raise UserError(f"{path}:{line}: duplicate key "
                                    f"'{clean(key.value, 60)}' (first at line "
                                    f"{seen[key.value]}); YAML would keep only the last")
                seen[key.value] = line
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def load(path: Path, what: str) -> Located:
    """Read a user's YAML file: bounded in size, UTF-8 text only, one line for any fault."""
    try:
        if not path.is_file():
            raise UserError(f"{path}: no such {what} file" if not path.exists() else
                            f"{path}: not a regular file")
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise UserError(f"{path}: larger than {MAX_BYTES} bytes: not a {what} file")
    nul = raw.find(b"\0")
    if nul >= 0:
        raise UserError(f"{path}: byte {nul}: a NUL byte (a binary or UTF-16 "
                        "file?); save it as UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: byte {exc.start} is not UTF-8 (0x{raw[exc.start]:02x}); "
                        "save the file as UTF-8") from None
    return Located(path, text)
