from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip.errors import ConfigError
from gip.model import BASE_TEMPLATES, TagInput, build_site, voview_id
from gip.siteconfig import POLICY_ALWAYS, QueueConfig, SiteConfig
from gip.staticldif import parse_static_ldif
from gip.tagfile import TagFile, parse_tags
from gip.tagtree import TagSource

RTE = "GlueHostApplicationSoftwareRunTimeEnvironment"
SC_DN = "GlueSubClusterUniqueID={id},GlueClusterUniqueID=ce,mds-vo-name=resource,o=grid"
CE_DN = "GlueCEUniqueID=ce:8443/cream-pbs-{queue},mds-vo-name=resource,o=grid"


def subcluster(unique_id: str = "sc1", held: Sequence[str] = ()) -> str:
    lines = [f"dn: {SC_DN.format(id=unique_id)}", "objectClass: GlueClusterTop", "objectClass: GlueSubCluster",
             f"GlueSubClusterUniqueID: {unique_id}"]
    lines += [f"{RTE}: {value}" for value in held]
    return "\n".join(lines) + "\n"


def ce(queue: str, state: Optional[str] = "Production", name: bool = True) -> str:
    lines = [f"dn: {CE_DN.format(queue=queue)}", "objectClass: GlueCETop", "objectClass: GlueCE",
             f"GlueCEUniqueID: ce:8443/cream-pbs-{queue}"]
    if name:
        lines.append(f"GlueCEName: {queue}")
    if state is not None:
        lines.append(f"GlueCEStateStatus: {state}")
    return "\n".join(lines) + "\n"


def entries(*records: str):
    result = parse_static_ldif("\n".join(records).encode("utf-8"), "static.ldif")
    assert result.problems == []
    return result.entries


def tags(vo: str, text: str, subcluster: Optional[str] = None) -> TagInput:
    path = f"info/{subcluster + '/' if subcluster else ''}{vo}/{vo}.ldif"
    return TagInput(TagSource(vo, subcluster, Path(path)), parse_tags(text.encode("utf-8"), vo, path))


def config(**values: str) -> SiteConfig:
    queues = tuple(QueueConfig(q, tuple(values.get(f"{q.upper()}_GROUP_ENABLE", "").split()))
                   for q in values.get("QUEUES", "").split())
    return SiteConfig(
        path="site-info.def", values=values, ce_host=values.get("CE_HOST"), queues=queues,
        batch_system=values.get("CE_BATCH_SYS"), runtime_env=tuple(values.get("CE_RUNTIMEENV", "").split()),
        ce_state=values.get("CE_STATE"), state_policy=values.get("CE_STATE_POLICY", "production-only"),
    )


def published(site) -> Dict[str, List[str]]:
    return {sc.unique_id: sc.tags for sc in site.subclusters}


def reasons(site) -> List[str]:
    return [str(p) for p in site.problems]


# -- tags: order, de-duplication, per-SubCluster files -----------------------------------


@pytest.mark.parametrize(
    "held, inputs, expected",
    [
        pytest.param([], [tags("cms", "VO-cms-b VO-cms-a"), tags("atlas", "VO-atlas-z\nVO-atlas-y")],
                     ["VO-atlas-y", "VO-atlas-z", "VO-cms-a", "VO-cms-b"], id="VOs-by-name-tags-sorted"),
        pytest.param(["GLITE-3_2_0", "R-GMA"], [tags("atlas", "VO-atlas-x")],
                     ["GLITE-3_2_0", "R-GMA", "VO-atlas-x"], id="static-values-first-as-they-are"),
        pytest.param(["VO-atlas-x"], [tags("atlas", "VO-atlas-x VO-atlas-w")],
                     ["VO-atlas-x", "VO-atlas-w"], id="a-static-value-is-not-repeated"),
        pytest.param(["VO-atlas-X"], [tags("atlas", "VO-atlas-x VO-atlas-w")],
                     ["VO-atlas-X", "VO-atlas-w"], id="the-static-spelling-wins"),
        pytest.param([], [tags("atlas", "VO-atlas-b"), tags("atlas", "VO-atlas-a VO-atlas-B", "sc1")],
                     ["VO-atlas-b", "VO-atlas-a"], id="own-after-global-global-spelling-wins"),
        pytest.param([], [tags("a", "VO-a-b-x"), tags("a-b", "VO-a-b-x VO-a-b-y")],
                     ["VO-a-b-x", "VO-a-b-y"], id="two-VOs-one-tag"),
        # VO names nest across a global and an own file: the own tag of the other VO is the same tag.
        pytest.param([], [tags("a-b", "VO-a-b-1"), tags("a", "VO-a-B-1 VO-a-2", "sc1")],
                     ["VO-a-b-1", "VO-a-2"], id="nested-VOs-global-then-own"),
        pytest.param([], [tags("a", "VO-a-b-1"), tags("a-b", "VO-a-b-1", "sc1")],
                     ["VO-a-b-1"], id="nested-VOs-own-same-spelling"),
        pytest.param([], [], [], id="nothing"),
        # bdii-update strips static values: the stripped value is the one held
        pytest.param(["VO-atlas-X\t", "GLITE-3_2_0 "], [tags("atlas", "VO-atlas-x VO-atlas-w")],
                     ["VO-atlas-X", "GLITE-3_2_0", "VO-atlas-w"], id="static-values-stripped"),
    ],
)
def test_tag_order_and_dedupe(held, inputs, expected):
    site = build_site(config(), entries(subcluster("sc1", held)), inputs)
    assert published(site) == {"sc1": expected}
    assert site.subclusters[0].added == expected[len(held):]


