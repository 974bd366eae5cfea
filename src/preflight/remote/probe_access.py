# Probe sections: SSH (client, keys, sshd), the node-to-node logins, the synced code tree.
# Part of the one probe script (see __init__.probe_source); names from probe_base.


def wildcard(name, pattern):
    """fnmatch for '*' and '?' without re."""
    if not pattern:
        return not name
    if pattern[0] == "*":
        return any(wildcard(name[i:], pattern[1:]) for i in range(len(name) + 1))
    return bool(name) and pattern[0] in ("?", name[0]) and wildcard(name[1:], pattern[1:])


def expand(pattern):
    """Files matching a pattern whose wildcards are in the last component (sshd's Include)."""
    folder, base = os.path.split(pattern)
    if "*" not in base and "?" not in base:
        return [pattern] if os.path.exists(pattern) else []
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return [os.path.join(folder, n) for n in names if wildcard(n, base)]


def included_files(path, pattern_base):
    """A config file and every file its Include lines name (globs; sshd/ssh semantics)."""
    out, queue = {}, [path]
    while queue and len(out) < 64:
        current = queue.pop(0)
        text = read_text(current)
        if text is None or current in out:
            continue
        out[current] = text
        for line in text.splitlines():
            words = line.strip().split()
            if len(words) > 1 and words[0].lower() == "include":
                for word in words[1:]:
                    pattern = os.path.expanduser(word)
                    if not pattern.startswith("/"):
                        pattern = os.path.join(pattern_base, pattern)
                    queue += expand(pattern)
    return out


def key_kind(path):
    """'private', 'not a private key', or None; the key itself never leaves the node."""
    text = read_text(path, 200)
    if text is None:
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    return "private" if first.startswith("-----BEGIN") and "PRIVATE KEY" in first \
        else "not a private key"


@section("ssh")
def ssh():
    spec = ARGS.get("ssh")
    if not spec:
        return None
    home = os.path.expanduser("~")
    identity = os.path.expanduser(spec["identity_file"])
    client = os.path.expanduser(spec["client_config"])
    facts = {"home": home, "dot_ssh": path_info(os.path.join(home, ".ssh")),
             "identity": dict(path_info(identity), path=identity, kind=key_kind(identity)),
             "identity_pub": read_text(identity + ".pub", 16384),
             "client_config": included_files(client, os.path.join(home, ".ssh")),
             "client_config_path": client,
             # read after the user's file: the first value ssh obtains wins
             "system_client_config": included_files("/etc/ssh/ssh_config", "/etc/ssh")}
    sshd = spec.get("sshd_binary", "/usr/sbin/sshd")
    peer = (os.environ.get("SSH_CONNECTION") or "127.0.0.1 0").split()
    user = pwd.getpwuid(os.getuid())[0]
    if os.path.exists(sshd):
        done = run([sshd, "-T", "-C", "user=%s,host=%s,addr=%s" % (user, peer[0], peer[0])], 20)
        facts["sshd_t"] = {"rc": done["rc"], "text": done["stdout"],
                           "error": done["stderr"].strip()[-300:]}
    facts["sshd_config"] = included_files("/etc/ssh/sshd_config", "/etc/ssh")
    patterns = [".ssh/authorized_keys", ".ssh/authorized_keys2"]
    for line in facts.get("sshd_t", {}).get("text", "").splitlines():
        if line.startswith("authorizedkeysfile "):
            patterns = line.split()[1:]
    keys, files = [], []
    for pattern in patterns:
        path = pattern.replace("%h", home).replace("%u", user).replace("%%", "%")
        if not path.startswith("/"):
            path = os.path.join(home, path)
        files.append(path)
        for line in (read_text(path) or "").splitlines():
            words = line.split()
            for i, word in enumerate(words[:-1]):
                if word.startswith(("ssh-", "ecdsa-", "sk-")):
                    keys.append(words[i] + " " + words[i + 1])
                    break
    facts["authorized_keys"] = keys
    facts["authorized_keys_files"] = files
    facts["known_hosts"] = known_hosts(os.path.join(home, ".ssh", "known_hosts"))
    return facts


