# The one probe per node: gathers every fact the node can tell in one run, stdlib only.
# This part holds what every section uses; the parts are joined into one script
# (remote.probe_source), the controller prepends `ARGS = ...` and runs it with `python -I -c`.
# Every section catches its own errors, so one broken area never hides the others.
# Imports are few on purpose: json, socket, platform and subprocess cost 21 ms of a
# 40 ms probe (measured), so output is encoded by to_json(), json is imported only
# when a value needs real decoding, and run() is built on os.fork.
import grp
import math
import os
import pwd
import select
import stat
import sys
import time

PROBE_VERSION = 2  # 2: the peer_logins section
ARGS = globals().get("ARGS", {})
STARTED = time.time()
MARGIN_S = 5  # of the probe's bound, kept for writing the document and its transfer
ERRORS = {}
ESCAPES = {i: "\\u%04x" % i for i in range(32)}
ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\t"): "\\t"})


def to_json(value):
    if value is None or value is True or value is False:
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, dict):
        return "{%s}" % ",".join(to_json(str(k)) + ":" + to_json(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[%s]" % ",".join(to_json(v) for v in value)
    return '"%s"' % str(value).translate(ESCAPES)


class _ScanContext:
    """What the C scanner behind json.loads reads from its decoder; see loads()."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity
    memo = None  # set per call


def loads(text):
    """json.loads through the C scanner it uses, without importing json (and re, enum)."""
    try:
        import _json
    except ImportError:  # no C accelerator on this Python: the real thing
        import json
        return json.loads(text)
    _ScanContext.memo = {}
    text = text.strip()
    try:
        value, end = _json.make_scanner(_ScanContext)(text, 0)
    except StopIteration as stop:  # the C scanner's way of saying "no value here"
        raise ValueError("no JSON value at offset %s of %d characters"
                         % (stop.value, len(text))) from None
    if end != len(text):
        raise ValueError("extra data at offset %d of %d characters" % (end, len(text)))
    return value


SECTIONS = []  # (name, run) in the order the parts register them; main() runs them all


def section(name):
    """Register func as the probe section `name` (its shape: facts/contract.py SECTIONS).
    A section that raises is None in the document, with its cause in probe_errors."""
    def wrap(func):
        def run():
            try:
                return func()
            except Exception as exc:
                ERRORS[name] = "%s: %s" % (type(exc).__name__, exc)
                return None
        SECTIONS.append((name, run))
        return run
    return wrap


def run(argv, timeout):
    """argv's exit code, stdout and stderr; killed (with its group) after timeout s."""
    return finish(spawn(argv, timeout))


def spawn(argv, timeout):
    """Start argv (its own process group, stdin /dev/null); finish() collects it. Work done
    between the two overlaps the child's (the env's torch import takes seconds)."""
    pipes = [os.pipe(), os.pipe()]
    pid = os.fork()
    if pid == 0:  # child: own process group, so a timeout kills what it started too
        try:
            os.setpgid(0, 0)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(pipes[0][1], 1)
            os.dup2(pipes[1][1], 2)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    for _, write_end in pipes:
        os.close(write_end)
    return {"pid": pid, "pipes": pipes, "timeout": timeout, "deadline": time.time() + timeout}


def finish(child):
    """The spawned child's exit code, stdout and stderr, waiting until its deadline."""
    pid, pipes, timeout, deadline = child["pid"], child["pipes"], child["timeout"], \
        child["deadline"]
    chunks = {pipes[0][0]: [], pipes[1][0]: []}
    open_fds = list(chunks)
    while open_fds and time.time() < deadline:
        ready, _, _ = select.select(open_fds, [], [], max(0.0, deadline - time.time()))
        for fd in ready:
            data = os.read(fd, 65536)
            chunks[fd].append(data) if data else open_fds.remove(fd)
    timed_out = bool(open_fds)
    if timed_out:
        _kill_group(pid)
    for fd in chunks:
        os.close(fd)
    status = os.waitpid(pid, 0)[1]
    rc = 124 if timed_out else os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + (
        os.WTERMSIG(status))
    out, err = (b"".join(chunks[p[0]]).decode("utf-8", "replace") for p in pipes)
    return {"rc": rc, "stdout": out, "stderr": "timed out after %s s" % timeout if timed_out
            else err}


# Work a section leaves to be done while the env's Python runs (the runtime section), or
# after the last section: [(section name, func)]; main() runs what is left.
DEFERRED = []


def run_deferred():
    while DEFERRED:
        name, func = DEFERRED.pop(0)
        try:
            func()
        except Exception as exc:
            ERRORS[name] = "%s: %s" % (type(exc).__name__, exc)


def time_left(wanted):
    """wanted seconds, or fewer where the probe's own bound (the controller's deadline for
    the whole probe) would come first: a slow section must leave the probe its facts."""
    bound = ARGS.get("probe_bound")
    if bound is None:
        return wanted
    return max(1.0, min(wanted, bound - MARGIN_S - (time.time() - STARTED)))


def _kill_group(pid):
    for target in (-pid, pid):
        try:
            os.kill(target, 9)  # SIGKILL; the signal module would import enum
        except OSError:
            pass


def which(name, *extra):
    """name's executable path on PATH, then /usr/bin and the extra folders, or None (the
    probe's PATH over a non-login SSH session can be short)."""
    folders = [*os.environ.get("PATH", "").split(":"), "/usr/bin", *extra]
    return next((p for p in (os.path.join(d, name) for d in folders if d)
                 if os.access(p, os.X_OK)), None)


def path_info(path):
    try:
        st = os.lstat(path)
    except OSError:
        return {"exists": False}
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "file"
    info = {"exists": True, "kind": kind, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
            "gid": st.st_gid, "owner": _name(pwd.getpwuid, st.st_uid)}
    if kind == "link":
        info["target"] = os.readlink(path)
        info["resolves"] = os.path.exists(path)
    return info


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def read_text(path, limit=1 << 20):
    try:
        with open(path, errors="replace") as stream:
            return stream.read(limit)
    except OSError:
        return None
