from __future__ import annotations

from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip.report import Problem
from gip.tagfile import (
    TagFile, _no_case_twins, _read_lines, _read_plain, parse_tags, prefix_free, read_tag_file, render_tag_file,
)
from gip.tags import TagRule


def tags_of(data: bytes, vo: str = "atlas") -> list:
    return parse_tags(data, vo, "atlas.ldif").tags


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", []),
        (b"VO-atlas-a\n", ["VO-atlas-a"]),
        (b"VO-atlas-a VO-atlas-b\tVO-atlas-c\n", ["VO-atlas-a", "VO-atlas-b", "VO-atlas-c"]),
        (b"VO-atlas-a,VO-atlas-b, VO-atlas-c ,,VO-atlas-d", ["VO-atlas-a", "VO-atlas-b", "VO-atlas-c", "VO-atlas-d"]),
        (b"VO-atlas-a\r\nVO-atlas-b\r\n", ["VO-atlas-a", "VO-atlas-b"]),
        (b"\xef\xbb\xbfVO-atlas-a\n", ["VO-atlas-a"]),
        (b"# installed 2011-04-01\n\n   \nVO-atlas-a\n", ["VO-atlas-a"]),
        (b"  # indented comment\nVO-atlas-a", ["VO-atlas-a"]),
        (b"VO-atlas-a # trailing words", ["VO-atlas-a"]),
        (b"GlueHostApplicationSoftwareRunTimeEnvironment: VO-atlas-a\n", ["VO-atlas-a"]),
        (b"gluehostapplicationsoftwareruntimeenvironment:VO-atlas-a\n", ["VO-atlas-a"]),
        (b"  GLUEHOSTAPPLICATIONSOFTWARERUNTIMEENVIRONMENT: VO-atlas-a VO-atlas-b", ["VO-atlas-a", "VO-atlas-b"]),
        # Not LDIF: a leading space does not continue the previous line.
        (b"VO-atlas-a\n VO-atlas-b\n", ["VO-atlas-a", "VO-atlas-b"]),
        (b"VO-atlas-a\nVO-atlas-a\nVO-atlas-b", ["VO-atlas-a", "VO-atlas-b"]),
        (b"VO-atlas-a\x0bVO-atlas-b\x0cVO-atlas-c", ["VO-atlas-a", "VO-atlas-b", "VO-atlas-c"]),
    ],
)
def test_formats_found_in_the_wild(data, expected):
    result = parse_tags(data, "atlas", "atlas.ldif")
    assert result.tags == expected
    assert result.problems == []


@pytest.mark.parametrize(
    "data, tags, problems",
    [
        (
            b"VO-atlas-a\nVO-cms-b VO-atlas-c\n",
            ["VO-atlas-a", "VO-atlas-c"],
            ["f:2: names VO 'cms', not 'atlas': 'VO-cms-b'"],
        ),
        (
            b"VO-atlas-caf\xc3\xa9 VO-atlas-ok\n",
            ["VO-atlas-ok"],
            ["f:1: not ASCII: 'VO-atlas-caf\\xe9'"],
        ),
        (
            b"VO-atlas-\xff\xfe VO-atlas-ok\n",
            ["VO-atlas-ok"],
            ["f:1: not ASCII: 'VO-atlas-\\\\xff\\\\xfe'"],
        ),
        (
            b"VO-atlas-x\nVO-atlas-X\n",
            ["VO-atlas-x"],
            ["f:2: differs only in case from 'VO-atlas-x' (line 1), which is kept: 'VO-atlas-X'"],
        ),
        (
            b"dn: GlueSubClusterUniqueID=x,o=grid\nVO-atlas-a",
            ["VO-atlas-a"],
            [
                "f:1: does not start with 'VO-atlas-': 'dn:'",
                "f:1: does not start with 'VO-atlas-': 'GlueSubClusterUniqueID=x'",
                "f:1: does not start with 'VO-atlas-': 'o=grid'",
            ],
        ),
        (
            b"VO-atlas-a\x00b VO-atlas-c",
            ["VO-atlas-c"],
            ["f:1: holds '\\x00': only ASCII letters, digits and ._- are allowed: 'VO-atlas-a\\x00b'"],
        ),
    ],
)
def test_bad_tokens_cost_only_themselves(data, tags, problems):
    result = parse_tags(data, "atlas", "f")
    assert result.tags == tags
    assert [str(p) for p in result.problems] == problems


def test_problem_lines_count_crlf_and_comment_lines():
    data = b"# head\r\nVO-atlas-a\r\n\r\nVO-atlas-b bad\r\n"
    [problem] = parse_tags(data, "atlas", "f").problems
    assert (problem.line, problem.subject) == (4, "bad")


def test_line_of_finds_a_tag_ignoring_case():
    result = parse_tags(b"# x\nVO-atlas-a\n\nVO-atlas-b VO-atlas-c\n", "atlas", "f")
    assert result.line_of("vo-atlas-c") == 4
    assert result.line_of("VO-atlas-zzz") is None


