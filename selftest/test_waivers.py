"""waivers.yaml: read strictly (one line naming file and line for any mistake), matched
by check pattern and node range, live before expired."""

from __future__ import annotations

import datetime

import pytest

from preflight.config import waivers
from preflight.core.errors import UserError
from selftest.builders import GOOD, load


def test_match_by_pattern_and_range_live_first(tmp_path):
    found = load(tmp_path, GOOD)
    assert [w.id for w in found] == ["waivers.yaml:2", "waivers.yaml:7"]
    day = datetime.date(2026, 11, 27)
    assert waivers.find(found, "test_gpu_count_matches", "worker-8", day).owner == "alice"
    assert waivers.find(found, "test_gpu_count_matches", "worker-10", day) is None
    assert waivers.find(found, "test_env_pins", "worker-8", day) is None
    late = datetime.date(2027, 1, 1)
    assert waivers.find(found, "test_gpu_count_x", "worker-8", late).expired(late)
    assert not found[0].expired(datetime.date(2026, 12, 31))  # the last day still applies


@pytest.mark.parametrize(("text", "message"), [
    ("waivers:\n  - check: a\n    nodes: n1\n    reason: r\n    owner: o\n    expires: 2026-01-01\n"
     "    note: x\n", "waivers.yaml:7: unknown key 'note'"),
    ("waivers:\n  - check: a\n    nodes: n1\n    reason: r\n    owner: o\n",
     "waivers.yaml:2: 'expires' is required in every waiver"),
    ("waivers:\n  - check: a\n    nodes: n1\n    reason: r\n    owner: o\n    expires: soon\n",
     "waivers.yaml:6: waivers.0.expires: input should be a valid date"),
    ("waivers:\n  - check: a\n    nodes: 'n[1-'\n    reason: r\n    owner: o\n"
     "    expires: 2026-12-01\n", "waivers.yaml:2: nodes: bad node range"),
    ("waivers:\n  - check: a\n   nodes: n1\n", "waivers.yaml:3: malformed YAML"),
    ("- just a list\n", "waivers.yaml:1: expected a mapping with a 'waivers' list"),
    ("waiver: []\n", "waivers.yaml:1: unknown key 'waiver' (did you mean 'waivers'?)"),
])
def test_bad_waivers_files_are_one_line_with_file_and_line(tmp_path, text, message):
    with pytest.raises(UserError) as caught:
        load(tmp_path, text)
    shown = str(caught.value)
    assert message in shown.replace(str(tmp_path) + "/", "")
    assert "\n" not in shown
