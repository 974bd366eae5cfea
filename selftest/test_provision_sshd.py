"""The `sshd` resource's plan: where the hardened settings go so that sshd reads them
first, what a Match block does to it, and that no byte of the user's own files is lost."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from preflight.checks import ssh as ssh_checks
from preflight.provision import blocks, sshd

MAIN = "/etc/ssh/sshd_config"
DROPINS = "/etc/ssh/sshd_config.d"
WANTED = {"passwordauthentication": "no", "kbdinteractiveauthentication": "no",
          "permitrootlogin": "prohibit-password"}
ALLOWED = {"passwordauthentication": ["no"], "kbdinteractiveauthentication": ["no"],
           "permitrootlogin": ["no", "prohibit-password", "without-password"]}

MAIN_LINES = st.lists(st.sampled_from([
    "Include /etc/ssh/sshd_config.d/*.conf", "Include sshd_config.d/*.conf",
    "PasswordAuthentication yes", "PasswordAuthentication no", "PermitRootLogin yes",
    "KbdInteractiveAuthentication yes", "# a comment", "", "Port 22", "UsePAM yes",
    "passwordauthentication=yes"]), max_size=10)
DROPIN_LINES = st.lists(st.sampled_from([
    "PasswordAuthentication yes", "PermitRootLogin yes", "PermitRootLogin no", "X11Forwarding no",
    ""]), max_size=4)


def read(files: dict[str, str]) -> dict[str, str]:
    first = ssh_checks.first_settings(files)
    return {k: first[k][0] if k in first else ssh_checks.OPENSSH_DEFAULTS[k] for k in WANTED}


@settings(max_examples=300, deadline=None)
@given(MAIN_LINES, st.dictionaries(st.sampled_from(["10-a.conf", "50-cloud.conf", "000-x.conf",
                                                      "zz.conf"]), DROPIN_LINES, max_size=3))
def test_the_settings_win_and_the_users_bytes_stay(main_lines, dropin_lines):
    files = {MAIN: "".join(line + "\n" for line in main_lines)}
    files |= {f"{DROPINS}/{name}": "".join(line + "\n" for line in lines)
              for name, lines in dropin_lines.items()}
    changes, matches = sshd.edits(files, WANTED, ALLOWED, force=False)
    assert matches == []
    after = {**files, **changes}
    assert all(v in ALLOWED[k] for k, v in read(after).items()), (files, changes)
    for path, text in changes.items():
        if path == MAIN:
            assert blocks.remove(text, sshd.BEGIN, sshd.END) == files[MAIN]
        else:
            assert path == f"{DROPINS}/{sshd.DROPIN}"
    assert sshd.edits(after, WANTED, ALLOWED, force=False) == ({}, [])  # then nothing


def test_an_include_at_the_top_gets_a_dropin_else_the_main_file_a_block():
    dropin = {MAIN: "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n",
              f"{DROPINS}/50-simfault.conf": "PasswordAuthentication yes\n"}
    changes, _ = sshd.edits(dropin, WANTED, ALLOWED, force=False)
    assert list(changes) == [f"{DROPINS}/{sshd.DROPIN}"]
    assert "PasswordAuthentication no\n" in changes[f"{DROPINS}/{sshd.DROPIN}"]
    # a setting before the Include wins over any drop-in: the block goes atop the file
    early = {MAIN: "PasswordAuthentication yes\nInclude /etc/ssh/sshd_config.d/*.conf\n"}
    changes, _ = sshd.edits(early, WANTED, ALLOWED, force=False)
    assert list(changes) == [MAIN]
    assert changes[MAIN].startswith(sshd.BEGIN)
    assert changes[MAIN].endswith(early[MAIN])


def test_a_match_block_is_named_and_rewritten_only_with_force():
    files = {MAIN: "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                   "Match Address 10.0.0.0/8\n    PermitRootLogin yes\n"}
    changes, matches = sshd.edits(files, WANTED, ALLOWED, force=False)
    assert matches == [f"{MAIN}:4 (PermitRootLogin yes)"]
    assert changes == {}
    changes, matches = sshd.edits(files, WANTED, ALLOWED, force=True)
    assert matches == [f"{MAIN}:4 (PermitRootLogin yes)"]
    assert changes[MAIN].splitlines()[3] == ("    PermitRootLogin prohibit-password  # was: "
                                             "PermitRootLogin yes (cluster-preflight)")
    assert changes[MAIN].splitlines()[:3] == files[MAIN].splitlines()[:3]
