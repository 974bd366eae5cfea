"""Channel names as people write them, from whatever conda-meta records.

conda writes `https://conda.anaconda.org/pytorch/linux-64` or `pytorch`, rattler the URL it
installed from; a spec says `pytorch` or `pytorch/label/nightly`. All become one name.

>>> normalise("https://conda.anaconda.org/conda-forge/linux-64")
'conda-forge'
>>> normalise("https://repo.anaconda.com/pkgs/main")
'defaults'
>>> normalise("file:///srv/channels/nvidia/noarch/")
'nvidia'

Credentials in a channel URL are dropped before anything is shortened (the shortened name
has no scheme left for the redactor to see), anaconda.org's /t/<token>/ too:

>>> normalise("https://ci:s3cret@mirror.example/conda-forge/linux-64")
'mirror.example/conda-forge'
>>> normalise("https://conda.anaconda.org/t/ab-12cd34/private/linux-64")
'private'
>>> normalise("user:tok3n@mirror.example/nvidia")
'mirror.example/nvidia'
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlparse

# user:password@ or token@ before the host, with or without a scheme
_CREDENTIALS = re.compile(r"^([a-z][a-z0-9+.-]*://)?[^/@\s]+@", re.IGNORECASE)

SUBDIRS = {"noarch", "linux-64", "linux-aarch64", "linux-ppc64le", "osx-64", "osx-arm64",
           "win-64", "win-32", "linux-32", "linux-armv7l", "linux-s390x"}
ANACONDA_ORG = {"conda.anaconda.org", "anaconda.org", "conda.anaconda.com"}
# conda's `defaults` is a set of channels on repo.anaconda.com
DEFAULTS = {"pkgs/main", "pkgs/r", "pkgs/free", "pkgs/msys2", "pkgs/pro"}


@functools.lru_cache(maxsize=4096)  # the same few channel URLs on every node, every check
def normalise(channel: str | None) -> str:
    if not channel:
        return ""
    text = _CREDENTIALS.sub(r"\1", channel.strip().rstrip("/"))
    url = urlparse(text) if "://" in text else urlparse("")
    if not url.scheme:
        path, host = text, ""
    else:
        # hostname: the netloc without user:password@ and without the port
        host = (url.hostname or "") + (f":{url.port}" if _port(url) else "")
        path = url.path.strip("/")
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "t":  # anaconda.org token channels: /t/<token>/name
        parts = parts[2:]
    if parts and parts[-1] in SUBDIRS:
        parts = parts[:-1]
    path = "/".join(parts)
    if path in DEFAULTS or host == "repo.anaconda.com":
        return "defaults"
    if url.scheme == "file":
        return parts[-1] if parts else text
    if host and host not in ANACONDA_ORG:
        return f"{host}/{path}" if path else host
    return path


def _port(url) -> int | None:
    try:
        return url.port
    except ValueError:  # a port that is not a number: no port
        return None


def allowed(names) -> set[str]:
    return {normalise(name) for name in names}
