from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip.ldifvalue import (
    UnsafeValue,
    attribute_line,
    attribute_lines,
    attributes_block,
    dn_line,
    is_plain_block,
    plain_value_lines,
    plainly_printable,
    value_problem,
)
from gip.dnkey import dn_key


@pytest.mark.parametrize(
    "value, problem",
    [
        ("Production", None),
        ("PilotSCAS", None),
        ("a b", None),
        ("", "empty"),
        ("x\ny", "not printable ASCII (a line break, a control or a non-ASCII character)"),
        ("x\r", "not printable ASCII (a line break, a control or a non-ASCII character)"),
        ("x\x00", "not printable ASCII (a line break, a control or a non-ASCII character)"),
        ("caf\u00e9", "not printable ASCII (a line break, a control or a non-ASCII character)"),
        ("x dn: o=grid", "holds 'dn:', which bdii-update takes for the start of an entry"),
        (" x", "has a leading or trailing space"),
        ("x ", "has a leading or trailing space"),
    ],
)
def test_value_problem(value, problem):
    assert value_problem(value) == problem


@pytest.mark.parametrize(
    "value, line",
    [
        ("Production", "A: Production\n"),
        (":x", "A:: " + base64.b64encode(b":x").decode() + "\n"),
        ("<x", "A:: " + base64.b64encode(b"<x").decode() + "\n"),
        ("x:y<z", "A: x:y<z\n"),
    ],
)
def test_attribute_line_base64_only_where_rfc2849_needs_it(value, line):
    assert attribute_line("A", value) == line


@pytest.mark.parametrize("attribute", ["", "1x", "a b", "a:b", "x\ndn", "dn", "DN", "Dn", "ownerdn", "x;lang-dn"])
def test_attribute_names_are_checked(attribute):
    with pytest.raises(UnsafeValue):
        attribute_line(attribute, "v")
    with pytest.raises(UnsafeValue):
        attributes_block([("objectClass", ["GlueCE"]), (attribute, ["v"])])


@pytest.mark.parametrize("attribute", ["ownerDN", "dnsName", "GlueCEName", "x;lang-en"])
def test_names_near_dn_that_bdii_update_reads_right_are_kept(attribute):
    assert attribute_line(attribute, "v") == f"{attribute}: v\n"
    assert attributes_block([(attribute, ["v"])]) == f"{attribute}: v\n"
    assert is_plain_block(f"{attribute}: v") is (";" not in attribute)


def test_the_dn_line_itself_is_printed():
    assert dn_line("o=grid") == "dn: o=grid\n"


def test_unsafe_values_raise():
    with pytest.raises(UnsafeValue, match="GlueCEStateStatus: has a leading or trailing space"):
        attribute_line("GlueCEStateStatus", "x ")
    with pytest.raises(UnsafeValue):
        dn_line("GlueCEUniqueID=x\ndn: o=evil")


def test_attribute_lines_fast_and_slow_paths():
    assert attribute_lines("A", []) == ""
    assert attribute_lines("A", ["x", "y"]) == "A: x\nA: y\n"
    assert attribute_lines("A", ["x", ":y"]) == "A: x\nA:: Onk=\n"
    with pytest.raises(UnsafeValue):
        attribute_lines("A", ["x", "y\ndn: o=grid"])
    with pytest.raises(UnsafeValue):
        attribute_lines("A", ["x", ""])
    with pytest.raises(UnsafeValue):
        attribute_lines("A", ["x", "y\nz"])
    with pytest.raises(UnsafeValue):
        attribute_lines("A", ["x\r\ny"])


def assert_block_equals_lines(values):
    """attribute_lines must print exactly what one attribute_line per value prints, or refuse likewise."""
    try:
        expected = "".join(attribute_line("A", v) for v in values)
    except UnsafeValue:
        with pytest.raises(UnsafeValue):
            attribute_lines("A", values)
        return None
    assert attribute_lines("A", values) == expected
    return expected


@pytest.mark.parametrize("bad", ["\n", "\r", "\x00", " ", ":", "<", "dn:", "\u00e9", ""])
def test_attribute_lines_never_lets_a_bad_character_through(bad):
    assert_block_equals_lines(["VO-a-x", f"VO-a-{bad}y", "VO-a-z"])


