from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gip.tagfile import parse_tags, read_tag_file, render_tag_file
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
