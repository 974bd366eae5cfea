"""Load YAML keeping where each value came from, so errors can name file and line."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import UserError


class Located:
    """A parsed YAML document plus the line of every mapping key and sequence item."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            msg = f"{path}{line}: malformed YAML: {problem} (fix the indentation or quoting)"
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


def _child(node, key):
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node, key_node.start_mark.line + 1
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item = node.value[key]
        return item, item.start_mark.line + 1
    return None, None


def load(path: Path, what: str) -> Located:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what}: {exc.strerror}") from None
    return Located(path, text)
