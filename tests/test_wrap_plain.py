"""The reading of plain plugin output over the whole text gives what the line-by-line reading gives.

gip.wrap reads the common plugin output (ASCII, LF line ends, old-style
entries of plain lines) with a few searches of the whole text. These tests
generate outputs with and without what makes output not plain, and compare
the two readings: the same text, DNs, notes and changes, or the same error.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Set, Tuple, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gip.dnkey import dn_key
from gip.wrap import (
    _UNDECODABLE,
    _all_plainly_one_entry,
    GLUE1_STATE,
    GLUE2_STATE,
    Applied,
    Override,
    _by_key,
    _dn_text_key,
    _general_rewrite,
    _plain_keys,
    _plain_rewrite,
    _plainly_one_entry,
    _rewrite,
    _undecodable,
)

LONG = "GlueCEUniqueID=ce01.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid"
SHORT = "GlueCEUniqueID=ce01.example.org:8443/cream-pbs-short,mds-vo-name=resource,o=grid"
SHARE = "GLUE2ShareID=grid_ce02_atlas,GLUE2ServiceID=ce02_ComputingElement,GLUE2GroupID=resource,o=glue"
DNS = (LONG, SHORT, SHARE)
STATES = ("Production", "production", "Closed", "Draining", "PilotSCAS", "draining")

# How a plugin may spell a DN on its dn: line.
_SPELLINGS = st.sampled_from([
    lambda dn: dn,
    lambda dn: dn.upper(),
    lambda dn: dn.replace(",", " , "),
    lambda dn: dn.replace("=", "\t=\t"),
    lambda dn: dn.replace(",o=", "\\2co="),
    lambda dn: dn + " ",
    lambda dn: " " + dn,
    lambda dn: dn[:-3],
])
_DN_LINE_STARTS = st.sampled_from(["dn: ", "dn: ", "dn:", "dn:x", "dn:  "])
_NAMES = st.sampled_from([
    GLUE1_STATE, GLUE1_STATE.lower(), GLUE1_STATE.upper(), GLUE2_STATE, GLUE2_STATE.lower(),
    "GlueCEStateFreeCPUs", GLUE1_STATE + "X", "X" + GLUE1_STATE, "GLUE2ComputingShareFreeSlots", "DN", "dnx",
])
_VALUES = st.sampled_from(STATES + ("", " Production ", "Production  ", "12", "Production\t", "x dnx"))
_SEPARATORS = st.sampled_from([": ", ":", ":  ", ":: ", "::", " : "])
_BASE64 = st.sampled_from(["UHJvZHVjdGlvbg==", "Q2xvc2Vk", "!!", "UHJvZA", "/w=="])
_PLAIN_LINES = st.one_of(
    st.builds(lambda name, separator, value: name + separator + value, _NAMES, _SEPARATORS, _VALUES),
    st.builds(lambda name, value: f"{name}:: {value}", _NAMES, _BASE64),
    st.sampled_from(["", "-", "\t", "\t-", "-\t", "no colon", "DN: other", "x:y:z", "\x1c", "\x0c\t"]),
)
# Lines that make output not plain, or that plain output may still have.
_UNUSUAL_LINES = st.sampled_from([
    "# comment", "#GlueCEStateStatus: Production", "changetype: modify", "ChangeType: modify",
    f"replace: {GLUE1_STATE}", f"add: {GLUE1_STATE}", f"delete: {GLUE1_STATE}", "Add: x", "-",
    f"x dn: {LONG}", "dn:", f"{GLUE1_STATE}: Producción", "\udce9", " folded", "  ", "changetype :", "add :",
    "\tchangetype: modify",
])
_LINE_ENDS = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r", "\n "])


@st.composite
def plugin_outputs(draw: st.DrawFn, unusual: bool) -> str:
    """A plugin's output: blocks of a dn: line and attribute lines; with ``unusual``, also what is rare:
    one kind of it at a time often enough, so that the rest of the output is still plain."""
    odd_lines = unusual and draw(st.booleans())
    odd_ends = unusual and draw(st.booleans())
    lines = draw(st.lists(_PLAIN_LINES, max_size=2))
    for _ in range(draw(st.integers(0, 6))):
        start = draw(_DN_LINE_STARTS)
        lines.append(start + draw(_SPELLINGS)(draw(st.sampled_from(DNS))))
        body = st.one_of(_PLAIN_LINES, _UNUSUAL_LINES) if odd_lines else _PLAIN_LINES
        lines += draw(st.lists(body, max_size=6))
    ends = [draw(_LINE_ENDS) if odd_ends else "\n" for _ in lines]
    text = "".join(line + end for line, end in zip(lines, ends))
    if unusual and text and draw(st.booleans()):
        return text[:-draw(st.integers(1, 2))]
    return text


@st.composite
def overrides(draw: st.DrawFn) -> List[Override]:
    """Overrides of the state of some of the DNs, at most one for each attribute of an entry."""
    chosen: List[Override] = []
    for dn in draw(st.lists(st.sampled_from(DNS), unique=True)):
        attributes = draw(st.lists(st.sampled_from([GLUE1_STATE, GLUE2_STATE, "GlueCEStateFreeCPUs"]),
                                   unique=True, min_size=1, max_size=2))
        for attribute in attributes:
            spelled = draw(st.sampled_from([dn, dn.lower(), dn.replace(",", ", ")]))
            chosen.append(Override(spelled, attribute, draw(st.sampled_from(["PilotSCAS", "draining", ":odd"])),
                                   draw(st.sampled_from([None, "Production", "production"])),
                                   draw(st.sampled_from([None, "Production", "Closed"]))))
    return chosen


_Outcome = Union[Applied, Tuple[type, str]]


def outcome(reading: str, output: str, chosen: List[Override], watched: Set[str]) -> Optional[_Outcome]:
    """What one reading gives: an Applied, None (not plain), or the error it raised."""
    by_key = _by_key(chosen)
    wanted = set(by_key).union(watched)
    try:
        if reading == "plain":
            return _plain_rewrite(output, by_key, wanted)
        return _general_rewrite(output, by_key, wanted)
    except Exception as error:
        return type(error), str(error)


_WATCHED = st.sets(st.sampled_from([dn_key(dn) for dn in DNS] + ["o=grid"]))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plugin_outputs(unusual=False), overrides(), _WATCHED)
def test_plain_output_is_read_over_the_whole_text_as_line_by_line(
        output: str, chosen: List[Override], watched: Set[str]) -> None:
    plain = outcome("plain", output, chosen, watched)
    if "dn:" in output and output.isascii():
        assert plain is not None, "plain output read line by line"
    if plain is not None:
        assert plain == outcome("general", output, chosen, watched)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plugin_outputs(unusual=True), overrides(), _WATCHED)
def test_output_that_may_not_be_plain_is_read_as_line_by_line(
        output: str, chosen: List[Override], watched: Set[str]) -> None:
    plain = outcome("plain", output, chosen, watched)
    general = outcome("general", output, chosen, watched)
    if plain is not None:
        assert plain == general
    try:
        assert _rewrite(output, chosen, watched) == general
    except Exception as error:
        assert (type(error), str(error)) == general


@pytest.mark.parametrize("output", [
    f"dn: {LONG}\nGlueCEStateStatus: Production\n",
    f"dn: {LONG}\nGlueCEStateStatus:: UHJvZHVjdGlvbg==\n\ndn: {SHORT}\nGlueCEStateFreeCPUs: 1\n\n",
    f"junk\ndn: {LONG}\n\tGlueCEStateStatus: Production\n-\n",
])
def test_plain_output_is_read_over_the_whole_text(output: str) -> None:
    chosen = [Override(LONG, GLUE1_STATE, "PilotSCAS", "Production", "Production")]
    applied = _plain_rewrite(output, _by_key(chosen), {dn_key(LONG)})
    assert applied is not None
    assert applied == _general_rewrite(output, _by_key(chosen), {dn_key(LONG)})


@pytest.mark.parametrize("output", [
    f"dn: {LONG}\nGlueCEStateStatus: Production",
    f"dn: {LONG}\r\nGlueCEStateStatus: Production\r\n",
    f"dn: {LONG}\nGlueCEStateStatus: Prod\n uction\n",
    f"dn: {LONG}\n# GlueCEStateStatus: Production\n",
    f"dn: {LONG}\nchangetype: modify\nreplace: GlueCEStateStatus\nGlueCEStateStatus: Production\n-\n",
    f"dn: {LONG}\nADD: GlueCEStateStatus\n",
    f"dn: {LONG}\nGlueCEStateStatus: Production\nx dn: {SHORT}\n",
    f"dn: {LONG}\nGlueCEStateStatus: Producción\n",
    "no entry\n",
    "",
])
def test_output_that_is_not_plain_is_read_line_by_line(output: str) -> None:
    chosen = [Override(LONG, GLUE1_STATE, "PilotSCAS", "Production", "Production")]
    assert _plain_rewrite(output, _by_key(chosen), {dn_key(LONG)}) is None


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(st.characters(max_codepoint=127, blacklist_characters="\n")
                        | st.sampled_from([" ", "\t", "\\2c", "\\5c", "A", "=", ","]), max_size=12)
                .map("".join), min_size=1))
def test_dn_keys_of_ascii_lines_are_taken_at_once_as_one_by_one(texts: List[str]) -> None:
    assert list(_plain_keys(texts)) == [_dn_text_key(text) for text in texts]


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters() | st.sampled_from(["\udc80", "\udcff", "\ud800", "\udc7f"])))
def test_the_first_byte_that_is_not_utf8_is_found_as_by_the_scan(output: str) -> None:
    found, scanned = _undecodable(output), _UNDECODABLE.search(output)
    assert (found and found.span()) == (scanned and scanned.span())


_BLOCK_TOKENS = st.sampled_from([
    "dn: ", "dn:", f"dn: {SHORT}\n", " ", "\n", "\r", "\n ", "x", "é", "\\2c", "-\n",
])


@st.composite
def state_blocks(draw: st.DrawFn) -> Dict[str, str]:
    """Blocks as gip renders them, under the keys of their DNs spelled in some way; now and then one
    with something inserted, or under another key."""
    blocks = {}
    for dn in draw(st.lists(st.sampled_from(DNS), unique=True)):
        spelled = draw(st.sampled_from([dn, dn.lower(), dn + " ", dn.replace(",", ", "), dn.upper()]))
        block = f"dn: {spelled}\nchangetype: modify\nreplace: {GLUE1_STATE}\n{GLUE1_STATE}: PilotSCAS\n-\n"
        if draw(st.integers(0, 3)) == 0:
            at = draw(st.integers(0, len(block)))
            block = block[:at] + draw(_BLOCK_TOKENS) + block[at:]
        key = dn_key(dn) if draw(st.integers(0, 5)) else draw(st.sampled_from([dn_key(LONG), dn, "o=grid"]))
        blocks[key] = block
    return blocks


@settings(max_examples=1000, deadline=None)
@given(state_blocks())
def test_state_blocks_are_plainly_one_entry_at_once_only_where_each_is(blocks: Dict[str, str]) -> None:
    each = all(_plainly_one_entry(block, key) for key, block in blocks.items())
    assert each or not _all_plainly_one_entry(blocks)
    if each and "".join(blocks.values()).isascii():
        assert _all_plainly_one_entry(blocks)


def test_gips_own_state_blocks_are_plainly_one_entry_at_once() -> None:
    blocks = {dn_key(dn): f"dn: {dn}\nchangetype: modify\nreplace: {GLUE1_STATE}\n{GLUE1_STATE}: PilotSCAS\n-\n"
              for dn in DNS}
    assert _all_plainly_one_entry(blocks)
    assert not _all_plainly_one_entry({**blocks, dn_key(LONG): blocks[dn_key(SHORT)]})


@pytest.mark.parametrize("blocks", [
    # A 'dn:' made of the end of one block and the start of the next.
    {dn_key(LONG): f"dn: {LONG}\n-\nd", dn_key(SHORT): f"n:  {SHORT}\n-\n"},
    # A DN with a space at its end that is not ASCII: no key that bdii-update matches.
    {"\xa0o=grid": "dn: \xa0o=grid\n"},
    {"o=grid\x85": "dn: o=grid\x85\n"},
])
def test_blocks_not_each_plainly_one_entry_are_not_so_at_once(blocks: Dict[str, str]) -> None:
    assert not all(_plainly_one_entry(block, key) for key, block in blocks.items())
    assert not _all_plainly_one_entry(blocks)


def test_the_plain_reading_is_the_one_taken_for_plain_output() -> None:
    """The comparisons above mean something only where plain output is read the plain way."""
    output = "".join(f"dn: {dn}\nGlueCEStateStatus: Production\n\n" for dn in DNS)
    chosen = [Override(dn, GLUE1_STATE, "PilotSCAS", "Production", "Production") for dn in DNS]
    by_key = _by_key(chosen)
    applied = _plain_rewrite(output, by_key, set(by_key))
    assert applied is not None
    assert re.findall(r"GlueCEStateStatus: (\w+)", applied.text) == ["PilotSCAS"] * 3
    assert len(applied.changes) == 3
