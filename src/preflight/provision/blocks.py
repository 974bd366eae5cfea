"""Our one managed block in a user's ~/.ssh/config: every byte outside it left as it was.

ssh reads the first value it finds for each setting, so the block goes before the first
Host or Match line (a `Host *` later cannot override it); lines before any Host apply to
every host and stay where they are, in front of the block.

    >>> user = "# mine\\nHost *\\n  User bob\\n"
    >>> new = place(user, render("node-*", {"User": "root"}))
    >>> new.splitlines()[1]
    '# BEGIN cluster-preflight managed block (Host node-*)'
    >>> remove(new) == user
    True
"""

from __future__ import annotations

BEGIN = "# BEGIN cluster-preflight managed block"
END = "# END cluster-preflight managed block"


class BlockDamaged(ValueError):
    """A BEGIN without its END (or the reverse): we do not guess where our block ends."""


def render(pattern: str, settings: dict[str, str]) -> str:
    body = "".join(f"  {key} {value}\n" for key, value in settings.items())
    return f"{BEGIN} (Host {pattern})\n# written by `nox -s provision`; edits here are " \
           f"replaced\nHost {pattern}\n{body}{END}\n"


def _span(lines: list[str], begin: str = BEGIN, end: str = END) -> tuple[int, int] | None:
    begins = [i for i, line in enumerate(lines) if line.startswith(begin)]
    ends = [i for i, line in enumerate(lines) if line.startswith(end)]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        msg = f"the managed block's markers are damaged ({len(begins)} BEGIN, {len(ends)} END)"
        raise BlockDamaged(msg)
    return begins[0], ends[0] + 1


def remove(text: str, begin: str = BEGIN, end: str = END) -> str:
    """text without our block (exactly as it was before place()); begin/end: the markers
    of another managed block (provision/sshd.py's atop sshd_config)."""
    lines = text.splitlines(keepends=True)
    span = _span(lines, begin, end)
    if span is None:
        return text
    return "".join(lines[: span[0]] + lines[span[1]:])


def place(text: str, block: str) -> str:
    """text with block in place of ours, else before the first Host/Match line, else last."""
    lines = text.splitlines(keepends=True)
    span = _span(lines)
    if span is not None:
        return "".join([*lines[: span[0]], block, *lines[span[1]:]])
    for i, line in enumerate(lines):
        words = line.split(None, 1)
        if words and words[0].lower() in ("host", "match"):
            return "".join([*lines[:i], block, *lines[i:]])
    if text and not text.endswith("\n"):
        # the block needs its own line; remove() gives back the text with this newline
        return text + "\n" + block
    return text + block
