"""GLUE 2 output of gip-provider: share states, ApplicationEnvironments and their parents.

Unit tables for the state rule and the IDs, golden LDIF of the example site
(compared after parsing), the fast ApplicationEnvironment path against
per-entry rendering, and the command line with --glue 2 and both.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip.cli.provider import Options, build, main
from gip.dnkey import dn_key
from gip.errors import ConfigError
from gip.ldifvalue import value_problem
from gip.model import (
    BASE_TEMPLATES,
    SERVING_STATES,
    Glue2Node,
    Share,
    TagInput,
    build_site,
    in_glue2_tree,
    rule_vo,
    set_share_state,
)
from gip.publish import (
    MODE_MERGED_STATIC,
    MODE_MERGED_TEMPLATES,
    MODE_PLUGIN,
    Publisher,
    builtin_template_dir,
    joined_entries,
    parts_bytes,
    rdn,
    template_dirs,
)
from gip.siteconfig import POLICY_ALWAYS, POLICY_PRODUCTION_ONLY, QueueConfig, SiteConfig
from gip.staticldif import parse_static_ldif
from gip.tagfile import parse_tags
from gip.tagtree import TagSource
from tests.support.ldifmap import EntryMap, ldif_map, modify_map

HERE = Path(__file__).resolve().parent
ETC = HERE.parent / "etc"
GOLDEN = HERE / "golden"
GLUE1_FILES = ("static-file-CE.ldif", "static-file-Cluster.ldif")
# Parents first, as the BDII must load them.
GLUE2_FILES = ("ComputingService.ldif", "ComputingManager.ldif", "ExecutionEnvironment.ldif", "ComputingShare.ldif")
SERVICE = "GLUE2ServiceID=ce.example.org_ComputingElement,GLUE2GroupID=resource,o=glue"
MANAGER = f"GLUE2ManagerID=ce.example.org_ComputingElement_Manager,{SERVICE}"
APP_CLASS = "glue2applicationenvironment"
STATE = "glue2computingshareservingstate"
INFO = "glue2entityotherinfo"


def share_dn(queue: str, vo: str) -> str:
    return f"GLUE2ShareID={queue}_{vo}_ce.example.org_ComputingElement,{SERVICE}"


def example_options(glue: str = "both", base: str = "static", files: Sequence[str] = GLUE1_FILES + GLUE2_FILES,
                    **changes: object) -> Options:
    options = Options(
        site_info=ETC / "site-info.def",
        static_ldif=tuple(str(ETC / "static" / name) for name in files),
        info_dir=ETC / "info",
        templates=None,
        every_case=False,
        glue=glue,
        base=base,
    )
    return Options(**{**options.__dict__, **changes})


def render_example(mode: str, glue: str = "both", base: str = "static", **changes: object) -> str:
    site, problems, config_error = build(example_options(glue, base, **changes), base, mode == MODE_PLUGIN)
    assert config_error is None
    publisher = Publisher(template_dirs(None, problems))
    text = publisher.render_site(site, mode, glue)
    assert publisher.problems == []
    return text


def glue2_tree(entries: EntryMap) -> EntryMap:
    return {dn: attributes for dn, attributes in entries.items() if in_glue2_tree(dn)}


def applications(entries: EntryMap) -> Dict[str, Dict[str, List[str]]]:
    return {dn: a for dn, a in entries.items() if APP_CLASS in [c.lower() for c in a.get("objectclass", [])]}


# -- the state of a share ---------------------------------------------------------------------


def share(state: Optional[str] = "production", queue: Optional[str] = "long", other: Sequence[str] = ()) -> Share:
    return Share(Glue2Node("s", "GLUE2ShareID=s,o=glue"), queue, None, state, list(other))


def state_config(policy: str = POLICY_PRODUCTION_ONLY, **values: str) -> SiteConfig:
    return SiteConfig(path="site-info.def", values=values, ce_state=values.get("CE_STATE"), state_policy=policy)


@pytest.mark.parametrize(
    "values, policy, state, other, new_state, ce_state, published_info",
    [
        pytest.param({"CE_STATE": "PilotSCAS"}, POLICY_PRODUCTION_ONLY, "production", ["A=1"], None, "PilotSCAS",
                     ["A=1", "CEState=PilotSCAS"], id="other-state-goes-to-other-info"),
        pytest.param({"CE_STATE": "Draining"}, POLICY_PRODUCTION_ONLY, "production", [], "draining", None, [],
                     id="enumeration-sets-serving-state-lower-case"),
        pytest.param({"CE_STATE": "CLOSED"}, POLICY_PRODUCTION_ONLY, "production", [], "closed", None, [],
                     id="any-case"),
        pytest.param({"CE_STATE": "queueing"}, POLICY_PRODUCTION_ONLY, None, [], "queueing", None, [],
                     id="absent-is-set"),
        pytest.param({"CE_STATE": "Production"}, POLICY_PRODUCTION_ONLY, "production", [], None, None, [],
                     id="no-change"),
        pytest.param({"CE_STATE": "PilotSCAS"}, POLICY_PRODUCTION_ONLY, "draining", [], None, None, [],
                     id="draining-is-kept"),
        pytest.param({"CE_STATE": "Closed"}, POLICY_PRODUCTION_ONLY, "queueing", [], None, None, [],
                     id="queueing-is-kept"),
        pytest.param({"CE_STATE": "PilotSCAS"}, POLICY_ALWAYS, "draining", [], None, "PilotSCAS",
                     ["CEState=PilotSCAS"], id="always-adds-other-info"),
        pytest.param({"CE_STATE": "closed"}, POLICY_ALWAYS, "draining", [], "closed", None, [], id="always-forces"),
        pytest.param({"CE_STATE": "PilotSCAS", "LONG_CE_STATE": "Draining"}, POLICY_PRODUCTION_ONLY, "production",
                     [], "draining", None, [], id="per-queue-wins"),
        pytest.param({"CE_STATE": "PilotSCAS"}, POLICY_PRODUCTION_ONLY, "production", ["CEState=PilotSCAS"], None,
                     None, ["CEState=PilotSCAS"], id="already-there"),
        pytest.param({"CE_STATE": "PilotSCAS"}, POLICY_PRODUCTION_ONLY, "production", ["CEState=Old", "B=2"], None,
                     "PilotSCAS", ["B=2", "CEState=PilotSCAS"], id="an-old-ce-state-is-replaced"),
        pytest.param({}, POLICY_PRODUCTION_ONLY, "production", [], None, None, [], id="no-state-set"),
    ],
)
def test_share_state(values, policy, state, other, new_state, ce_state, published_info):
    subject = share(state, other=other)
    set_share_state(state_config(policy, **values), subject)
    assert (subject.new_state, subject.ce_state, subject.published_other_info) == (new_state, ce_state, published_info)
    assert subject.published_state == (new_state or state)
    assert subject.changed == (new_state is not None or ce_state is not None)


def test_a_share_without_a_queue_takes_ce_state():
    subject = share(queue=None)
    set_share_state(state_config(CE_STATE="Closed", LONG_CE_STATE="Draining"), subject)
    assert subject.new_state == "closed"


# What site-info.def lets through as a state (siteconfig refuses the rest with exit 3).
_states = st.one_of(
    st.sampled_from(["PilotSCAS", "Production", "DRAINING", "Closed", "queueing", "Special", "x"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12).filter(
        lambda state: value_problem(state) is None),
)


@settings(max_examples=400, deadline=None)
@given(_states, st.sampled_from([*SERVING_STATES, None]), st.sampled_from([POLICY_PRODUCTION_ONLY, POLICY_ALWAYS]))
def test_serving_state_stays_in_the_enumeration(wanted, current, policy):
    subject = share(current)
    set_share_state(state_config(policy, CE_STATE=wanted), subject)
    assert subject.published_state in (*SERVING_STATES, None)
    allowed = policy == POLICY_ALWAYS or current in (None, "production")
    if wanted.lower() in SERVING_STATES:
        assert subject.ce_state is None
        assert subject.published_state == (wanted.lower() if allowed else current)
    else:
        assert subject.new_state is None
        assert subject.published_other_info == ([f"CEState={wanted}"] if allowed else [])


SHARES = "".join(
    f"dn: GLUE2ShareID={queue},GLUE2ServiceID=svc,GLUE2GroupID=resource,o=glue\nobjectClass: GLUE2ComputingShare\n"
    f"GLUE2ShareID: {queue}\nGLUE2ComputingShareMappingQueue: {queue}\n"
    f"GLUE2ComputingShareServingState: {state}\nGLUE2EntityOtherInfo: A=1\n\n"
    for queue, state in zip(("q1", "q2", "q3", "q4"), SERVING_STATES)
)


@settings(max_examples=150, deadline=None)
@given(_states, _states, st.sampled_from([POLICY_PRODUCTION_ONLY, POLICY_ALWAYS]))
def test_gip_never_prints_a_serving_state_outside_the_enumeration(wanted, own, policy):
    values = {"CE_STATE": wanted, "Q2_CE_STATE": own, "CE_STATE_POLICY": policy}
    config = SiteConfig(path="site-info.def", values=values, ce_state=wanted, state_policy=policy)
    site = small_site(SHARES, config=config)
    publisher = Publisher([builtin_template_dir()])
    merged = ldif_map(publisher.render_site(site, MODE_MERGED_STATIC, "2"))
    plugin = modify_map(publisher.render_site(site, MODE_PLUGIN, "2"))
    for queue, static_state in zip(("q1", "q2", "q3", "q4"), SERVING_STATES):
        dn = dn_key(f"GLUE2ShareID={queue},GLUE2ServiceID=svc,GLUE2GroupID=resource,o=glue")
        applies = policy == POLICY_ALWAYS or static_state == "production"
        state = own if queue == "q2" else wanted
        set_by_gip = state.lower() in SERVING_STATES and applies
        assert merged[dn][STATE] == [state.lower() if set_by_gip else static_state]
        expected_info = ["A=1", f"CEState={state}"] if applies and not state.lower() in SERVING_STATES else ["A=1"]
        assert merged[dn][INFO] == expected_info
        for operation, attribute, printed in plugin.get(dn, []):
            assert (operation, printed) == (("replace", [state.lower()]) if attribute == STATE
                                            else ("add", [f"CEState={state}"]))


@pytest.mark.parametrize(
    "rule, vo",
    [("VO:atlas", "atlas"), ("VOMS:/atlas/ROLE=production", "atlas"), ("VOMS:/vo.example.org", "vo.example.org"),
     ("VOMS:/cms/Role=lcgadmin/Capability=NULL", "cms")],
)
def test_rule_vo(rule, vo):
    assert rule_vo(rule) == vo


@pytest.mark.parametrize(
    "dn, inside",
    [("GLUE2GroupID=resource,o=glue", True), ("GLUE2ShareID=a, GLUE2GroupID=resource , O=Glue", True),
     ("o=glue", True), ("mds-vo-name=resource,o=grid", False), ("o=gluey", False), ("cn=o=glue,o=grid", False)],
)
def test_the_glue2_tree(dn, inside):
    assert in_glue2_tree(dn) == inside


# -- golden LDIF of the example site ----------------------------------------------------------


@pytest.mark.parametrize(
    "mode, base, golden",
    [
        (MODE_MERGED_STATIC, "static", "glue2-example-merged-static.ldif"),
        (MODE_MERGED_TEMPLATES, "templates", "glue2-example-merged-templates.ldif"),
    ],
)
def test_merged_glue2_of_the_example_site(mode, base, golden):
    output = ldif_map(render_example(mode, "both", base))
    assert glue2_tree(output) == ldif_map((GOLDEN / golden).read_text())


@pytest.mark.parametrize(
    "mode, base, golden",
    [
        (MODE_MERGED_STATIC, "static", "example-merged-static.ldif"),
        (MODE_MERGED_TEMPLATES, "templates", "example-merged-templates.ldif"),
    ],
)
def test_glue1_is_the_same_with_glue2_beside_it(mode, base, golden):
    output = ldif_map(render_example(mode, "both", base))
    glue1 = {dn: attributes for dn, attributes in output.items() if not in_glue2_tree(dn)}
    assert glue1 == ldif_map((GOLDEN / golden).read_text())


def test_plugin_glue2_of_the_example_site():
    text = render_example(MODE_PLUGIN, "2")
    assert modify_map(text) == modify_map((GOLDEN / "glue2-example-plugin.ldif").read_text())


def test_plugin_blocks_set_each_share_once_as_the_bdii_wants():
    blocks = modify_map(render_example(MODE_PLUGIN, "2"))
    static = ldif_map("\n".join((ETC / "static" / name).read_text() for name in GLUE2_FILES))
    assert set(blocks) == {dn_key(share_dn(q, vo)) for q, vo in [
        ("long", "atlas"), ("long", "cms"), ("long", "vo.example.org"), ("short", "dteam"), ("short", "ops"),
        ("short", "cms"), ("sgm", "atlas")]}
    for dn, operations in blocks.items():
        (operation, attribute, values), = operations
        if attribute == STATE:
            assert (operation, values) == ("replace", ["closed"]) and static[dn][STATE] == ["production"]
        else:
            assert (operation, attribute, values) == ("add", INFO, ["CEState=PilotSCAS"])
            assert not any(info.startswith("CEState=") for info in static[dn][INFO])


@pytest.mark.parametrize(
    "other, ce_state, expected",
    [
        ([], "PilotSCAS", ("add", ["CEState=PilotSCAS"])),
        (["A=1"], "PilotSCAS", ("add", ["CEState=PilotSCAS"])),
        (["A=1", "CEState=Old"], "PilotSCAS", ("replace", ["A=1", "CEState=PilotSCAS"])),
    ],
)
def test_a_plugin_adds_ce_state_and_replaces_only_an_older_one(other, ce_state, expected):
    subject = share(other=other)
    subject.ce_state = ce_state
    assert subject.other_info_change() == expected


def test_every_valid_tag_has_an_application_environment_per_subcluster():
    from tests.test_provider_bdii import EL9_OWN_TAGS, GLOBAL_TAGS, INVALID, STATIC_RTE

    apps = applications(ldif_map(render_example(MODE_MERGED_STATIC)))
    expected = {("ce.example.org", value) for value in STATIC_RTE + GLOBAL_TAGS}
    expected |= {("wn-el9.example.org", value) for value in ["GLITE-3_2_0"] + GLOBAL_TAGS + EL9_OWN_TAGS}
    found = {(a["glue2applicationenvironmentexecutionenvironmentforeignkey"][0],
              a["glue2applicationenvironmentappname"][0]) for a in apps.values()}
    assert found == expected
    assert not {name for _, name in found} & INVALID
    for dn, attributes in apps.items():
        (app_id,) = attributes["glue2applicationenvironmentid"]
        (name,) = attributes["glue2applicationenvironmentappname"]
        (resource,) = attributes["glue2applicationenvironmentexecutionenvironmentforeignkey"]
        assert app_id == f"{name}_{resource}"
        assert dn == dn_key(f"GLUE2ApplicationEnvironmentID={app_id},{MANAGER}")
        assert attributes["glue2applicationenvironmentcomputingmanagerforeignkey"] == [
            "ce.example.org_ComputingElement_Manager"]


def test_unchanged_input_gives_byte_identical_glue2():
    for mode, base in ((MODE_PLUGIN, "static"), (MODE_MERGED_STATIC, "static"), (MODE_MERGED_TEMPLATES, "templates")):
        assert render_example(mode, "both", base) == render_example(mode, "both", base)


@pytest.mark.parametrize("glue", ["1", "2", "both"])
def test_every_static_entry_is_printed_once_whatever_glue_says(glue):
    output = ldif_map(render_example(MODE_MERGED_STATIC, glue))
    static = ldif_map("\n".join((ETC / "static" / n).read_text() for n in GLUE1_FILES + GLUE2_FILES))
    assert set(static) <= set(output)
    main_sc = dn_key("GlueSubClusterUniqueID=ce.example.org,GlueClusterUniqueID=ce.example.org,"
                     "mds-vo-name=resource,o=grid")
    tags_merged = len(output[main_sc]["gluehostapplicationsoftwareruntimeenvironment"]) > 14
    ce_state_merged = "CEState=PilotSCAS" in output[dn_key(share_dn("long", "atlas"))][INFO]
    # What gip merges in follows --glue; the entries of the other version go out as they are.
    assert (tags_merged, ce_state_merged) == {"1": (True, False), "2": (False, True), "both": (True, True)}[glue]
    assert bool(applications(output)) == (glue != "1")


# -- ApplicationEnvironments: the fast path is per-entry rendering -------------------------------


@pytest.mark.parametrize("count", [0, 1, 3, 4])
def test_joined_entries_put_the_value_between_the_pieces(count):
    pieces = [f"<{n}%s{{}}\u00e9>" for n in range(count + 1)]
    values = ["a", "bb", "c-1.0"]
    joined = b"".join(joined_entries(pieces, [value.encode("ascii") for value in values]))
    assert joined.decode("utf-8") == "".join(v.join(pieces) for v in values)


SMALL_SITE_INFO = SiteConfig(path="site-info.def", values={}, vos=("atlas",), queues=(QueueConfig("q", ("atlas",)),))


def static_site(subcluster_ids: Sequence[str], held: Sequence[str] = (), manager: str = "m", extra: str = "") -> str:
    """Static LDIF: one SubCluster and one ExecutionEnvironment per ID, a manager, no shares."""
    service = "GLUE2ServiceID=svc,GLUE2GroupID=resource,o=glue"
    records = [f"dn: GLUE2ManagerID={manager},{service}\nobjectClass: GLUE2ComputingManager\n"
               f"GLUE2ManagerID: {manager}\nGLUE2ManagerServiceForeignKey: svc\n"]
    for sc in subcluster_ids:
        records.append(f"dn: GlueSubClusterUniqueID={rdn(sc)},GlueClusterUniqueID=ce,mds-vo-name=resource,o=grid\n"
                       f"objectClass: GlueSubCluster\nGlueSubClusterUniqueID: {sc}\n"
                       + "".join(f"GlueHostApplicationSoftwareRunTimeEnvironment: {v}\n" for v in held))
        records.append(f"dn: GLUE2ResourceID={rdn(sc)},{service}\nobjectClass: GLUE2ExecutionEnvironment\n"
                       f"GLUE2ResourceID: {sc}\nGLUE2ResourceManagerForeignKey: {manager}\n")
    return "\n".join(records) + ("\n" + extra if extra else "")


def small_site(static: str, tags: Sequence[str] = (), glue: str = "2", config: SiteConfig = SMALL_SITE_INFO):
    parsed = parse_static_ldif(static.encode("utf-8"), "static.ldif")
    assert parsed.problems == []
    text = "".join(tag + "\n" for tag in tags)
    source = TagSource("atlas", None, Path("info/atlas/atlas.ldif"))
    inputs = [TagInput(source, parse_tags(text.encode("utf-8"), "atlas", "info/atlas/atlas.ldif"))]
    return build_site(config, parsed.entries, inputs, glue=glue)


def per_entry_publisher(tmp_path: Path) -> Publisher:
    """A Publisher whose ApplicationEnvironment template is a site's own copy: rendered per entry."""
    shutil.copy(builtin_template_dir() / "glue2-appenv.ldif.j2", tmp_path / "glue2-appenv.ldif.j2")
    return Publisher([tmp_path, builtin_template_dir()])


