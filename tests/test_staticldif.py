from __future__ import annotations

import base64
import copy
import io
import os
import string
from pathlib import Path

import ldif
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gip.ldifvalue import is_plain_block
from gip.staticldif import StaticEntry, parse_static_ldif, read_static_ldif

DN = "GlueSubClusterUniqueID=ce.example.org,GlueClusterUniqueID=ce.example.org,mds-vo-name=resource,o=grid"


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode("utf-8"))


def parsed(data: bytes):
    result = parse_static_ldif(data, "f.ldif")
    return [(e.dn, list(e.items())) for e in result.entries], [str(p) for p in result.problems]


@pytest.mark.parametrize(
    "data, entries",
    [
        pytest.param(b"dn: o=a\nx: 1\n", [("o=a", [("x", ["1"])])], id="plain"),
        pytest.param(b"dn: o=a\r\nx: 1\r\nx: 2\r\n", [("o=a", [("x", ["1", "2"])])], id="crlf"),
        pytest.param(b"dn: o=a\nx: a long\n  value\n", [("o=a", [("x", ["a long value"])])], id="folded"),
        pytest.param(b"dn: o=a\nx:: " + b64(":colon") + b"\n", [("o=a", [("x", [":colon"])])], id="base64"),
        pytest.param(b"version: 1\n\n# a comment\ndn: o=a\n# inside\nx: 1\n", [("o=a", [("x", ["1"])])], id="comments"),
        pytest.param(b"dn:: " + b64("o=a") + b"\nx: 1\n", [("o=a", [("x", ["1"])])], id="base64-dn"),
        pytest.param(b"dn: o=a\nx: 1\n\n\n\ndn: o=b\ny: 2\n", [("o=a", [("x", ["1"])]), ("o=b", [("y", ["2"])])],
                     id="blank-lines"),
        pytest.param(b"dn: o=a\nX: 1\nother: 2\nx: 3\n", [("o=a", [("X", ["1", "3"]), ("other", ["2"])])],
                     id="case-insensitive-names"),
        pytest.param(b"dn: o=a\nx: caf\xc3\xa9\n", [("o=a", [("x", ["caf\u00e9"])])], id="utf-8-kept-as-str"),
        pytest.param(b"", [], id="empty"),
    ],
)
def test_rfc_2849_features(data, entries):
    assert parsed(data) == (entries, [])


@pytest.mark.parametrize("parser", [False, True], ids=["plain-reading", "parser"])
def test_values_come_without_whitespace_around_them_as_bdii_update_reads_them(parser):
    from gip.staticldif import parse_plain_ldif

    data = b"dn: o=a\nobjectClass: GlueCE \nx:\tv\t\ny:  w  \n"
    data += b"z:: " + b64(" b64 ") + b"\n" if parser else b""
    assert (parse_plain_ldif(data, "f.ldif") is None) == parser
    entry = parse_static_ldif(data, "f.ldif").entries[0]
    # A base64 value is decoded after bdii-update strips what was written: it keeps its spaces.
    expected = [("objectClass", ["GlueCE"]), ("x", ["v"]), ("y", ["w"])] + ([("z", [" b64 "])] if parser else [])
    assert list(entry.items()) == expected
    assert (entry.first("x"), entry.values("y"), entry.has_class("GlueCE")) == ("v", ["w"], True)


def test_a_lone_cr_ends_a_line_as_bdii_update_reads_the_file():
    # bdii-update opens the file with universal newlines: 'x: long\ry: ...' is two lines to it.
    entries, problems = parsed(b"dn: o=a\nx: long\ry: Production\r\n\r\ndn: o=b\rz: 1")
    assert (entries, problems) == ([("o=a", [("x", ["long"]), ("y", ["Production"])]), ("o=b", [("z", ["1"])])], [])


def test_entry_lookup_ignores_case_and_keeps_the_first_spelling():
    entry = parse_static_ldif(b"dn: o=a\nobjectClass: GlueClusterTop\nobjectclass: GlueSubCluster\n", "f").entries[0]
    assert entry.values("OBJECTCLASS") == ["GlueClusterTop", "GlueSubCluster"]
    assert [name for name, _ in entry.items()] == ["objectClass"]
    assert entry.has_class("gluesubcluster") and not entry.has_class("GlueCE")
    assert entry.first("objectclass") == "GlueClusterTop"
    assert entry.first("missing") is None and entry.values("missing") == []