tricky_text = st.one_of(st.text(max_size=20), st.text(alphabet="ab dn:<\n\r\x00\u00e9", max_size=12))


@given(st.lists(tricky_text, max_size=8))
def test_attribute_lines_equals_one_line_per_value(values):
    expected = assert_block_equals_lines(values)
    if expected is not None:
        assert expected.count("\n") == len(values)
        assert "dn:" not in expected.replace("A:", "")


attribute_names = st.sampled_from(["GlueCEName", "objectClass", "x-1", "a;lang-en", "1bad", "a b", ""])


@given(st.lists(st.tuples(attribute_names, st.lists(tricky_text, max_size=3)), max_size=6))
def test_attributes_block_prints_what_attribute_lines_prints_or_refuses(pairs):
    try:
        block = attributes_block(pairs)
    except UnsafeValue:
        return  # the caller goes attribute by attribute
    assert block == "".join(attribute_lines(name, values) for name, values in pairs)


def test_attributes_block_refuses_what_needs_a_closer_look():
    assert attributes_block([("A", ["x y"]), ("B", ["1", "2"])]) == "A: x y\nB: 1\nB: 2\n"
    for pairs in ([("A", [":x"])], [("A", ["x "])], [("A", [""])], [("A", ["x\ny"])], [("A b", ["x"])],
                  [("A", ["a dn: b"])]):
        with pytest.raises(UnsafeValue):
            attributes_block(pairs)


@pytest.mark.parametrize(
    "text, plain",
    [
        ("objectClass: GlueCE\nGlueCEName: long", True),
        ("GlueCEInfoContactString: https://ce:8443/x", True),
        ("a: b\n", False),  # an empty last line
        ("a:b", False),
        ("a:  b", False),
        ("a: :b", False),
        ("a: <b", False),
        ("a: b ", False),
        ("a: b \nc: d", False),
        ("a: dn: x", False),
        ("a: b\nownerdn: x", False),
        ("a: b\nDN: o=x", False),
        ("dN: o=x", False),
        ("a: caf\u00e9", False),
        ("a: tab\there", False),
        ("1a: b", False),
        ("a;lang-x: b", False),
        ("a b: c", False),
        ("a:", False),
    ],
)
def test_plain_blocks_are_lines_that_print_as_they_are(text, plain):
    assert is_plain_block(text) is plain


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(alphabet="aZ09._-: \n\u00e9\x00<d", max_size=6), max_size=8),
       st.sampled_from(["GlueHostApplicationSoftwareRunTimeEnvironment", "a;x", "1bad"]))
def test_plain_value_lines_are_attribute_lines_or_none(values, attribute):
    plain = plain_value_lines(attribute, values)
    if plain is not None:
        assert b"".join(plain) == attribute_lines(attribute, values).encode("ascii")


def test_plain_value_lines_take_tag_lists():
    assert b"".join(plain_value_lines("A", ["VO-x-1.0_b", "9"]) or []) == b"A: VO-x-1.0_b\nA: 9\n"
    assert plain_value_lines("A", ["VO-x-1", ""]) is None
    assert plain_value_lines("A", ["a b"]) is None


@settings(max_examples=500)
@given(st.lists(st.text(st.sampled_from("aB=,.:/-d n\\\t\n\x7f\xe9"), max_size=8), max_size=5))
def test_values_plainly_printable_all_at_once_are_each_printable_and_their_own_dn_key(values):
    if plainly_printable(values):
        assert all(value_problem(value) is None and dn_key(value) == value.lower() for value in values)


def test_plainly_printable():
    dns = ["GlueCEUniqueID=ce:8443/cream-pbs-q1,mds-vo-name=resource,o=grid", "o=grid"]
    assert plainly_printable(dns) and plainly_printable([])
    for bad in ["o=a b", "o=a\tb", "o=a\\,b", "", "o=a\nb", "o=a\x7f", "o=caf\xe9", "dn: o=x"]:
        assert not plainly_printable(dns + [bad]), bad


def test_valid_tags_print_as_any_plain_values_do():
    tags = ["VO-cms-CMSSW_1_0", "VO-cms-sw.2-x"]
    attribute = "GlueHostApplicationSoftwareRunTimeEnvironment"
    assert plain_value_lines(attribute, tags, valid_tags=True) == plain_value_lines(attribute, tags)
    assert plain_value_lines("bad name", tags, valid_tags=True) is None
