from __future__ import annotations

import json
import os
from typing import Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip import history
from gip.errors import GipError
from gip.history import (
    EMPTY_SHA256, append, format_time, last_record, parse_time, read_history, reserve, tags_sha256,
    target_before_time, target_by_steps,
)


@pytest.mark.parametrize("epoch, text", [
    (0.0, "1970-01-01T00:00:00.000000Z"),
    (1714564800.25, "2024-05-01T12:00:00.250000Z"),
    (1714564800.9999999, "2024-05-01T12:00:01.000000Z"),
])
def test_format_time(epoch, text):
    assert format_time(epoch) == text
    assert parse_time(text) == pytest.approx(round(epoch, 6))


@pytest.mark.parametrize("text, epoch", [
    ("2024-05-01T12:00:00Z", 1714564800.0),
    ("2024-05-01T12:00:00", 1714564800.0),           # no zone: UTC
    ("2024-05-01T14:00:00+02:00", 1714564800.0),
    ("2024-05-01", 1714521600.0),
    (" 2024-05-01T12:00:00.5z ", 1714564800.5),
])
def test_parse_time(text, epoch):
    assert parse_time(text) == epoch


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01", "12:00"])
def test_parse_time_refuses(text):
    with pytest.raises((ValueError, IndexError)):
        parse_time(text)


def record(previous: List[str], after: List[str], **extra) -> Dict[str, object]:
    """A record of the change from ``previous`` to ``after``, as the store writes it."""
    before, now = set(previous), set(after)
    result = {"time": extra.pop("time", "2024-05-01T12:00:00.000000Z"), "account": "sgm", "identity": None,
              "command": "add", "changed": True, "added": sorted(now - before), "removed": sorted(before - now),
              "previous_sha256": tags_sha256(sorted(before)), "sha256": tags_sha256(sorted(now))}
    result.update(extra)
    return result


def test_append_and_read_back(tmp_path):
    path = tmp_path / ".atlas.ldif.history"
    first = record([], ["VO-atlas-a"])
    second = record(["VO-atlas-a"], ["VO-atlas-a", "VO-atlas-b"])
    append(path, [first], 0o644, -1, -1)
    append(path, [second], 0o644, -1, -1)
    assert read_history(path).records == [first, second]
    assert last_record(path) == second
    assert path.stat().st_mode & 0o777 == 0o644
    assert all(line.isascii() for line in path.read_text().splitlines())


def test_a_missing_history_is_empty(tmp_path):
    assert read_history(tmp_path / "none").records == []
    assert last_record(tmp_path / "none") is None


def test_a_torn_last_line_is_ignored_then_cut(tmp_path):
    path = tmp_path / "h"
    first = record([], ["VO-atlas-a"])
    append(path, [first], 0o644, -1, -1)
    with open(path, "ab") as stream:
        stream.write(b'{"time": "2024-05-01T1')
    assert read_history(path).records == [first]
    assert last_record(path) == first
    second = record(["VO-atlas-a"], [])
    append(path, [second], 0o644, -1, -1)
    assert read_history(path).records == [first, second]
    assert path.read_bytes().count(b"\n") == 2


def test_an_unfilled_reservation_reads_as_a_torn_line(tmp_path):
    path = tmp_path / "h"
    first = record([], ["VO-atlas-a"])
    append(path, [first], 0o644, -1, -1)
    reservation = reserve(path, [record(["VO-atlas-a"], [])], 0o644, -1, -1)
    os.close(reservation._fd)  # the writer dies here
    assert path.read_bytes().endswith(b"\x00")
    assert read_history(path).records == [first]
    assert last_record(path) == first


def test_cancel_gives_the_bytes_back(tmp_path):
    path = tmp_path / "h"
    append(path, [record([], ["VO-atlas-a"])], 0o644, -1, -1)
    size = path.stat().st_size
    reserve(path, [record(["VO-atlas-a"], [])], 0o644, -1, -1).cancel()
    assert path.stat().st_size == size


