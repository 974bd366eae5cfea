"""Channel names as people write them, from whatever conda-meta records.

conda writes `https://conda.anaconda.org/pytorch/linux-64` or `pytorch`, rattler the URL it
installed from; a spec says `pytorch` or `pytorch/label/nightly`. All become one name.

>>> normalise("https://conda.anaconda.org/conda-forge/linux-64")
'conda-forge'
>>> normalise("https://repo.anaconda.com/pkgs/main")
'defaults'
>>> normalise("file:///srv/channels/nvidia/noarch/")
'nvidia'
"""

from __future__ import annotations

from urllib.parse import urlparse

SUBDIRS = {"noarch", "linux-64", "linux-aarch64", "linux-ppc64le", "osx-64", "osx-arm64",
           "win-64", "win-32", "linux-32", "linux-armv7l", "linux-s390x"}
ANACONDA_ORG = {"conda.anaconda.org", "anaconda.org", "conda.anaconda.com"}
# conda's `defaults` is a set of channels on repo.anaconda.com
DEFAULTS = {"pkgs/main", "pkgs/r", "pkgs/free", "pkgs/msys2", "pkgs/pro"}


def normalise(channel: str | None) -> str:
    if not channel:
        return ""
    text = channel.strip().rstrip("/")
    url = urlparse(text)
    if not url.scheme:
        path, host = text, ""
    else:
        path, host = url.path.strip("/"), url.netloc.lower()
    parts = [p for p in path.split("/") if p]
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


def allowed(names) -> set[str]:
    return {normalise(name) for name in names}
