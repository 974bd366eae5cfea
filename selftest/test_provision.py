"""Provisioning without SSH: the managed block, the plan's decisions, the fan-out."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflight.provision import blocks
from preflight.provision.apply import Distributor

LINES = st.lists(st.sampled_from([
    "Host *", "  User bob", "Host worker-*", "Match host x", "# comment", "",
    "ServerAliveInterval 5",
    "  IdentityFile ~/.ssh/other", "host lower", "\tUser tab"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(LINES, st.booleans())
def test_block_leaves_every_other_byte(lines, trailing_newline):
    text = "\n".join(lines) + ("\n" if trailing_newline and lines else "")
    block = blocks.render("node-*", {"User": "root", "ServerAliveInterval": "60"})
    placed = blocks.place(text, block)
    # a last line without its newline gets one, so the block starts on a line of its own
    restored = blocks.remove(placed)
    assert restored == text or (restored == text + "\n" and not text.endswith("\n"))
    assert blocks.place(placed, block) == placed  # a second provision changes nothing
    first_host = next((i for i, line in enumerate(placed.splitlines())
                       if line.split()[:1] and line.split()[0].lower() in ("host", "match")), None)
    assert placed.splitlines()[first_host] == "Host node-*"  # read before any Host *


def test_block_replaced_in_place():
    old = blocks.render("node-*", {"User": "a"})
    text = "# mine\nHost *\n  User bob\n"
    placed = blocks.place(text, old)
    new = blocks.render("node-*", {"User": "root"})
    assert blocks.place(placed, new) == placed.replace(old, new)


def test_damaged_block_refused():
    text = f"{blocks.BEGIN} (Host node-*)\nHost node-*\n  User root\n"
    with pytest.raises(blocks.BlockDamaged, match="1 BEGIN, 0 END"):
        blocks.place(text, blocks.render("node-*", {"User": "root"}))


def test_distributor_bounds_controller_sends():
    """However many nodes, the controller sends to at most `fanout` at once and every
    later node copies from one that holds the archive."""
    dist, sources, lock = Distributor(2), [], threading.Lock()
    peak = [0]

    def receive(name):
        source = dist.take()
        with lock:
            sources.append(source)
            peak[0] = max(peak[0], dist.sending)
        dist.give(source, name, ok=True)

    threads = [threading.Thread(target=receive, args=(f"n{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] <= 2
    assert sources.count(None) <= 2
    assert len(sources) == 16


def test_failed_controller_send_frees_its_slot():
    dist = Distributor(1)
    first = dist.take()
    dist.give(first, "n1", ok=False)  # failed: not a holder, and the slot is free again
    assert dist.take() is None