def test_added_is_what_the_static_entry_lacks():
    site = build_site(config(), entries(subcluster("sc1", ["R-GMA", "VO-atlas-X"])),
                      [tags("atlas", "VO-atlas-x VO-atlas-w")])
    assert site.subclusters[0].added == ["VO-atlas-w"]


@pytest.mark.parametrize(
    "held, inputs, expected",
    [
        pytest.param(["VO-atlas-X"], [tags("atlas", "VO-atlas-x")],
                     ["info/atlas/atlas.ldif:1: differs only in case from 'VO-atlas-X' (static entry at "
                      "static.ldif:1), which is kept: 'VO-atlas-x'"], id="global-vs-static"),
        pytest.param([], [tags("atlas", "VO-atlas-b"), tags("atlas", "\nVO-atlas-B", "sc1")],
                     ["info/sc1/atlas/atlas.ldif:2: differs only in case from 'VO-atlas-b' (published before "
                      "it on SubCluster sc1), which is kept: 'VO-atlas-B'"], id="own-vs-global"),
        pytest.param([], [tags("a", "VO-a-b-x"), tags("a-b", "VO-a-b-X")],
                     ["info/a-b/a-b.ldif:1: differs only in case from 'VO-a-b-x' (a tag of another VO), "
                      "which is kept: 'VO-a-b-X'"], id="across-VOs"),
        pytest.param([], [tags("a-b", "VO-a-b-1"), tags("a", "VO-a-B-1", "sc1")],
                     ["info/sc1/a/a.ldif:1: differs only in case from 'VO-a-b-1' (published before it on "
                      "SubCluster sc1), which is kept: 'VO-a-B-1'"], id="nested-VOs-global-vs-own"),
        pytest.param(["GLITE-3_2_0", "glite-3_2_0"], [],
                     ["static.ldif:6: static value differs only in case from 'GLITE-3_2_0': the BDII rejects "
                      "the entry holding both: 'glite-3_2_0'"], id="within-the-static-entry"),
        pytest.param(["caf\u00e9"], [],
                     ["static.ldif:5: static value not printable ASCII (a line break, a control or a non-ASCII "
                      "character): the BDII rejects the entry holding it; gip leaves it out: 'caf\\xe9'"],
                     id="unprintable-static-value"),
        pytest.param(["VO-atlas-x"], [tags("atlas", "VO-atlas-x")], [], id="same-spelling-is-silent"),
    ],
)
def test_case_clashes_are_reported_where_they_were_read(held, inputs, expected):
    site = build_site(config(), entries(subcluster("sc1", held)), inputs)
    assert reasons(site) == expected


def test_per_subcluster_tags_go_to_their_subcluster_only():
    static = entries(subcluster("sc1"), subcluster("sc2"))
    inputs = [tags("atlas", "VO-atlas-all"), tags("atlas", "VO-atlas-one", "sc2")]
    site = build_site(config(), static, inputs)
    assert published(site) == {"sc1": ["VO-atlas-all"], "sc2": ["VO-atlas-all", "VO-atlas-one"]}
    assert site.subclusters[1].global_counts == {"atlas": 1} and site.subclusters[1].own_counts == {"atlas": 1}


