from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gip.tags import (
    MAX_TAG_LENGTH,
    TagRule,
    TagSet,
    subcluster_id_problem,
    tag_problem,
    vo_name_problem,
)


@pytest.mark.parametrize(
    "vo, tag",
    [
        ("atlas", "VO-atlas-production-17.2.1"),
        ("cms", "VO-cms-CMSSW_3_8_4"),
        ("atlas", "VO-atlas-production-15.6.3-i686-slc5-gcc43-opt"),
        ("biomed", "VO-biomed-CVMFS"),
        ("lhcb", "VO-lhcb-pilot"),
        ("snoplus.snolab.ca", "VO-snoplus.snolab.ca-rat-4.5"),
        ("t2k.org", "VO-t2k.org-nd280_v11r31"),
        ("atlas", "VO-atlas-0"),
        ("atlas", "VO-atlas-" + "x" * (MAX_TAG_LENGTH - len("VO-atlas-"))),
    ],
)
def test_valid_tags(vo, tag):
    assert tag_problem(vo, tag) is None
    assert TagRule(vo).is_valid(tag)
    assert TagRule(vo).all_valid([tag, tag])


@pytest.mark.parametrize(
    "vo, tag, reason",
    [
        ("atlas", "VO-cms-CMSSW_3_8_4", "names VO 'cms', not 'atlas'"),
        ("atlas", "vo-atlas-x", "starts with 'vo-atlas-', not 'VO-atlas-': the case differs"),
        ("atlas", "VO-ATLAS-x", "starts with 'VO-ATLAS-', not 'VO-atlas-': the case differs"),
        ("a-b-c", "VO-a-b-C-5", "starts with 'VO-a-b-C-', not 'VO-a-b-c-': the case differs"),
        ("atlas", "atlas-production", "does not start with 'VO-atlas-'"),
        ("atlas", "VO-atlas-", "nothing follows 'VO-atlas-'"),
        ("atlas", "VO-atlas-.hidden", "'VO-atlas-' must be followed by a letter or digit"),
        ("atlas", "VO-atlas--x", "'VO-atlas-' must be followed by a letter or digit"),
        ("atlas", "VO-atlas-a b", "holds ' ': only ASCII letters, digits and ._- are allowed"),
        ("atlas", "VO-atlas-a,b", "holds ',': only ASCII letters, digits and ._- are allowed"),
        ("atlas", "VO-atlas-x\ndn: o=grid", "holds '\\n': only ASCII letters, digits and ._- are allowed"),
        ("atlas", "VO-atlas-dn:x", "holds ':': only ASCII letters, digits and ._- are allowed"),
        ("atlas", "VO-atlas-caf\u00e9", "not ASCII"),
        ("atlas", "VO-atlas-\x00", "'VO-atlas-' must be followed by a letter or digit"),
        ("atlas", "VO-atlas-" + "x" * 247, "longer than 255 characters (256)"),
        ("atlas", "", "does not start with 'VO-atlas-'"),
    ],
)
def test_invalid_tags_say_why(vo, tag, reason):
    assert tag_problem(vo, tag) == reason
    assert not TagRule(vo).is_valid(tag)
    assert not TagRule(vo).all_valid(["VO-atlas-ok", tag])


@given(st.text(max_size=300))
def test_a_valid_tag_is_always_safe_ldif(tag):
    if TagRule("atlas").is_valid(tag):
        assert tag.isascii() and tag.isprintable()
        assert ":" not in tag and " " not in tag and len(tag) <= MAX_TAG_LENGTH
    else:
        assert TagRule("atlas").problem(tag)


@pytest.mark.parametrize("vo", ["atlas", "t2k.org", "snoplus.snolab.ca", "vo-1", "0vo", "v" * 200])
def test_valid_vo_names(vo):
    assert vo_name_problem(vo) is None


@pytest.mark.parametrize("vo", ["", "..", ".", "../etc", "a/b", "Atlas", "-atlas", ".atlas", "at las", "x" * 201])
def test_invalid_vo_names(vo):
    assert vo_name_problem(vo)


def test_a_vo_name_leaves_room_for_every_file_kept_beside_its_tag_file(tmp_path):
    from gip.store import locate

    paths = locate(tmp_path, "v" * 200)
    longest = max(len(name) for name in (paths.lock.name, paths.history.name, paths.temp_prefix + "0" * 16,
                                         paths.migrated.name + ".99"))
    assert longest <= 255


@pytest.mark.parametrize("sc", ["ce01.example.org", "SC_x86-64", "0"])
def test_valid_subcluster_ids(sc):
    assert subcluster_id_problem(sc) is None


