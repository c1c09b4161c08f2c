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
from gip.model import BASE_TEMPLATES, TagList, build_site
from gip.publish import (
    _SAFE_VALUE,
    JoinedEntries,
    Publisher,
    builtin_template_dir,
    joined_entries,
    parts_bytes,
    prefixed,
    safe_values,
)
from gip.siteconfig import load_site_config
from gip.tags import TagRule, ValidTags

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


_token = st.text(st.sampled_from(list("aZ09._-") + [" ", "\n", "\u00e9"]), max_size=6).map("VO-atlas-".__add__)
_tokens = st.lists(_token | st.text(_characters, max_size=6), max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), _tokens), max_size=4))
def test_safe_values_of_a_tag_list_are_those_of_its_values(parts):
    """Parts made ValidTags by the tag rule are taken as they are; the others are checked."""
    rule = TagRule("atlas")
    tag_list = TagList([ValidTags(filter(rule.is_valid, tokens)) if valid else tokens for valid, tokens in parts])
    values = list(tag_list)
    expected = [value.encode("ascii") for value in values] if all(_SAFE_VALUE.fullmatch(v) for v in values) else None
    assert safe_values(tag_list) == expected


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


@settings(max_examples=200, deadline=None)
@given(_pieces, _tag_values)
def test_entries_made_as_they_are_printed_are_the_joined_entries(pieces, values):
    data = [value.encode("ascii") for value in values]
    made = JoinedEntries(pieces, data)
    assert list(made) == joined_entries(pieces, data)
    assert list(made) == list(made)  # each printing makes them anew
    assert bool(made) == any(joined_entries(pieces, data))
    assert b"".join(parts_bytes([b"head\n", made, b"tail\n"])) == b"head\n" + b"".join(list(made)) + b"tail\n"


def test_entries_made_as_they_are_printed_are_made_a_chunk_at_a_time():
    values: List[bytes] = [f"VO-atlas-{n}".encode("ascii") for n in range(100_000)]
    chunks = iter(JoinedEntries(["dn: x=", ",o=y\nname: ", "\n\n"], values))
    first = next(chunks)
    assert first.startswith(b"dn: x=VO-atlas-0,o=y\nname: VO-atlas-0\n\n")
    assert len(first) <= 2 * publish._CHUNK_BYTES
    assert len(first) + sum(map(len, chunks)) == sum(2 * len(v) + 19 for v in values)


# -- lines(): a list checked at once prints what a line per value prints -------------------------

_line_values = st.lists(st.lists(st.sampled_from(list("aZ0 :<#=,dn") + ["dn:", "\n", "\u00e9", "\x00"]), max_size=5)
                        .map("".join), max_size=6)


@settings(max_examples=500, deadline=None)
@given(_line_values, st.sampled_from(["GlueForeignKey", "GlueCEUniqueID", "bad attr", "xdn"]))
def test_lines_of_a_list_are_the_lines_of_each_value(values, attribute):
    at_once, one_by_one = Publisher([builtin_template_dir()]), Publisher([builtin_template_dir()])
    text = at_once.lines(values, attribute, "origin")
    assert text == "".join(one_by_one.line(value, attribute, "origin") for value in values)
    assert at_once.problems == one_by_one.problems


def test_prefixed_puts_the_prefix_before_each_value_as_a_string():
    assert prefixed(["a", 1, None], "K=") == ["K=a", "K=1", "K=None"]


def looped_cluster(builtin: str) -> str:
    """gip's GlueCluster template with its CEs' keys printed by a loop of line(), one per CE."""
    looped = builtin.replace('{% set ce_ids = site.ces | map(attribute="unique_id") | list %}\n', "")
    looped = looped.replace("{{ ce_ids | lines(", '{{ site.ces | map(attribute="unique_id") | list | lines(')
    loop = ('{% for ce in site.ces %}\n'
            '{{ ("GlueCEUniqueID=" ~ ce.unique_id) | line("GlueForeignKey") -}}\n'
            '{% endfor %}\n')
    looped = looped.replace('{{ ce_ids | prefixed("GlueCEUniqueID=") | lines("GlueForeignKey") -}}\n', loop)
    assert "ce_ids" not in looped and "{% for ce in site.ces %}" in looped
    return looped


@pytest.mark.parametrize("queues", ["a1", "a1 a2 b.1 c_1 long-2", " ".join(f"q{n}" for n in range(300))])
@pytest.mark.parametrize("host", ["ce.example.org", "#ce x:1", "<ce"])
def test_the_cluster_foreign_keys_are_what_a_line_per_ce_prints(tmp_path, queues, host):
    """gip's GlueCluster prints its CEs' keys with one lines() call; a loop of line() prints the same."""
    site_info = tmp_path / "site-info.def"
    site_info.write_text(f'SITE_NAME=S\nCE_HOST="{host}"\nCE_BATCH_SYS=slurm\nVOS=atlas\nQUEUES="{queues}"\n'
                         + "".join(f'{q.upper().replace(".", "_").replace("-", "_")}_GROUP_ENABLE=atlas\n'
                                   for q in queues.split()))
    config = load_site_config(site_info)
    own = tmp_path / "templates"
    own.mkdir()
    (own / "glue1-cluster.ldif.j2").write_text(looped_cluster((builtin_template_dir() / "glue1-cluster.ldif.j2")
                                                              .read_text()))
    outputs = []
    for dirs in ([builtin_template_dir()], [own, builtin_template_dir()]):
        site = build_site(config, [], [], BASE_TEMPLATES, "1")
        publisher = Publisher(dirs)
        text = publisher.render("glue1-cluster.ldif.j2", "site-info.def", site=site, cfg=site.config.values)
        outputs.append((text, [str(problem) for problem in publisher.problems]))
    assert outputs[0] == outputs[1]
    assert outputs[0][0].count("GlueForeignKey: GlueCEUniqueID=") == len(queues.split())


def test_lines_of_a_list_that_is_not_of_strings_goes_as_it_did():
    publisher = Publisher([builtin_template_dir()])
    assert publisher.lines([1, 2], "bad attr", "origin") == ""
    assert [problem.subject for problem in publisher.problems] == ["bad attr", "bad attr"]