def test_lines_of_the_dn_and_of_each_value():
    data = b"version: 1\n# comment\ndn: o=a\nx: 1\nx: long\n  folded\ny: 2\n\ndn: o=b\nx: 3\n"
    a, b = parse_static_ldif(data, "f.ldif").entries
    assert (a.line, a.line_of("x", 0), a.line_of("x", 1), a.line_of("y"), a.line_of("x", 2)) == (3, 4, 5, 7, None)
    assert (b.line, b.line_of("x")) == (9, 10)
    assert b.origin == "f.ldif:9"


def test_a_broken_record_costs_itself_only():
    data = b"dn: o=a\nx: 1\n\ndn: o=b\nno colon here\nx: 2\n\ndn: o=c\nx: 3\n"
    entries, problems = parsed(data)
    assert entries == [("o=a", [("x", ["1"])]), ("o=c", [("x", ["3"])])]
    assert problems == ["f.ldif:5: not LDIF (no value-spec in 'no colon here'); the entry there is skipped"]


INNER_DN = ("a 'dn:' line inside an entry, with no blank line before it: read as the start of another entry, "
            "as bdii-update reads it")


@pytest.mark.parametrize("folded", [b"", b"\n  folded"], ids=["plain-reading", "parser"])
def test_a_dn_line_inside_an_entry_starts_another_as_bdii_update_reads_it(folded):
    data = b"dn: o=a\nx: 1" + folded + b"\ndn: o=b\ny: 2\nDN: o=c\n\ndn: o=d\nz: 3\n"
    entries, problems = parsed(data)
    x = "1 folded" if folded else "1"
    assert entries == [("o=a", [("x", [x])]), ("o=b", [("y", ["2"]), ("DN", ["o=c"])]), ("o=d", [("z", ["3"])])]
    assert problems == [f"f.ldif:{4 if folded else 3}: {INNER_DN}"]


@pytest.mark.parametrize("folded", [b"", b"\n  folded"], ids=["plain-reading", "parser"])
def test_where_bdii_update_cuts_an_entry_at_a_dn_inside_a_line(folded):
    data = b"dn: o=a\nx: 1" + folded + b"\nownerdn: cn=x\ny: see dn: here\n\ndn: o=b\nz: 3\n"
    a, b = parse_static_ldif(data, "f.ldif").entries
    assert (a.inner_dn_line(), b.inner_dn_line()) == (4 if folded else 3, None)


H = b"dn: o=ce\nobjectClass: GlueCE\n"


@pytest.mark.parametrize("data, cut, state", [
    pytest.param(H + b"x: /abcd\n n: x\nGlueCEStateStatus: Production\n", 3, None, id="a-fold-makes-dn:"),
    pytest.param(H + b"GlueCEStateStatus: Production\n dn: x\n", 3, "Production", id="dn:-on-a-continuation"),
    pytest.param(H + b"GlueCEStateStatus: Productiondn: y\n", 3, "Production", id="dn:-inside-the-value"),
    pytest.param(H + b"# the old dn: x\nGlueCEStateStatus: Production\n", 3, None, id="dn:-in-a-comment"),
    pytest.param(H + b"ownerdn: x\nGlueCEStateStatus: Production\n", 3, None, id="name-ending-in-dn"),
    pytest.param(H + b"GlueCEStateStatus: Production\n", None, "Production", id="no-cut"),
])
def test_an_entry_as_bdii_update_reads_it_once_it_has_unfolded_the_text(data, cut, state):
    # bdii-update removes every newline-space, then starts an entry at each 'dn:' it finds, mid-line
    # too: the text before it on that line stays with the entry before.
    entry = parse_static_ldif(data, "f.ldif").entries[0]
    seen = entry.as_bdii_reads_it()
    assert (entry.inner_dn_line(), seen.first("GlueCEStateStatus"), seen.has_class("GlueCE")) == (cut, state, True)


def test_the_last_entry_of_a_file_without_a_final_line_end_says_so():
    entries = parse_static_ldif(b"dn: o=a\nx: 1\n\ndn: o=b\nx: 2", "f.ldif").entries
    assert [e.ends_file_unterminated for e in entries] == [False, True]


def test_an_entry_that_a_dn_line_leaves_without_attributes_is_reported():
    entries, problems = parsed(b"dn: o=a\ndn: o=b\ny: 2\ndn: not a dn\nz: 3\n")
    assert entries == [("o=b", [("y", ["2"])])]
    assert problems == [
        "f.ldif:1: an entry without attributes; it is not published: 'o=a'",
        f"f.ldif:2: {INNER_DN}",
        f"f.ldif:4: {INNER_DN}",
        "f.ldif:4: not a valid DN; the entry is not published: 'not a dn'",
    ]