def test_per_subcluster_folder_ids_match_ignoring_case():
    site = build_site(config(), entries(subcluster("SC1.example.org")), [tags("atlas", "VO-atlas-a", "sc1.EXAMPLE.org")])
    assert published(site) == {"SC1.example.org": ["VO-atlas-a"]}


def test_a_folder_for_an_unknown_subcluster_is_reported_and_skipped():
    site = build_site(config(), entries(subcluster("sc1")), [tags("atlas", "VO-atlas-a", "nosuch")])
    assert published(site) == {"sc1": []}
    assert reasons(site) == ["info/nosuch/atlas/atlas.ldif: skipped: no SubCluster has the ID 'nosuch'"]


def test_same_input_gives_same_output_whatever_the_order_it_came_in():
    inputs = [tags("cms", "VO-cms-b VO-cms-a"), tags("atlas", "VO-atlas-z"), tags("atlas", "VO-atlas-q", "sc1")]
    first = build_site(config(), entries(subcluster("sc1")), inputs)
    second = build_site(config(), entries(subcluster("sc1")), list(reversed(inputs)))
    assert published(first) == published(second) == {"sc1": ["VO-atlas-z", "VO-cms-a", "VO-cms-b", "VO-atlas-q"]}


# -- static entries ---------------------------------------------------------------------


def test_a_duplicate_dn_is_ignored_as_the_bdii_ignores_it():
    first = subcluster("sc1", ["A"])
    second = first.replace("GlueClusterUniqueID=ce", "GlueClusterUniqueID = CE")
    site = build_site(config(), entries(first, second), [])
    assert [sc.held for sc in site.subclusters] == [["A"]]
    assert [e.line for e in site.entries] == [1]
    assert reasons(site)[0].startswith("static.ldif:7: same DN as the entry at static.ldif:1; the BDII keeps the first")


def test_duplicate_dns_are_found_in_any_case_and_spacing():
    for twin in ["O=GRID", "o=grid", "o = grid"]:
        static = entries(subcluster("sc1"), ce("q1"), "dn: " + twin + "\nx: 1\n", "dn: o=grid\ny: 2\n")
        site = build_site(config(), static, [])
        assert [p.reason.split(";")[0] for p in site.problems] == [
            "same DN as the entry at static.ldif:13"], twin
    site = build_site(config(), entries(subcluster("sc1"), ce("q1"), "dn: o=grid\ny: 2\n"), [])
    assert site.problems == [] and len(site.entries) == 3


def test_an_entry_whose_dn_cannot_be_printed_is_left_out():
    site = build_site(config(), entries(subcluster("sc1"), subcluster("caf\u00e9")), [])
    assert [sc.unique_id for sc in site.subclusters] == ["sc1"]
    assert "DN not printable ASCII" in reasons(site)[0] and reasons(site)[0].startswith("static.ldif:6:")


def test_a_subcluster_id_can_come_from_the_dn():
    record = f"dn: {SC_DN.format(id='fromdn')}\nobjectClass: GlueSubCluster\n"
    site = build_site(config(), entries(record), [])
    assert [sc.unique_id for sc in site.subclusters] == ["fromdn"]


def test_merged_entries_put_tags_and_state_in_place_of_the_static_values():
    static = entries(subcluster("sc1", ["R-GMA"]), ce("q1"), ce("q2", state=None))
    site = build_site(config(CE_STATE="PilotSCAS"), static, [tags("atlas", "VO-atlas-a")])
    merged = {entry.dn: pairs for entry, pairs in site.merged_entries()}
    assert merged[SC_DN.format(id="sc1")][-1] == (RTE, ["R-GMA", "VO-atlas-a"])
    assert merged[CE_DN.format(queue="q1")][-1] == ("GlueCEStateStatus", ["PilotSCAS"])
    assert merged[CE_DN.format(queue="q2")][-1] == ("GlueCEStateStatus", ["PilotSCAS"])
    assert [name for name, _ in merged[CE_DN.format(queue="q1")]] == [
        "objectClass", "GlueCEUniqueID", "GlueCEName", "GlueCEStateStatus"
    ]


def test_a_subcluster_without_rte_gets_the_attribute_last():
    site = build_site(config(), entries(subcluster("sc1")), [tags("atlas", "VO-atlas-a")])
    (_, pairs), = list(site.merged_entries())
    assert pairs[-1] == (RTE, ["VO-atlas-a"])