def render_applications(publisher: Publisher, site) -> str:
    return "".join(b.decode() for env in site.glue2.environments
                   for b in parts_bytes(publisher._resolved(publisher.application_environments(env))))


_held = st.lists(st.sampled_from(["GLITE-3_2_0", "a,b", ":colon", "#hash", "x=y+z", "semi;colon", "back\\slash",
                                  "R-GMA", "<angle>", "quote\"d", "trailing\\", "-dash-first", ".dot"]),
                 max_size=6, unique_by=str.lower)
_ids = st.sampled_from(["sc1", "wn,1", "a+b", "#sc", "x=y", "SC-2.example.org", "back\\slash", "sp ace"])
_tags = st.lists(st.from_regex(r"VO-atlas-[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True), max_size=8,
                 unique_by=str.lower)


@settings(max_examples=150, deadline=None)
@given(_ids, _held, _tags)
def test_the_fast_path_gives_what_per_entry_rendering_gives(tmp_path_factory, subcluster_id, held, tags):
    site = small_site(static_site([subcluster_id], held), tags)
    fast = Publisher([builtin_template_dir()])
    slow = per_entry_publisher(tmp_path_factory.mktemp("site"))
    text = render_applications(fast, site)
    assert text == render_applications(slow, site)
    assert fast.problems == slow.problems == []
    apps = ldif_map(text)
    assert len(apps) == len(site.subclusters[0].tags)
    import ldap.dn

    for dn, attributes in apps.items():
        (app_id,) = attributes["glue2applicationenvironmentid"]
        assert app_id == f"{attributes['glue2applicationenvironmentappname'][0]}_{subcluster_id}"
        assert ldap.dn.str2dn(dn)[0][0][1].lower() == app_id.lower()  # RFC 4514: the ID reads back


def test_a_changed_builtin_template_that_looks_at_the_value_falls_back_to_per_entry(tmp_path, monkeypatch):
    folder = tmp_path / "builtin"
    shutil.copytree(builtin_template_dir(), folder)
    template = folder / "glue2-appenv.ldif.j2"
    template.write_text(template.read_text() + "{{ value | length | string | line('description') }}\n")
    monkeypatch.setattr("gip.publish.builtin_template_dir", lambda: folder)
    site = small_site(static_site(["sc1"]), ["VO-atlas-a", "VO-atlas-bbbbbb"])
    text = render_applications(Publisher([folder]), site)
    assert [a["description"] for a in ldif_map(text.replace("\n\ndescription", "\ndescription")).values()] == [
        ["10"], ["15"]]


def test_a_problem_common_to_every_entry_is_reported_once(tmp_path):
    site = small_site(static_site(["sc1"]), [f"VO-atlas-{n}" for n in range(50)])
    env = site.glue2.environments[0]
    env.manager = Glue2Node("caf\u00e9", env.manager.dn)
    publisher = Publisher([builtin_template_dir()])
    text = render_applications(publisher, site)
    assert "ComputingManagerForeignKey" not in text and text.count("dn: ") == 50
    assert [(p.reason, p.subject) for p in publisher.problems] == [
        ("GLUE2ApplicationEnvironmentComputingManagerForeignKey: not printable ASCII (a line break, a control "
         "or a non-ASCII character); the value is not published", "caf\u00e9")]


# -- static GLUE 2: the parents ApplicationEnvironments need ------------------------------------


def reasons(site) -> List[str]:
    return [str(p) for p in site.problems + site.glue2.missing]


def test_a_subcluster_without_its_execution_environment_gets_no_application_environments():
    static = static_site(["sc1"]) + (
        "\ndn: GlueSubClusterUniqueID=sc2,GlueClusterUniqueID=ce,mds-vo-name=resource,o=grid\n"
        "objectClass: GlueSubCluster\nGlueSubClusterUniqueID: sc2\n")
    site = small_site(static, ["VO-atlas-a"])
    assert [env.subcluster.unique_id for env in site.glue2.environments] == ["sc1"]
    assert reasons(site) == [
        "static.ldif:15: SubCluster sc2: its GLUE 2 ApplicationEnvironments need the GLUE2ExecutionEnvironment "
        "with GLUE2ResourceID sc2 (GLUE2ResourceID=sc2,GLUE2ServiceID=svc,GLUE2GroupID=resource,o=glue) in the "
        "static LDIF; none are published"]


def test_an_execution_environment_whose_manager_is_missing_gets_none():
    static = static_site(["sc1"]).replace("ManagerForeignKey: m", "ManagerForeignKey: other")
    site = small_site(static, ["VO-atlas-a"])
    assert site.glue2.environments == []
    assert reasons(site) == [
        "static.ldif:6: SubCluster sc1: its GLUE 2 ApplicationEnvironments need the GLUE2ComputingManager with "
        "GLUE2ManagerID other (GLUE2ManagerID=other,GLUE2ServiceID=svc,GLUE2GroupID=resource,o=glue) in the "
        "static LDIF; none are published"]


def test_without_glue2_static_entries_gip_names_what_it_needs():
    static = "dn: GlueSubClusterUniqueID=sc1,GlueClusterUniqueID=ce,mds-vo-name=resource,o=grid\n" \
             "objectClass: GlueSubCluster\nGlueSubClusterUniqueID: sc1\n"
    config = SiteConfig(path="site-info.def", values={"CE_STATE": "PilotSCAS"}, ce_host="ce.example.org",
                        ce_state="PilotSCAS")
    site = small_site(static, ["VO-atlas-a"], config=config)
    assert reasons(site) == [
        "site-info.def: no GLUE2ComputingShare in the static LDIF: the CE state is not published in GLUE 2",
        "static.ldif:1: SubCluster sc1: its GLUE 2 ApplicationEnvironments need the GLUE2ExecutionEnvironment with "
        "GLUE2ResourceID sc1 (GLUE2ResourceID=sc1,GLUE2ServiceID=ce.example.org_ComputingElement,"
        "GLUE2GroupID=resource,o=glue) in the static LDIF; none are published"]


def test_an_application_environment_the_static_ldif_holds_is_not_printed_again():
    existing = ("dn: GLUE2ApplicationEnvironmentID=VO-atlas-a_sc1,GLUE2ManagerID=m,GLUE2ServiceID=svc,"
                "GLUE2GroupID=resource,o=glue\nobjectClass: GLUE2ApplicationEnvironment\n")
    site = small_site(static_site(["sc1"], extra=existing), ["VO-atlas-a", "VO-atlas-b"])
    assert site.glue2.environments[0].values == ["VO-atlas-b"]
    text = Publisher([builtin_template_dir()]).render_site(site, MODE_MERGED_STATIC, "2")
    assert sorted(applications(ldif_map(text))) == sorted(
        dn_key(f"GLUE2ApplicationEnvironmentID=VO-atlas-{t}_sc1,GLUE2ManagerID=m,GLUE2ServiceID=svc,"
               "GLUE2GroupID=resource,o=glue") for t in "ab")


def test_two_application_environments_with_one_dn_keep_the_first():
    # 'VO-atlas-x_a' on SubCluster 'b' and 'VO-atlas-x' on 'a_b' are both 'VO-atlas-x_a_b'.
    site = small_site(static_site(["b", "a_b"]), ["VO-atlas-x_a", "VO-atlas-x", "VO-atlas-y"])
    first, second = site.glue2.environments
    assert (first.node.id, second.node.id) == ("b", "a_b")
    assert first.values == ["VO-atlas-x", "VO-atlas-x_a", "VO-atlas-y"]
    assert second.values == ["VO-atlas-x_a", "VO-atlas-y"]
    assert reasons(site) == [
        "static.ldif:15: SubCluster a_b: 1 GLUE 2 ApplicationEnvironment(s) would have the DN of one of "
        "SubCluster b's; left out: 'VO-atlas-x'"]
    text = Publisher([builtin_template_dir()]).render_site(site, MODE_MERGED_STATIC, "2")
    assert len(applications(ldif_map(text))) == 5  # ldif_map refuses a DN seen twice


def test_a_subcluster_id_that_needs_escaping_in_a_dn(tmp_path):
    site = small_site(static_site(["wn,1+x"]), ["VO-atlas-a"])
    text = Publisher([builtin_template_dir()]).render_site(site, MODE_MERGED_STATIC, "2")
    (dn,) = applications(ldif_map(text))
    assert dn == dn_key("GLUE2ApplicationEnvironmentID=VO-atlas-a_wn\\,1\\+x,GLUE2ManagerID=m,GLUE2ServiceID=svc,"
                        "GLUE2GroupID=resource,o=glue")


# -- base templates --------------------------------------------------------------------------------


def template_config(**extra: str) -> SiteConfig:
    from gip.siteconfig import site_config_from
    from gip.siteinfo import SiteInfo

    values = {"SITE_NAME": "S", "CE_HOST": "ce.example.org", "CE_BATCH_SYS": "pbs", "QUEUES": "long",
              "LONG_GROUP_ENABLE": "atlas /atlas/ROLE=production cms", "CE_STATE": "PilotSCAS"}
    values.update(extra)
    return site_config_from(SiteInfo("site-info.def", values, {}))


@pytest.mark.parametrize(
    "extra, service",
    [({}, "ce.example.org_ComputingElement"), ({"COMPUTING_SERVICE_ID": "my,service"}, "my,service")],
)
def test_templates_render_the_parents_with_yaims_ids(extra, service):
    site = build_site(template_config(**extra), [], [], BASE_TEMPLATES, "2")
    glue2 = site.glue2
    assert glue2.service.id == service and glue2.manager.id == f"{service}_Manager"
    escaped = service.replace(",", "\\,")
    assert glue2.service.dn == f"GLUE2ServiceID={escaped},GLUE2GroupID=resource,o=glue"
    assert glue2.manager.dn == f"GLUE2ManagerID={escaped}_Manager,{glue2.service.dn}"
    assert [(e.node.id, e.node.dn) for e in glue2.environments] == [
        ("ce.example.org", f"GLUE2ResourceID=ce.example.org,{glue2.service.dn}")]
    assert [(s.node.id, s.vo, s.rules, s.published_state, s.published_other_info) for s in glue2.shares] == [
        (f"long_atlas_{service}", "atlas", ("VO:atlas", "VOMS:/atlas/ROLE=production"), "production",
         ["CEState=PilotSCAS"]),
        (f"long_cms_{service}", "cms", ("VO:cms",), "production", ["CEState=PilotSCAS"]),
    ]


def test_an_unprintable_service_id_is_a_config_error():
    with pytest.raises(ConfigError, match="COMPUTING_SERVICE_ID"):
        build_site(template_config(COMPUTING_SERVICE_ID=" x"), [], [], BASE_TEMPLATES, "2")


def test_a_key_the_glue2_templates_need_is_named(tmp_path):
    config = template_config()
    site = build_site(config, [], [], BASE_TEMPLATES, "2")
    with pytest.raises(ConfigError, match="CE_OS_ARCH is not set, and template glue2-merged-templates.ldif.j2"):
        Publisher([builtin_template_dir()]).render_site(site, MODE_MERGED_TEMPLATES, "2")


# -- the command line ------------------------------------------------------------------------------


def example_argv(command: str, *extra: str, files: Sequence[str] = GLUE1_FILES + GLUE2_FILES) -> List[str]:
    argv = [command, "--site-info", str(ETC / "site-info.def"), "--info-dir", str(ETC / "info")]
    for name in files:
        argv += ["--static-ldif", str(ETC / "static" / name)]
    return argv + list(extra)


def test_plugin_says_once_that_application_environments_need_the_provider(capsys):
    assert main(example_argv("plugin", "--glue", "both")) == 1  # the example has bad tags
    out, err = capsys.readouterr()
    assert err.count("a plugin cannot create") == 1 and "gip-provider merged" in err
    blocks = modify_map(out)
    assert blocks[dn_key(share_dn("short", "ops"))] == [("replace", STATE, ["closed"])]
    assert "GLUE2ApplicationEnvironment" not in out


def test_merged_names_the_missing_parents_and_prints_no_orphans(capsys):
    assert main(example_argv("merged", "--glue", "2", files=GLUE1_FILES)) == 1
    out, err = capsys.readouterr()
    assert applications(ldif_map(out)) == {}
    assert "SubCluster ce.example.org: its GLUE 2 ApplicationEnvironments need the GLUE2ExecutionEnvironment with " \
           "GLUE2ResourceID ce.example.org (GLUE2ResourceID=ce.example.org,GLUE2ServiceID=" \
           "ce.example.org_ComputingElement,GLUE2GroupID=resource,o=glue)" in err
    assert "no GLUE2ComputingShare in the static LDIF" in err


def test_check_shows_glue2(capsys):
    assert main(example_argv("check", "--glue", "both")) == 1
    out = capsys.readouterr().out
    assert "GLUE 2 ApplicationEnvironments: 44\n" in out
    assert "  ce.example.org (SubCluster ce.example.org, manager ce.example.org_ComputingElement_Manager): 28" in out
    assert "  wn-el9.example.org (SubCluster wn-el9.example.org, manager ce.example.org_ComputingElement_Manager): 16" \
           in out
    assert ("  long_atlas_ce.example.org_ComputingElement (queue long): production (unchanged), "
            "OtherInfo CEState=PilotSCAS") in out
    assert "  short_ops_ce.example.org_ComputingElement (queue short): production -> closed" in out
    assert "  sgm_cms_ce.example.org_ComputingElement (queue sgm): draining (unchanged)" in out
    assert "skipped or wrong: 13" in out  # the same as with GLUE 1 alone: GLUE 2 finds all it needs


def batch_plugin(folder: Path, text: str) -> List[str]:
    script = folder / "batch-plugin"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{text}EOF\n")
    script.chmod(0o755)
    return [str(script)]


def test_wrap_sets_the_serving_state_in_the_plugins_share_and_adds_blocks(tmp_path, capsys):
    printed = (f"dn: {share_dn('short', 'ops')}\nGLUE2ComputingShareFreeSlots: 3\n"
               "GLUE2ComputingShareServingState: production\n\n"
               f"dn: {share_dn('short', 'cms')}\nGLUE2ComputingShareServingState: draining\n")
    assert main([*example_argv("wrap", "--glue", "2"), "--", *batch_plugin(tmp_path, printed)]) == 1
    out = capsys.readouterr().out
    head, _, rest = out.partition("\n\n")
    assert head == (f"dn: {share_dn('short', 'ops')}\nGLUE2ComputingShareFreeSlots: 3\n"
                    "GLUE2ComputingShareServingState: closed")
    assert f"dn: {share_dn('short', 'cms')}\nGLUE2ComputingShareServingState: draining\n" in rest  # kept, as GLUE 1
    blocks = modify_map(rest.split("\n\n", 1)[1])
    assert blocks[dn_key(share_dn("short", "dteam"))] == [("replace", STATE, ["closed"])]
    assert blocks[dn_key(share_dn("long", "atlas"))][0][2][-1] == "CEState=PilotSCAS"
    assert dn_key(share_dn("short", "ops")) not in blocks


def test_wrap_cannot_add_other_info_to_a_share_the_plugin_prints_and_says_so(tmp_path, capsys):
    printed = f"dn: {share_dn('long', 'atlas')}\nGLUE2ComputingShareServingState: production\n"
    assert main([*example_argv("wrap", "--glue", "2"), "--", *batch_plugin(tmp_path, printed)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(printed)
    assert dn_key(share_dn("long", "atlas")) not in modify_map(out.split("\n\n", 1)[1])
    assert f"{dn_key(share_dn('long', 'atlas'))}: the plugin prints this entry, for which there is a state block " \
           "but no override" in err


def test_wrap_without_glue2_leaves_the_shares(tmp_path, capsys):
    printed = f"dn: {share_dn('short', 'ops')}\nGLUE2ComputingShareServingState: production\n"
    main([*example_argv("wrap"), "--", *batch_plugin(tmp_path, printed)])
    out = capsys.readouterr().out
    assert out.startswith(printed) and "GLUE2" not in out[len(printed):]