def test_a_record_not_starting_with_dn_is_reported_at_its_line():
    entries, problems = parsed(b"x: 1\n\ndn: o=b\nx: 2\n")
    assert entries == [("o=b", [("x", ["2"])])]
    assert len(problems) == 1 and problems[0].startswith("f.ldif:1: not LDIF")


def test_a_line_that_is_not_utf_8_costs_its_record():
    entries, problems = parsed(b"dn: o=a\nx: 1\n\ndn: o=b\nx: caf\xe9\n\ndn: o=c\nx: 3\n")
    assert [dn for dn, _ in entries] == ["o=a", "o=c"]
    assert problems == ["f.ldif:5: not LDIF (a line is not UTF-8); the entry there is skipped"]


def test_a_base64_value_that_is_not_utf_8_is_left_out_of_its_entry():
    data = b"dn: o=a\nx: 1\nx:: " + base64.b64encode(b"\xff\xfe") + b"\ny: 2\n"
    entries, problems = parsed(data)
    assert entries == [("o=a", [("x", ["1"]), ("y", ["2"])])]
    assert problems == ["f.ldif:3: x: not UTF-8; the value is left out"]


def test_url_values_are_never_fetched(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("do not read")
    entries, problems = parsed(f"dn: o=a\nx:< file://{secret}\ny: 1\n".encode())
    assert entries == [("o=a", [("y", ["1"])])]
    assert problems == ["f.ldif:2: x: a URL value, which gip does not fetch; the value is left out"]


def test_a_fifo_costs_its_entries_only_and_is_never_waited_for(tmp_path):
    fifo = tmp_path / "static.ldif"
    os.mkfifo(fifo)
    good = tmp_path / "good.ldif"
    good.write_bytes(b"dn: o=a\nx: 1\n")
    result = read_static_ldif([str(fifo), str(good)])
    assert [e.dn for e in result.entries] == ["o=a"]
    assert [str(p) for p in result.problems] == [
        f"{fifo}: cannot read: not a regular file (a FIFO, a socket or a device); the entries it holds are not published"
    ]


def test_an_unreadable_file_costs_its_entries_only(tmp_path):
    good = tmp_path / "good.ldif"
    good.write_bytes(b"dn: o=a\nx: 1\n")
    missing = tmp_path / "missing.ldif"
    result = read_static_ldif([str(missing), str(good)])
    assert [e.dn for e in result.entries] == ["o=a"]
    assert result.entries[0].path == str(good)
    assert [str(p) for p in result.problems] == [
        f"{missing}: cannot read: No such file or directory; the entries it holds are not published"
    ]


def test_the_example_site_static_files_parse_without_a_problem():
    etc = Path(__file__).resolve().parent.parent / "etc" / "static"
    result = read_static_ldif([str(etc / "static-file-CE.ldif"), str(etc / "static-file-Cluster.ldif")])
    assert result.problems == []
    assert sum(e.has_class("GlueCE") for e in result.entries) == 3
    assert sum(e.has_class("GlueSubCluster") for e in result.entries) == 2


# Round trip: whatever python-ldap's writer makes (base64, folding) reads back the same.
# Not 'dn': a 'dn:' line inside a record starts another entry (see below).
_names = st.text(string.ascii_letters, min_size=1, max_size=12).filter(lambda name: name != "dn")
# python-ldap's parser strips what str.lstrip() strips from a plain value, and its
# writer leaves \x0b, \x0c and \x1c-\x1f plain at the start: not a case to test here.
_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120).filter(lambda v: not v[:1].isspace())
_entries = st.dictionaries(_names, st.lists(_values, min_size=1, max_size=4), min_size=1, max_size=5)


def _as_bdii_reads(value: str) -> str:
    """A value the writer printed, as bdii-update reads it: base64 where the writer needs it, else stripped."""
    written_as_base64 = ldif.safe_string_re.search(value.encode("utf-8")) is not None
    return value if written_as_base64 else value.strip()


@settings(max_examples=200, deadline=None)
@given(st.lists(_entries, min_size=1, max_size=4))
def test_round_trip_through_python_ldap_writer(records):
    out = io.StringIO()
    writer = ldif.LDIFWriter(out, cols=40)
    expected = []
    for number, record in enumerate(records):
        unique = {}
        for name, values in record.items():
            unique.setdefault(name.lower(), (name, values))
        dn = f"cn=e{number},o=grid"
        writer.unparse(dn, {name: [v.encode("utf-8") for v in values] for name, values in unique.values()})
        # Values come back as bdii-update reads them: without whitespace around them, unless base64.
        expected.append((dn, {name: [_as_bdii_reads(v) for v in values] for name, values in unique.values()}))
    result = parse_static_ldif(out.getvalue().encode("utf-8"), "w.ldif")
    assert result.problems == []
    # The writer orders attributes its own way: compare them as a mapping.
    assert [(e.dn, dict(e.items())) for e in result.entries] == expected