def known_hosts(path):
    """'hosts keytype blob' per line of the user's known_hosts (public data), capped."""
    entries = []
    for line in (read_text(path) or "").splitlines():
        words = line.split()
        if len(words) >= 3 and not line.startswith("#"):
            start = 1 if words[0].startswith("@") else 0
            entries.append(" ".join(words[start:start + 3]))
        if len(entries) >= 4096:
            break
    return entries


def excluded(name, patterns):
    """Exact names and '*suffix' patterns only: fnmatch would import re (4 ms)."""
    for pattern in patterns:
        if name == pattern or (pattern.startswith("*") and name.endswith(pattern[1:])):
            return True
    return False


def tree_hashes(top, patterns, max_files):
    """relative path -> first 16 hex of sha256, for every file under top not excluded."""
    import hashlib
    hashes = {}
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not excluded(d, patterns))
        for name in files:
            if excluded(name, patterns):
                continue
            path = os.path.join(folder, name)
            if len(hashes) >= max_files:
                return hashes, True
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as stream:
                    for block in iter(lambda: stream.read(1 << 20), b""):
                        digest.update(block)
            except OSError as exc:
                hashes[os.path.relpath(path, top)] = "unreadable: %s" % exc.strerror
                continue
            hashes[os.path.relpath(path, top)] = digest.hexdigest()[:16]
    return hashes, False


@section("sync")
def sync():
    spec = ARGS.get("sync")
    if not spec:
        return None
    target = spec["target"]
    if not os.path.isdir(target):
        return {"target": target, "exists": False}
    hashes, truncated = tree_hashes(target, spec["exclude"], spec["max_files"])
    return {"target": target, "exists": True, "files": hashes, "truncated": truncated}


# Node-to-node logins as launchers make them: key only, no prompt, strict host keys. They
# start before the first section and are collected after the last, so they cost the
# probe no time of its own and the controller no second command per node. One login: its
# target is $1 (xargs passes each name as an argument, never as code), the client $0.
LOGIN_ONE = ('out=$("$0" -o BatchMode=yes -o ConnectTimeout=%d -o StrictHostKeyChecking=yes '
             '-o NumberOfPasswordPrompts=0 "$1" true 2>&1 </dev/null); rc=$?; '
             'printf "RESULT %%s %%s %%s\\n" "$1" "$rc" "$(printf %%s "$out" | tail -n 1)"')
LOGINS = {}


def start_logins():
    """Start the logins ARGS['peer_logins'] names in the background, `at_once` in flight
    (xargs -P: a slow target holds one slot, not a batch); peer_logins() collects them."""
    spec = ARGS.get("peer_logins")
    if not spec or not spec["targets"]:
        return
    client = which("ssh")
    if client is None:
        LOGINS["missing"] = "no ssh client on this node's PATH or in /usr/bin"
        return
    LOGINS["begun"] = time.time()
    feed = ('L=$1; S=$2; shift 2; for t; do printf "%%s\\n" "$t"; done | '
            'xargs -n 1 -P %d sh -c "$L" "$S"' % max(1, spec["at_once"]))
    LOGINS["child"] = spawn(["/bin/sh", "-c", feed, "sh", LOGIN_ONE % spec["timeout"], client,
                             *spec["targets"]], time_left(spec["bound"]))


@section("peer_logins")
def peer_logins():
    spec = ARGS.get("peer_logins")
    if not spec:
        return None
    if "missing" in LOGINS:
        return {"tried": dict.fromkeys(spec["targets"], LOGINS["missing"]), "seconds": 0.0}
    if "child" not in LOGINS:
        return {"tried": {}, "seconds": 0.0}
    child = LOGINS.pop("child")
    done = finish(child)
    said = {}
    for line in done["stdout"].splitlines():
        words = line.split(" ", 3)
        if len(words) >= 3 and words[0] == "RESULT":
            why = words[3][-300:] if len(words) > 3 else ""
            said[words[1]] = "ok" if words[2] == "0" else ("exit %s: %s" % (words[2], why)).strip()
    # not a failed login: the probe ran out of time for it (blame needs a real answer)
    late = "not checked: no answer within the probe's %.0f s for logins" % child["timeout"] \
        if done["rc"] == 124 else "not checked: the logins ended early: %s" % (
            done["stderr"].strip()[-200:] or "exit %s" % done["rc"])
    return {"tried": {t: said.get(t, late) for t in spec["targets"]},
            "seconds": round(time.time() - LOGINS["begun"], 3)}