@pytest.mark.parametrize("sc", ["", "..", "a/b", "-x", ".x", "a b", "caf\u00e9"])
def test_invalid_subcluster_ids(sc):
    assert subcluster_id_problem(sc)


def test_tagset_keeps_first_spelling_and_order():
    tags = TagSet(["VO-a-x", "VO-a-y"])
    assert tags.add("VO-a-X") == "VO-a-x"
    assert tags.add("VO-a-x") is None
    assert tags.add("VO-a-z") is None
    assert tags.as_list() == ["VO-a-x", "VO-a-y", "VO-a-z"]
    assert "vo-a-Y" in tags and len(tags) == 3
    assert tags.find("VO-A-Z") == "VO-a-z"


def test_tagset_update_reports_case_clashes_and_discard_ignores_case():
    tags = TagSet(["VO-a-x"])
    assert tags.update(["VO-a-X", "VO-a-y", "VO-a-Y"]) == [("VO-a-X", "VO-a-x"), ("VO-a-Y", "VO-a-y")]
    assert tags.discard("vo-a-x") == "VO-a-x"
    assert tags.discard("VO-a-x") is None
    assert list(tags) == ["VO-a-y"]


# -- TagRule.all_valid_plain: the whole-list check for tokens of tag characters -----------------------

TAG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-"


@pytest.mark.parametrize(
    "vo, tags, valid",
    [
        ("atlas", [], True),
        ("atlas", ["VO-atlas-0"], True),
        ("atlas", ["VO-atlas-A", "VO-atlas-Z", "VO-atlas-a", "VO-atlas-z"], True),
        ("atlas", ["VO-atlas-"], False),
        ("atlas", ["VO-atlas--x", "VO-atlas-a"], False),
        ("atlas", ["VO-atlas-.x", "VO-atlas-a"], False),
        ("atlas", ["VO-atlas-A", "VO-atlas-_x", "VO-atlas-a"], False),
        ("atlas", ["VO-atlas-Z_", "VO-atlas-_", "VO-atlas-a"], False),
        ("atlas", ["VO-atlas-a", "VO-atlasx-b"], False),
        ("atlas", ["VO-atlas-a", "VO-atlas.-b"], False),
        ("atlas", ["VO-atla-a", "VO-atlas-a"], False),
        ("atlas", ["VO-atlas-a", "vo-atlas-b"], False),
        ("atlas", ["VO-atlas-a", "VO-cms-b"], False),
        ("atlas", ["VO-atlas-" + "x" * (MAX_TAG_LENGTH - 9)], True),
        ("atlas", ["VO-atlas-a", "VO-atlas-" + "x" * (MAX_TAG_LENGTH - 8)], False),
        ("t2k.org", ["VO-t2k.org-nd280", "VO-t2k.org-v1"], True),
        ("t2k.org", ["VO-t2k.org-_x"], False),
        ("t2k.org", ["VO-t2k.orga-x"], False),
    ],
)
def test_all_valid_plain_examples(vo, tags, valid):
    assert tags == sorted(tags)
    rule = TagRule(vo)
    assert rule.all_valid(tags) is valid
    assert rule.all_valid_plain(tags, ascending=True) is valid
    assert rule.all_valid_plain(tags[::-1]) is valid


# Tokens of tag characters around the borders that all_valid_plain relies on: the prefix followed
# by nothing, '-', '.', '_', a capital or a small letter; near misses of the prefix; other VOs; and
# lengths around the limit.
border_heads = st.sampled_from(
    ["VO-atlas-", "VO-atlas", "VO-atla", "VO-atlas.", "VO-atlas_", "VO-atlasx-", "VO-atlas--", "VO-atlas-_",
     "VO-atlas-.", "VO-atlas-Z", "VO-atlas-z", "VO-atlas-0", "VO-cms-", "vo-atlas-", "VO-ATLAS-", "VO-", ""]
)
tag_char_tokens = st.builds(
    lambda head, tail: head + tail,
    border_heads,
    st.one_of(st.text(TAG_ALPHABET, max_size=6), st.text("x_", min_size=240, max_size=250)),
)


@given(st.lists(tag_char_tokens, max_size=12))
def test_all_valid_plain_agrees_with_all_valid(tags):
    rule = TagRule("atlas")
    assert rule.all_valid_plain(tags) == rule.all_valid(tags)
    assert rule.all_valid_plain(sorted(tags), ascending=True) == rule.all_valid(tags)