def test_bad_lines_are_reported_and_skipped(tmp_path):
    path = tmp_path / "h"
    good = record([], ["VO-atlas-a"])
    path.write_bytes(b"garbage\n" + json.dumps(good).encode() + b"\n[1]\n{}\n")
    read = read_history(path)
    assert read.records == [good]
    assert [p.line for p in read.problems] == [1, 3, 4]


@pytest.mark.parametrize("field, value", [
    ("added", 5), ("removed", ["VO-atlas-a", 1]), ("previous_tags", "VO-atlas-a"), ("time", 12),
    ("command", None), ("changed", "yes"), ("identity", ["x"]), ("validation", {"tags": 5}), ("validation", []),
    ("previous_sha256", {}), ("previous_text", 1),
    ("account", "\ud800"), ("added", ["VO-atlas-\u00e9"]), ("removed", ["a b"]), ("validation", {"tags": [""]}),
])
def test_a_record_gip_could_not_have_written_is_a_bad_line_not_a_crash(tmp_path, field, value):
    path = tmp_path / "h"
    good = record([], ["VO-atlas-a"])
    path.write_bytes(json.dumps(good).encode() + b"\n" + json.dumps(dict(good, **{field: value})).encode() + b"\n")
    read = read_history(path)
    assert read.records == [good]
    assert [(p.line, p.reason) for p in read.problems] == [(2, "not a history record; skipped")]
    assert last_record(path) is None  # the last line is not a record


def test_a_line_nested_too_deep_for_the_parser_is_a_bad_line(tmp_path):
    path = tmp_path / "h"
    good = record([], ["VO-atlas-a"])
    path.write_bytes(json.dumps(good).encode() + b"\n" + b"[" * 100000 + b"]" * 100000 + b"\n")
    read = read_history(path)
    assert read.records == [good] and [p.line for p in read.problems] == [2]
    assert last_record(path) is None


def test_last_record_of_a_long_line(tmp_path):
    path = tmp_path / "h"
    big = record([], [f"VO-atlas-t{n:06d}" for n in range(20000)])
    append(path, [record([], []), big], 0o644, -1, -1)
    assert path.stat().st_size > 3 * 65536
    assert last_record(path) == big


