"""What the probe's path facts (path_info: exists, kind, target, resolves) say, in words a
finding can carry: a dangling symlink names where it points."""

from __future__ import annotations


def usable_dir(info: dict) -> bool:
    """A folder, or a symlink that resolves (provision's envs/NAME, a relocated prefix)."""
    return info.get("kind") == "dir" or (info.get("kind") == "link" and bool(info.get("resolves")))


def what_is_there(info: dict) -> str:
    """What is at the path, for a finding's "found".

    >>> what_is_there({"exists": False})
    'nothing there'
    >>> what_is_there({"exists": True, "kind": "link", "target": "/x", "resolves": False})
    'a symlink to /x, which does not exist (dangling)'
    >>> what_is_there({"exists": True, "kind": "file"})
    'a file'
    """
    if not info.get("exists"):
        return "nothing there"
    if info.get("kind") == "link":
        target = info.get("target") or "?"
        return f"a symlink to {target}" + ("" if info.get("resolves") else
                                             ", which does not exist (dangling)")
    return f"a {info.get('kind', 'thing')}"


def dangling_hint(path: str, info: dict) -> str | None:
    """What to do about a dangling link at path, or None where it is not one."""
    if info.get("kind") != "link" or info.get("resolves"):
        return None
    return f"the link {path} -> {info.get('target')} dangles: restore its target or point " \
           f"it at a real one (ln -sfn TARGET {path})"