# -- CE state ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, static_state, expected",
    [
        pytest.param({"CE_STATE": "PilotSCAS"}, "Production", "PilotSCAS", id="production-is-replaced"),
        pytest.param({"CE_STATE": "PilotSCAS"}, "production", "PilotSCAS", id="any-case"),
        pytest.param({"CE_STATE": "PilotSCAS"}, None, "PilotSCAS", id="absent-is-set"),
        pytest.param({"CE_STATE": "PilotSCAS"}, "Closed", None, id="closed-is-kept"),
        pytest.param({"CE_STATE": "PilotSCAS"}, "Draining", None, id="draining-is-kept"),
        pytest.param({"CE_STATE": "PilotSCAS", "CE_STATE_POLICY": POLICY_ALWAYS}, "Closed", "PilotSCAS",
                     id="always-forces"),
        pytest.param({"CE_STATE": "PilotSCAS", "Q1_CE_STATE": "Closed"}, "Production", "Closed",
                     id="per-queue-wins"),
        pytest.param({"CE_STATE": "Production"}, "Production", None, id="no-change-no-block"),
        pytest.param({}, "Production", None, id="no-state-set"),
    ],
)
def test_state_policy(settings, static_state, expected):
    site = build_site(config(**settings), entries(ce("q1", static_state)), [])
    assert [c.new_state for c in site.ces] == [expected]
    assert site.ces[0].published_state == (expected or static_state)
    assert site.ces[0].has_state == (static_state is not None)


@pytest.mark.parametrize("padded", ["Production ", "Production\t", " Production"])
def test_a_static_state_is_read_as_bdii_update_reads_it_without_whitespace_around(padded):
    site = build_site(config(CE_STATE="PilotSCAS"), entries(ce("q1 ", padded)), [])
    assert [(c.unique_id, c.queue, c.state, c.new_state) for c in site.ces] == [
        ("ce:8443/cream-pbs-q1", "q1", "Production", "PilotSCAS")]


def test_the_queue_is_the_end_of_the_unique_id_without_glue_ce_name():
    site = build_site(config(CE_STATE="PilotSCAS", Q2_CE_STATE="Closed"), entries(ce("q2", name=False)), [])
    assert [(c.queue, c.new_state) for c in site.ces] == [("q2", "Closed")]


def test_vo_views_are_not_ces():
    view = (f"dn: GlueVOViewLocalID=atlas,{CE_DN.format(queue='q1')}\nobjectClass: GlueCETop\n"
            "objectClass: GlueVOView\nGlueVOViewLocalID: atlas\n")
    site = build_site(config(CE_STATE="PilotSCAS"), entries(ce("q1"), view), [])
    assert [c.queue for c in site.ces] == ["q1"]


# -- base templates -----------------------------------------------------------------------


def template_config(**extra: str) -> SiteConfig:
    values = {"CE_HOST": "ce.example.org", "CE_BATCH_SYS": "pbs", "QUEUES": "long short",
              "LONG_GROUP_ENABLE": "atlas /atlas/ROLE=production", "SHORT_GROUP_ENABLE": "",
              "CE_RUNTIMEENV": "GLITE-3_2_0 R-GMA glite-3_2_0", "CE_STATE": "PilotSCAS"}
    values.update(extra)
    return config(**values)


def test_templates_base_renders_one_subcluster_and_a_ce_per_queue():
    site = build_site(template_config(), entries(subcluster("ignored")), [tags("atlas", "VO-atlas-a")], BASE_TEMPLATES)
    assert site.entries == []
    assert published(site) == {"ce.example.org": ["GLITE-3_2_0", "R-GMA", "VO-atlas-a"]}
    assert [(c.unique_id, c.state, c.new_state, c.access_rules) for c in site.ces] == [
        ("ce.example.org:8443/cream-pbs-long", "Production", "PilotSCAS", ("VO:atlas", "VOMS:/atlas/ROLE=production")),
        ("ce.example.org:8443/cream-pbs-short", "Production", "PilotSCAS", ()),
    ]
    assert reasons(site) == [
        "site-info.def: CE_RUNTIMEENV value differs only in case from another: 'glite-3_2_0'",
        "site-info.def: queue 'short' has no VO or FQAN in its _GROUP_ENABLE",
    ]


@pytest.mark.parametrize("missing", ["CE_HOST", "CE_BATCH_SYS", "QUEUES"])
def test_templates_base_needs_its_keys(missing):
    with pytest.raises(ConfigError, match=f"site-info.def: {missing} is not set"):
        build_site(template_config(**{missing: ""}), [], [], BASE_TEMPLATES)