def test_repr_names_the_entry_and_where_it_is():
    entry = StaticEntry("o=a", "f.ldif", 3)
    assert repr(entry) == "StaticEntry('o=a', 'f.ldif:3')"


# The plain reading of YAIM's files must give what python-ldap's parser gives.
_plain_rdn_values = st.text(string.ascii_letters + string.digits + "._:/@-", min_size=1, max_size=15)
_attribute_names = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=12).filter(
    lambda name: name[0].isalpha()
)
_plain_values = st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=40)


# objectClass lines in the spellings a lookup by substring could get wrong.
_class_lines = st.tuples(
    st.sampled_from(["objectClass", "OBJECTCLASS", "objectClasses", "GlueCE"]),
    st.sampled_from(["GlueCE", "gluece", "GlueCETop", "xGlueCE", " GlueCE", "\tGlueCE", "GlueCE ", "GlueSubCluster"]),
)


@st.composite
def plain_files(draw):
    records = []
    for _ in range(draw(st.integers(0, 4))):
        rdns = draw(st.lists(st.tuples(_attribute_names, _plain_rdn_values), min_size=1, max_size=3))
        lines = ["dn: " + ",".join(f"{name}={value}" for name, value in rdns)]
        for name, value in draw(st.lists(st.tuples(_attribute_names, _plain_values) | _class_lines, max_size=6)):
            separator = draw(st.sampled_from([": ", ":", ":  "]))
            lines.append(f"{name}{separator}{value}")
        records.append("\n".join(lines) + "\n")
    # "": no blank line between two records, so the second's dn line is inside the first.
    blank = draw(st.sampled_from(["", "\n", "\n\n", "\n\n\n"]))
    lead = draw(st.sampled_from(["", "\n", "\n\n"]))
    return (lead + blank.join(records)).encode("utf-8")


def entries_of(result):
    return [(e.dn, e.line, [(n, v, [e.line_of(n, i) for i in range(len(v))]) for n, v in e.items()],
             lookups_of(e)) for e in result.entries], [str(p) for p in result.problems]


def lookups_of(entry):
    """What the model asks of an entry, asked first (a plain entry answers from its text)."""
    names = [name for name, _ in entry.items()]
    asked = [spelling for name in names + ["objectClass", "absent"] for spelling in (name, name.swapcase())]
    fresh = copy.copy(entry)
    found = [(fresh.values(name), fresh.first(name), fresh.has(name)) for name in asked]
    classes = ["GlueCE", "gluece", "GlueSubCluster", "GlueCETop", "top"]
    return found + [copy.copy(entry).has_class(name) for name in classes] + [copy.copy(entry).inner_dn_line()]


@settings(max_examples=300, deadline=None)
@given(plain_files())
@example(b"dn: o=a\nobjectClass: GlueCETop\nobjectClass: GlueCE \nobjectClass:  GlueSubCluster\n")
@example(b"dn: o=a\nobjectClasses: GlueCE\nx: objectClass: GlueCE\n")
@example(b"dn: o=a\nversion: 1\nx: a<b c\ny: <z\n\ndn: o=b\nx: 1\n")
@example(b"dn: o=a\nx: 1\ndn: o=b\ny: 2\ndn:o=c\nDN: o=d\n")
@example(b"dn: o=a\nx: 1\nownerdn: cn=x\ny: a dn: b\n\ndn: o=b\nz: dn:\n")
@example(b"dn: o=a\nx: a::b\ny: [::1]:80\nz:  ::\n")
@example(b"dn: o=a\nw: a:<b\n")
def test_the_plain_reading_gives_what_the_parser_gives(data):
    from gip.staticldif import parse_plain_ldif, parse_with_python_ldap

    plain = parse_plain_ldif(data, "f.ldif")
    if data.startswith(b"dn: o=a\nx: a::b"):
        assert plain is not None  # '::' after a line's first colon is part of a plain value
    if plain is not None:
        assert entries_of(plain) == entries_of(parse_with_python_ldap(data, "f.ldif"))


