# The probe's entry point: every section in order, one JSON document on stdout.
# Part of the one probe script (see __init__.probe_source).


LAST = {"runtime": 1, "peer_logins": 2}


def main():
    started = time.time()
    facts = {"probe_version": PROBE_VERSION, "section_seconds": {}}
    try:
        start_logins()  # in the background; the peer_logins section collects them
    except Exception as exc:
        ERRORS["peer_logins"] = "%s: %s" % (type(exc).__name__, exc)
    # the env's own Python next to last: it is the slow one (import torch), and a hang
    # there must not cost the sections after it; the logins, started first, last
    for name, gather in sorted(SECTIONS, key=lambda item: LAST.get(item[0], 0)):
        begun = time.time()
        facts[name] = gather()
        facts["section_seconds"][name] = round(time.time() - begun, 4)
    run_deferred()  # no runtime section ran it (not requested, or no env python)
    facts["probe_errors"] = ERRORS
    facts["probe_started"] = started  # the node's clock, judged against the controller's
    facts["probe_ended"] = time.time()
    facts["probe_seconds"] = round(facts["probe_ended"] - started, 3)
    sys.stdout.write(to_json(facts))


if __name__ == "__main__":  # also true under `python -c`; selftests import it instead
    main()