@pytest.mark.parametrize(
    "rule, local_id",
    [
        ("VO:atlas", "atlas"),
        ("VOMS:/atlas/ROLE=production", "/atlas/ROLE_production"),
        ("VOMS:/cms/Role=NULL/Capability=NULL", "/cms"),
        ("VOMS:/dteam/Role=lcgadmin/Capability=NULL", "/dteam/Role_lcgadmin"),
        ("VO:vo.example.org", "vo.example.org"),
    ],
)
def test_voview_id(rule, local_id):
    assert voview_id(rule) == local_id


# -- own tags proven new by their stems --------------------------------------------------------


def without_stems(tag_input: TagInput) -> TagInput:
    read = tag_input.file
    return TagInput(tag_input.source, TagFile(read.path, read.vo, read.tags, read.problems, read.data))


_FAMILIES = ["sw-", "SW-", "prod-", "Prod-", "x", "X", "sc1-", "b-", "B-"]


@settings(max_examples=300, deadline=None)
@given(
    held=st.lists(st.builds(lambda f, t: f"VO-a-{f}{t}", st.sampled_from(_FAMILIES), st.text("12aB", max_size=2)),
                  max_size=3),
    files=st.lists(
        st.tuples(
            st.sampled_from(["a", "a-b", "c"]),
            st.sampled_from([None, "sc1"]),
            st.lists(st.builds(lambda f, t: f + t, st.sampled_from(_FAMILIES), st.text("12aB", max_size=3)),
                     max_size=8),
        ),
        max_size=5,
    ),
)
def test_own_tags_read_by_their_stems_are_published_as_when_each_is_compared(held, files):
    """The stems are a shortcut only: the same tags, counts and problems as comparing every tag."""
    inputs = {}
    for vo, where, tails in files:
        text = "\n".join(sorted({f"VO-{vo}-{tail}" for tail in tails}))
        inputs[(vo, where)] = tags(vo, text, where)
    static = entries(subcluster("sc1", held))
    fast = build_site(config(), static, list(inputs.values()))
    slow = build_site(config(), static, [without_stems(i) for i in inputs.values()])
    assert published(fast) == published(slow)
    assert fast.subclusters[0].own_counts == slow.subclusters[0].own_counts
    assert reasons(fast) == reasons(slow)


def test_own_tags_of_another_family_than_the_global_ones_are_all_published():
    inputs = [tags("a", "VO-a-prod-1\nVO-a-prod-2"), tags("a", "VO-a-sc1-1\nVO-a-sc1-2", "sc1")]
    assert all(i.file.stems for i in inputs)
    site = build_site(config(), entries(subcluster("sc1")), inputs)
    assert published(site) == {"sc1": ["VO-a-prod-1", "VO-a-prod-2", "VO-a-sc1-1", "VO-a-sc1-2"]}
    clash = [tags("a", "VO-a-prod-1\nVO-a-prod-2"), tags("a", "VO-a-PROD-2\nVO-a-sc1-1", "sc1")]
    site = build_site(config(), entries(subcluster("sc1")), clash)
    assert published(site) == {"sc1": ["VO-a-prod-1", "VO-a-prod-2", "VO-a-sc1-1"]}
    assert [p.line for p in site.problems] == [1]


@settings(max_examples=200, deadline=None)
@given(
    held=st.lists(st.sampled_from(["GLITE-3_2_0", "VO-a-x", "VO-a-X", "R GMA", "VO-c-1"]), max_size=3),
    files=st.lists(
        st.tuples(st.sampled_from(["a", "a-b", "c"]), st.sampled_from([None, "sc1"]),
                  st.lists(st.sampled_from(["x", "X", "y", "b-x", "1", "bad tag", "-x"]), max_size=5)),
        max_size=5,
    ),
)
def test_tags_are_kept_as_valid_tags_and_nothing_else_is(held, files):
    """Printing a ValidTags part skips its check: it must hold valid tags only."""
    from gip.tags import TagRule, ValidTags

    inputs = {(vo, where): tags(vo, " ".join(f"VO-{vo}-{tail}" for tail in tails), where)
              for vo, where, tails in files}
    site = build_site(config(), entries(subcluster("sc1", held)), list(inputs.values()))
    for part in site.subclusters[0].tags.parts:
        if isinstance(part, ValidTags):
            assert all(any(TagRule(vo).is_valid(tag) for vo in ("a", "a-b", "c")) for tag in part)
    assert not isinstance(site.subclusters[0].tags.parts[0], ValidTags)  # the static values