def test_read_tag_file_names_the_path(tmp_path):
    path = tmp_path / "atlas.ldif"
    path.write_bytes(b"VO-atlas-a bad\n")
    result = read_tag_file(path, "atlas")
    assert result.tags == ["VO-atlas-a"]
    assert result.problems[0].path == str(path)
    with pytest.raises(FileNotFoundError):
        read_tag_file(tmp_path / "missing.ldif", "atlas")


def test_render_is_one_tag_per_line_and_reads_back():
    tags = ["VO-atlas-a", "VO-atlas-b"]
    assert render_tag_file(tags) == b"VO-atlas-a\nVO-atlas-b\n"
    assert render_tag_file([]) == b""
    assert tags_of(render_tag_file(tags)) == tags


@given(st.binary(max_size=400))
def test_any_bytes_give_only_valid_tags_and_located_problems(data):
    result = parse_tags(data, "atlas", "f")
    rule = TagRule("atlas")
    assert all(rule.is_valid(tag) for tag in result.tags)
    assert len({tag.lower() for tag in result.tags}) == len(result.tags)
    lines = data.count(b"\n") + 1
    assert all(1 <= p.line <= lines for p in result.problems)


tag_like = st.from_regex(r"VO-atlas-[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True)
separator = st.sampled_from([" ", "\n", ",", "\r\n", "\t", " , "])


@given(st.lists(st.tuples(st.one_of(tag_like, st.sampled_from(["bad", "VO-cms-x", "vo-atlas-y"])), separator)))
def test_whole_file_and_line_by_line_reading_agree(pieces):
    data = "".join(token + sep for token, sep in pieces).encode()
    plain = parse_tags(data, "atlas", "f")
    # A comment line sends the same content through the line-by-line reader.
    by_line = parse_tags(data + b"\n# comment\n", "atlas", "f")
    assert plain.tags == by_line.tags
    assert [str(p) for p in plain.problems] == [str(p) for p in by_line.problems]


# -- the whole-file reading against the line-by-line reference ---------------------------------------
#
# parse_tags reads a plain file (tag characters, whitespace, commas) with whole-file operations and
# sends anything else to _read_lines. Whatever the route, the result must be _read_lines's.


def reference(data: bytes, vo: str = "atlas") -> Tuple[List[str], List[Problem]]:
    """What the line-by-line reading alone finds in ``data``."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return _read_lines(data, TagRule(vo), "f")


def assert_reads_like_reference(data: bytes, vo: str = "atlas") -> TagFile:
    result = parse_tags(data, vo, "f")
    tags, problems = reference(data, vo)
    assert result.tags == tags
    assert result.problems == problems
    return result


# Valid tags in a few families, as real files hold them; tails from a small alphabet so that
# duplicates and spellings differing only in case come up often.
family = st.sampled_from(["", "CMSSW_", "production-", "AtlasProduction-", "sw-", "Z_", "a", "cloud-UK"])
valid_tag = st.builds(
    lambda family, first, tail: f"VO-atlas-{family}{first}{tail}",
    family,
    st.sampled_from("0aAzZ9"),
    st.text("aAbB1_.-", max_size=4),
)
odd_token = st.sampled_from(
    [
        "VO-atlas-", "VO-atlas-.x", "VO-atlas-_x", "VO-atlas--x", "VO-atlas-.", "VO-cms-x", "VO-atlasx-y",
        "vo-atlas-x", "VO-ATLAS-x", "VO-atlas-" + "x" * 246, "VO-atlas-" + "y" * 247, "x", "VO-atlas-a:b",
        "#", "# a comment VO-atlas-c", "VO-atlas-caf\u00e9", "GlueHostApplicationSoftwareRunTimeEnvironment:",
        "VO-atlas-a\x00b", "VO-atlas-a\x1cb",
    ]
)
separator = st.sampled_from(["\n", "\n", "\n", " ", ",", "\r\n", "\t", " , ", "\n\n", "\x0b", "\x0c"])


def capitals_of(tags: List[str]) -> bytes:
    return "".join(filter(str.isupper, "".join(tags))).encode("ascii")


def file_of(tokens: List[str], separators: List[str], sort: bool, bom: bool, lead: str) -> bytes:
    if sort:
        tokens = sorted(tokens)
    seps = separators or ["\n"]
    text = lead + "".join(token + seps[i % len(seps)] for i, token in enumerate(tokens))
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


@settings(max_examples=400)
@given(
    st.lists(st.one_of(valid_tag, valid_tag, odd_token), max_size=30),
    st.lists(separator, max_size=3),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["", "", "\n", " ", "# head\n"]),
)
def test_any_mix_reads_like_the_line_by_line_reference(tokens, separators, sort, bom, lead):
    assert_reads_like_reference(file_of(tokens, separators, sort, bom, lead))


@settings(max_examples=400)
@given(
    st.lists(valid_tag, max_size=40),
    st.sampled_from([["\n"], ["\n"], [" "], [","], ["\r\n"], ["\n", "\n\n"], [" , "]]),
    st.booleans(),
    st.sampled_from(["", "\n"]),
)
def test_valid_files_take_the_whole_file_reading(tokens, separators, sort, lead):
    """All valid tags: read without the line-by-line reading unless spellings differ only in case."""
    data = file_of(tokens, separators, sort, False, lead)
    assert_reads_like_reference(data)
    twins = len({t.lower() for t in tokens}) != len(set(tokens))
    assert (_read_plain(data, TagRule("atlas")) is None) == twins


def test_blank_lines_and_missing_last_lf():
    for data in [b"", b"\n", b"\n\n\n", b"\nVO-atlas-a\n", b"VO-atlas-a", b"VO-atlas-a\n\nVO-atlas-b\n",
                 b"VO-atlas-b\n\nVO-atlas-a", b"\n\nVO-atlas-a\nVO-atlas-b\n\n"]:
        assert_reads_like_reference(data)


def test_a_sorted_file_of_tag_families_is_proven_free_of_case_clashes():
    """The common file: capitals only in the start of each family, so no token is lowered."""
    tags = sorted(
        [f"VO-cms-CMSSW_{i}_{j}_patch{k}" for i in range(9) for j in range(5) for k in range(3)]
        + [f"VO-cms-slc6_amd64_gcc{i}" for i in range(400, 500)]
        + [f"VO-cms-CRAB-{i}" for i in range(20)]
        + ["VO-cms-production-1.2.3", "VO-cms-X", "VO-cms-0"]
    )
    data = render_tag_file(tags)
    capitals = capitals_of(tags)
    assert _no_case_twins(tags, capitals, len("VO-cms-"))
    assert _read_plain(data, TagRule("cms")) == tags


def test_case_clashes_across_and_within_families_are_not_missed():
    for tags in [
        ["VO-a-Ab", "VO-a-Ac", "VO-a-ab"],  # twins apart, a family between them
        ["VO-a-CMSSW_1", "VO-a-CMSSW_1a", "VO-a-cmssw_1"],
        ["VO-a-X1", "VO-a-X1Y", "VO-a-X1y"],  # a capital after the start of a family
        ["VO-a-B", "VO-a-_", "VO-a-b"],
    ]:
        assert tags == sorted(tags)
        capitals = capitals_of(tags)
        assert not _no_case_twins(tags, capitals, len("VO-a-"))
        result = assert_reads_like_reference(render_tag_file(tags), "a")
        assert any("differs only in case" in p.reason for p in result.problems) == (
            len({t.lower() for t in tags}) < len(tags)
        )


def test_more_families_than_the_block_limit_still_read_right():
    tags = sorted(f"VO-a-{chr(65 + i % 26)}{i:03d}x" for i in range(200))
    capitals = capitals_of(tags)
    assert not _no_case_twins(tags, capitals, len("VO-a-"))  # gives up: too many blocks
    assert parse_tags(render_tag_file(tags), "a", "f").tags == tags


# Tails of tags in families that differ in case here and there.
_family_tails = st.lists(
    st.builds(
        lambda family, tail: family + tail,
        st.sampled_from(["CMSSW_", "cmssw_", "Atlas", "atlas", "X", "x", "p", "P", "a-B", "a-b", "1"]),
        st.text("aAbB1_.Z", max_size=4),
    ),
    max_size=30,
)


@settings(max_examples=500)
@given(_family_tails)
def test_no_case_twins_is_never_wrong(tails):
    tags = sorted({"VO-x-" + tail for tail in tails})
    if _no_case_twins(tags, capitals_of(tags), len("VO-x-")):
        assert len({t.lower() for t in tags}) == len(tags)


@settings(max_examples=500)
@given(_family_tails, st.booleans())
def test_stems_start_every_tag_ignoring_case(tails, in_order):
    tags = sorted({"VO-x-" + tail for tail in tails}) if in_order else ["VO-x-" + tail for tail in tails]
    read = parse_tags(render_tag_file(tags), "x", "f")
    if read.stems is not None:
        assert all(any(tag.lower().startswith(stem) for stem in read.stems) for tag in read.tags)
        assert all(stem == stem.lower() for stem in read.stems)


def test_a_sorted_file_of_families_has_the_stems_its_families_share():
    tags = sorted([f"VO-cms-CMSSW_{i}_0" for i in range(10, 30)] + [f"VO-cms-sw-{i:04d}" for i in range(50)])
    assert parse_tags(render_tag_file(tags), "cms", "f").stems == ("vo-cms-cmssw_", "vo-cms-sw-00")
    assert parse_tags(b"", "cms", "f").stems == ()
    # Read line by line (a comment), or unsorted: not known.
    assert parse_tags(b"# x\nVO-cms-a\n", "cms", "f").stems is None
    assert parse_tags(b"VO-cms-b\nVO-cms-a\n", "cms", "f").stems is None


def test_prefix_free():
    assert prefix_free(["vo-a-x", "vo-a-y", "vo-b"])
    assert prefix_free([])
    assert not prefix_free(["vo-a-x1", "vo-a-y", "vo-a-x"])
    assert not prefix_free(["vo-a", "vo-a"])