@settings(max_examples=500, deadline=None)
@given(plain_files())
@example(b"dn: o=a\nx: 1\n\ndn: o=b\ny: 2 \n")
@example(b"dn: o=a\nx: 1\n\ndn: o=b\nDn: 2\n")
@example(b"dn: o=a\nx: 1\n\ndn: o=b\ny:  2\n")
@example(b"dn: o=a\nx: 1\n\ndn: o=b\ny: 2")
@example(b"dn: o=a\nx: 1\n\ndn: o=b\ny: 2 ")
@example(b"dn: o=a\nx: 1\n\ndn: o=b\n1y: 2\n")
@example(b"dn: o=a\nx: 1\n\ndn: o=b\ny: <2\n")
@example(b"dn: o=a\nx: 1\n\ndn: o=b\ny: 2\x7f\n")
def test_a_file_whose_entries_all_print_as_written_says_what_each_entry_says(data):
    from gip.staticldif import parse_plain_ldif

    plain = parse_plain_ldif(data, "f.ldif")
    if plain is not None:
        for entry in plain.entries:
            source = entry.plain_source()
            if source is None:  # read record by record (UTF-8): printed attribute by attribute
                assert entry.prints_as_written() is False
                continue
            text, _, start, end = source
            assert entry.prints_as_written() is is_plain_block(text[start:end])


def test_a_yaim_file_is_looked_at_once_for_what_prints_as_written():
    from gip.staticldif import parse_plain_ldif

    data = (Path(__file__).resolve().parent.parent / "etc" / "static" / "static-file-CE.ldif").read_bytes()
    entries = parse_plain_ldif(data, "f").entries
    source = entries[0]._text
    assert entries and source.prints_as_written()
    assert all(entry.prints_as_written() for entry in entries)
    # One line that needs a closer look: the file is looked at entry by entry.
    bad = parse_plain_ldif(data.replace(b"\nGlueCEName: ", b"\nGlueCEName:  ", 1), "f").entries
    assert not bad[0]._text.prints_as_written()
    assert [entry.prints_as_written() for entry in bad].count(False) == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_attribute_names, _plain_rdn_values), min_size=1, max_size=4))
def test_a_plain_dn_is_a_dn_for_python_ldap(rdns):
    from gip.staticldif import _PLAIN_DN

    dn = ",".join(f"{name}={value}" for name, value in rdns)
    assert _PLAIN_DN.fullmatch(dn) and ldif.is_dn(dn)


@pytest.mark.parametrize(
    "data",
    [
        b"dn: o=a\nx: long\n  folded\n",
        b"dn: o=a\nx:: eA==\n",
        b"dn:: bz1h\nx: 1\n",
        b"dn: o=a\nx: 1\ny::eA==\n",
        b"dn: o=a\nx: 1\n\ndn: o=b\ny::  eA==\n",
        b"dn: o=a\nc d:: eA==\n",
        b"dn: o=a\nc#d:: eA==\nx: 1\n",
        b"dn: o=a\nx: 1\n\ndn: o=b\ny:< file:///x\n",
        b"# comment\ndn: o=a\n",
        b"version: 1\ndn: o=a\n",
        b"dn: o=a\r\nx: 1\r\n",
        b"dn: o=a\nx:< file:///etc/passwd\n",
        b"dn: cn=a\\,b,o=a\n",
        b"dn: cn=a+sn=b,o=a\n",
        b"DN: o=a\n",
        b"dn: o=a\nno colon\n",
        b"dn: o=caf\xe9\n",
        b"x: 1\n",
    ],
)
def test_anything_else_goes_to_the_parser(data):
    from gip.staticldif import parse_plain_ldif

    assert parse_plain_ldif(data, "f.ldif") is None


def test_a_blank_or_hash_inside_a_name_keeps_the_plain_reading_only_a_line_start_leaves_it():
    from gip.staticldif import parse_plain_ldif

    assert parse_plain_ldif(b"dn: o=a\na#b: x\nc d: y\n\ndn: o=b\nx: 1 #2\n", "f.ldif") is not None
    for data in (b"dn: o=a\na#b: x\n#c\nx: 1\n", b"dn: o=a\nc d: y\nx: 1\n y\n"):
        assert parse_plain_ldif(data, "f.ldif") is None


def test_yaim_files_take_the_plain_reading():
    from gip.staticldif import parse_plain_ldif

    etc = Path(__file__).resolve().parent.parent / "etc" / "static"
    for name in ("static-file-CE.ldif", "static-file-Cluster.ldif"):
        assert parse_plain_ldif((etc / name).read_bytes(), name) is not None
