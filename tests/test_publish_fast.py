"""The publisher's fast paths against the general ones they stand for.

Each fast path must print exactly what the general path prints, for any
input: the values' check against the rule of a stamped value, and the
ApplicationEnvironments joined in chunks, made to cut at every size.
"""

from __future__ import annotations

from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip import publish
from gip.publish import _SAFE_VALUE, joined_entries, safe_values

# Every character a value may hold, those just outside the rule, and some far outside it.
_characters = st.sampled_from(list("aZ09._-") + list(" :<>=,+#;\\\"\n\r\t\x00\x7f/") + ["\u00e9", "\u2603"])
_values = st.lists(st.text(_characters, max_size=6), min_size=1, max_size=8)


@settings(max_examples=500, deadline=None)
@given(_values)
def test_safe_values_passes_exactly_the_values_the_rule_passes(values):
    expected = [value.encode("ascii") for value in values] if all(_SAFE_VALUE.fullmatch(v) for v in values) else None
    assert safe_values(values) == expected


@pytest.mark.parametrize("values", [
    [""], ["a", ""], ["", "a"], ["a\\nb"], ["a\nb"], ["a", "b\n"], ["\na"], [".a"], ["a", "_b"], ["a", "-b"],
    ["caf\u00e9"], ["a b"], ["a:"], ["a", "b", "c"], ["VO-atlas-x_1.2"],
])
def test_safe_values_table(values):
    expected = [value.encode("ascii") for value in values] if all(_SAFE_VALUE.fullmatch(v) for v in values) else None
    assert safe_values(values) == expected


def test_safe_values_refuses_a_value_holding_a_line_break_that_the_joined_values_hide():
    # Joined by line breaks, "a\nb" reads as two values that pass: it must not.
    assert safe_values(["a\nb", "c"]) is None
    assert safe_values(["a", "b", "c"]) == [b"a", b"b", b"c"]


_pieces = st.lists(st.text(st.sampled_from(list("ab%s{}\n:") + ["\u00e9"]), max_size=5), min_size=1, max_size=5)
_tag_values = st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True), max_size=30)


@settings(max_examples=300, deadline=None)
@given(_pieces, _tag_values, st.integers(min_value=1, max_value=400))
def test_joined_entries_in_chunks_of_any_size_are_each_value_joined_alone(pieces, values, size):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(publish, "_CHUNK_BYTES", size)
        parts = joined_entries(pieces, [value.encode("ascii") for value in values])
    assert b"".join(parts).decode("utf-8") == "".join(value.join(pieces) for value in values)
    assert all(parts) and len(parts) <= len(values)


def test_a_large_list_is_cut_into_chunks_of_about_the_chunk_size():
    values: List[bytes] = [f"VO-atlas-{n}".encode("ascii") for n in range(100_000)]
    parts = joined_entries(["dn: x=", ",o=y\nname: ", "\n\n"], values)
    assert 1 < len(parts) < 100
    assert max(map(len, parts)) <= 2 * publish._CHUNK_BYTES
    assert b"".join(parts) == b"".join(b"dn: x=" + v + b",o=y\nname: " + v + b"\n\n" for v in values)