def test_appending_refuses_a_symlink_and_a_hard_link(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("keep\n")
    folder = tmp_path / "atlas"
    folder.mkdir()
    (folder / "link").symlink_to(outside)
    os.link(outside, folder / "hard")
    with pytest.raises(OSError):
        append(folder / "link", [record([], [])], 0o644, -1, -1)
    with pytest.raises(GipError, match="single name"):
        append(folder / "hard", [record([], [])], 0o644, -1, -1)
    assert outside.read_text() == "keep\n"


# States and restore.

A, B, C = "VO-atlas-a", "VO-atlas-b", "VO-atlas-c"


def chain() -> List[Dict[str, object]]:
    return [
        record([], [A], time="2024-05-01T10:00:00.000000Z"),
        record([A], [A, B], time="2024-05-01T11:00:00.000000Z"),
        record([A, B], [A, B], time="2024-05-01T11:30:00.000000Z", changed=False, validation={"exit_code": 1}),
        record([A, B], [B, C], time="2024-05-01T12:00:00.000000Z"),
    ]


@pytest.mark.parametrize("steps, expected", [(1, [A, B]), (2, [A]), (3, [])])
def test_target_by_steps_skips_records_that_changed_nothing(steps, expected):
    assert target_by_steps(chain(), steps).tags == expected


@pytest.mark.parametrize("steps", [0, 4])
def test_target_by_steps_refuses_beyond_the_history(steps):
    with pytest.raises(GipError):
        target_by_steps(chain(), steps)


@pytest.mark.parametrize("moment, expected", [
    ("2024-05-01T09:00:00Z", []),
    ("2024-05-01T10:00:00.000001Z", [A]),
    ("2024-05-01T11:59:59Z", [A, B]),
    ("2024-05-01T13:00:00", [B, C]),
])
def test_target_before_time(moment, expected):
    assert target_before_time(chain(), parse_time(moment)).tags == expected


def test_an_anchor_restores_what_came_before_a_hand_edited_file():
    records = [record(["VO-atlas-hand"], ["VO-atlas-hand", A], previous_tags=["VO-atlas-hand"])]
    assert target_by_steps(records, 1).tags == ["VO-atlas-hand"]


def test_a_broken_chain_is_walked_back_from_the_file_as_it_is():
    records = chain()
    records[1] = dict(records[1], previous_sha256=tags_sha256(["VO-atlas-other"]))
    with pytest.raises(GipError, match="cannot tell"):
        target_by_steps(records, 1)
    assert target_by_steps(records, 1, current=[B, C]).tags == [A, B]
    with pytest.raises(GipError, match="does not agree"):
        target_by_steps(records, 2, current=[B, C])  # the broken record's own hash is wrong
    assert target_by_steps(records, 3).tags == []  # forward, from the empty start
    with pytest.raises(GipError, match="cannot tell"):
        target_by_steps(records, 1, current=[A])  # not what the history ends in: not trusted


def test_an_external_edit_snapshot_re_anchors():
    records = chain() + [dict(record([B, C], ["VO-atlas-z"]), command="external-edit", added=[], removed=[],
                              tags=["VO-atlas-z"], diff_known=False)]
    records[1] = dict(records[1], previous_sha256="0" * 64)  # break the chain before it
    assert history.state_after_last(records) == frozenset(["VO-atlas-z"])
    with pytest.raises(GipError, match="cannot tell"):
        target_by_steps(records, 1, current=["VO-atlas-z"])
    records.append(record(["VO-atlas-z"], ["VO-atlas-z", A]))
    assert target_by_steps(records, 1).tags == ["VO-atlas-z"]


def test_a_record_that_lies_about_its_hash_is_caught():
    records = chain()
    records[3] = dict(records[3], added=["VO-atlas-forged"])
    records.append(record([B, C], [C]))
    with pytest.raises(GipError, match="does not agree"):
        target_by_steps(records, 1)


@pytest.mark.parametrize("line, expected", [
    (record([], [A, B], identity="/DC=ch/CN=Jane"), f"2024-05-01T12:00:00.000000Z sgm (/DC=ch/CN=Jane) add: +{A} +{B}"),
    (record([A], [A], validation={"exit_code": 3}, changed=False), "2024-05-01T12:00:00.000000Z sgm add: no change [validation exit 3]"),
    (record([A], [A], validation={"exit_code": 3, "tags": [B]}, changed=False),
     f"2024-05-01T12:00:00.000000Z sgm add: not published: +{B} [validation exit 3]"),
])
def test_describe(line, expected):
    assert history.describe(line) == expected


def test_describe_cuts_long_lists():
    text = history.describe(record([f"VO-atlas-{n}" for n in range(30)], []))
    assert text.endswith("(and 20 more)")


tag_names = st.sampled_from([f"VO-atlas-{c}" for c in "abcdefgh"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sets(tag_names), min_size=1, max_size=12), st.sets(tag_names))
def test_every_earlier_state_comes_back(states: List[set], start: set):
    """Any sequence of states, recorded as diffs from a first anchored one: each state is derivable."""
    records = []
    previous = sorted(start)
    for number, state in enumerate(states):
        extra = {"previous_tags": previous} if number == 0 else {}
        records.append(record(previous, sorted(state), **extra))
        previous = sorted(state)
    timeline = [sorted(start)] + [sorted(s) for s in states]
    for steps in range(1, len(records) + 1):
        assert target_by_steps(records, steps).tags == timeline[-1 - steps]
    assert history.state_after_last(records) == frozenset(timeline[-1])


def test_empty_hash_is_the_hash_of_no_tags():
    assert tags_sha256([]) == EMPTY_SHA256
