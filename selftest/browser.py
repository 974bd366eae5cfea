"""Headless Chromium (Debian's package) as the report's reader: the page's DOM after its
scripts ran, its console messages, and a screenshot. Run in a fresh network namespace
when we are root, so a page that tried to fetch anything would find no network at all."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-sync", "--hide-scrollbars"]
CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\] (.*)")


@dataclass
class Rendered:
    dom: str
    console: list[str]  # every console message, errors included
    seconds: float  # the browser's whole run: start, load, layout, dump


def chromium() -> str | None:
    return shutil.which("chromium")


def _argv(*args: str) -> list[str]:
    no_network = ["unshare", "-n"] if os.geteuid() == 0 and shutil.which("unshare") else []
    return [*no_network, chromium(), *FLAGS, *args]


def render(page: Path, profile: Path, timeout: float = 60) -> Rendered:
    started = time.monotonic()
    done = subprocess.run(
        _argv(f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
              "--dump-dom", page.resolve().as_uri()),
        capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - started
    console = [m.group(1) for m in map(CONSOLE.search, done.stderr.splitlines()) if m]
    return Rendered(done.stdout, console, seconds)


def screenshot(page: Path, out: Path, profile: Path, size: str = "1400,2000") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(_argv(f"--user-data-dir={profile}", f"--window-size={size}",
                         f"--screenshot={out.resolve()}", page.resolve().as_uri()),
                   capture_output=True, timeout=60, check=False)
    return out


def dataset(dom: str, name: str) -> str | None:
    """A data-* attribute the page's script set on <html> (data-render-ms, data-errors)."""
    found = re.search(rf'<html[^>]*\sdata-{name}="([^"]*)"', dom)
    return found.group(1) if found else None
