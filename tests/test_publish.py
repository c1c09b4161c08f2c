from __future__ import annotations

import base64
from pathlib import Path
from typing import List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip.cli.provider import Options, build
from gip.errors import ConfigError
from gip.publish import (
    MODE_MERGED_STATIC,
    MODE_MERGED_TEMPLATES,
    MODE_PLUGIN,
    TEMPLATES,
    Publisher,
    builtin_template_dir,
    rdn,
    template_dirs,
    templates_for,
)
from gip.ldifvalue import value_problem
from gip.report import Problem
from gip.staticldif import parse_static_ldif
from tests.support.ldifmap import ldif_map, modify_map

HERE = Path(__file__).resolve().parent
ETC = HERE.parent / "etc"
GOLDEN = HERE / "golden"
RTE = "gluehostapplicationsoftwareruntimeenvironment"


def example_options(**changes: object) -> Options:
    options = Options(
        site_info=ETC / "site-info.def",
        static_ldif=(str(ETC / "static" / "static-file-CE.ldif"), str(ETC / "static" / "static-file-Cluster.ldif")),
        info_dir=ETC / "info",
        templates=None,
        every_case=False,
    )
    return Options(**{**options.__dict__, **changes})


def render_example(mode: str, base: str = "static", templates: Optional[Path] = None) -> str:
    site, problems, config_error = build(example_options(templates=templates), base, mode == MODE_PLUGIN)
    assert config_error is None
    publisher = Publisher(template_dirs(templates, problems))
    text = publisher.render_site(site, mode, "1")
    assert publisher.problems == []
    return text


# -- finding templates ---------------------------------------------------------------------


def test_builtin_templates_are_found_from_a_checkout_or_an_install():
    folder = builtin_template_dir()
    for names in TEMPLATES.values():
        for name in names:
            assert (folder / name).is_file()


def test_a_site_template_overrides_the_builtin_one(tmp_path):
    (tmp_path / "glue1-ce.ldif.j2").write_text("{{ 'site' | line('description') }}")
    problems: List[Problem] = []
    dirs = template_dirs(tmp_path, problems)
    assert dirs == [tmp_path, builtin_template_dir()] and problems == []
    assert Publisher(dirs).render("glue1-ce.ldif.j2", "x") == "description: site\n"
    # The others still come from gip's own folder.
    env = Publisher(dirs).env
    assert env.get_template("glue1-cluster.ldif.j2").filename == str(builtin_template_dir() / "glue1-cluster.ldif.j2")


def test_a_missing_site_folder_is_reported_and_gips_own_templates_serve(tmp_path):
    problems: List[Problem] = []
    assert template_dirs(tmp_path / "nope", problems) == [builtin_template_dir()]
    assert [p.reason for p in problems] == ["no such templates folder; gip's own templates are used"]


@pytest.mark.parametrize(
    "mode, glue, expected",
    [
        (MODE_PLUGIN, "1", ()),
        (MODE_PLUGIN, "both", ()),
        (MODE_MERGED_STATIC, "1", ()),
        (MODE_MERGED_STATIC, "both", ("glue2-appenv.ldif.j2",)),
        (MODE_MERGED_TEMPLATES, "1", ("glue1-merged-templates.ldif.j2",)),
        (MODE_MERGED_TEMPLATES, "both", ("glue1-merged-templates.ldif.j2", "glue2-merged-templates.ldif.j2")),
    ],
)
def test_templates_for(mode, glue, expected):
    assert templates_for(mode, glue) == expected


# -- the filters ---------------------------------------------------------------------------


@pytest.fixture
def pub(tmp_path: Path) -> Publisher:
    """A Publisher whose site folder is tmp_path, where render_string writes its template."""
    return Publisher([tmp_path, builtin_template_dir()])


def render_string(pub: Publisher, source: str, **variables) -> str:
    folder = Path(pub.env.loader.searchpath[0])  # type: ignore[attr-defined]
    (folder / "t.j2").write_text(source)
    pub.env.cache.clear()  # type: ignore[union-attr]
    return pub.render("t.j2", "here.def", **variables)


@pytest.mark.parametrize(
    "source, variables, expected",
    [
        ("{{ v | line('a') }}", {"v": "x"}, "a: x\n"),
        ("{{ v | line('a') }}", {"v": ":x"}, "a:: Ong=\n"),
        ("{{ v | line('a') }}", {"v": None}, ""),
        ("{{ v | lines('a') }}", {"v": ["x", "y"]}, "a: x\na: y\n"),
        ("{{ v | lines('a') }}", {"v": []}, ""),
        ("{{ v | lines('a') }}", {"v": ("x", 3)}, "a: x\na: 3\n"),
        ("{{ v | dn }}", {"v": "o=grid"}, "dn: o=grid\n"),
        ("{{ v | attributes }}", {"v": [("a", ["1"]), ("b", ["2", "3"])]}, "a: 1\nb: 2\nb: 3\n"),
        ("{{ v | rdn }}", {"v": "a,b=c+d"}, "a\\,b\\=c\\+d"),
    ],
)
def test_filters_print_through_the_ldif_rule(pub, source, variables, expected):
    assert render_string(pub, source, **variables) == expected


@pytest.mark.parametrize(
    "value, reason",
    [
        ("caf\u00e9", "a: not printable ASCII (a line break, a control or a non-ASCII character)"),
        ("x\ndn: o=evil", "a: not printable ASCII (a line break, a control or a non-ASCII character)"),
        ("has dn: inside", "a: holds 'dn:', which bdii-update takes for the start of an entry"),
        (" lead", "a: has a leading or trailing space"),
        ("", "a: empty"),
    ],
)
def test_an_unsafe_value_is_left_out_and_reported(pub, value, reason):
    assert render_string(pub, "{{ v | lines('a') }}", v=["ok", value, "fine"]) == "a: ok\na: fine\n"
    assert render_string(pub, "{{ v | line('a') }}", v=value) == ""
    assert [(p.path, p.reason, p.subject) for p in pub.problems] == [
        ("here.def", f"{reason}; the value is not published", value)
    ] * 2


def test_a_value_of_a_static_entry_is_reported_at_its_line(pub):
    entry = parse_static_ldif(b"dn: o=a\nx: 1\nx:: " + base64.b64encode(b"bad\nline") + b"\n", "s.ldif")
    (only,) = entry.entries
    text = render_string(pub, "{{ e.dn | dn(e) }}{{ pairs | attributes(e) }}", e=only, pairs=list(only.items()))
    assert text == "dn: o=a\nx: 1\n"
    assert [(p.path, p.line) for p in pub.problems] == [("s.ldif", 3)]


def test_an_entry_whose_dn_is_refused_is_left_out_whole(pub):
    source = "{% for d in dns %}{{ d | dn -}}\nx: 1\n\n{% endfor %}"
    text = render_string(pub, source, dns=["o=a", "o=caf\u00e9", "o=b"])
    assert text == "dn: o=a\nx: 1\n\ndn: o=b\nx: 1\n\n"
    assert [p.reason.split(":")[0] for p in pub.problems] == ["dn"]


def test_a_key_the_templates_need_is_a_config_error_naming_it(pub):
    with pytest.raises(ConfigError, match="^here.def: CE_OS is not set, and template t.j2 needs it$"):
        render_string(pub, "{{ cfg.CE_OS | line('GlueHostOperatingSystemName') }}", cfg={})


def test_a_broken_site_template_is_a_config_error(tmp_path):
    (tmp_path / "glue1-ce.ldif.j2").write_text("{% for %}")
    with pytest.raises(ConfigError, match="glue1-ce.ldif.j2:1:"):
        Publisher([tmp_path]).render("glue1-ce.ldif.j2", "x")


def test_a_missing_template_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="template nope.j2 not found"):
        Publisher([tmp_path]).render("nope.j2", "x")


def test_rdn_escapes_as_rfc_4514_says():
    assert rdn("#a ") == "\\#a\\ "


# -- golden LDIF of the example site, compared after parsing --------------------------------


def test_plugin_output_of_the_example_site():
    text = render_example(MODE_PLUGIN)
    assert modify_map(text) == modify_map((GOLDEN / "example-plugin.ldif").read_text())


@pytest.mark.parametrize(
    "base, mode, golden",
    [
        ("static", MODE_MERGED_STATIC, "example-merged-static.ldif"),
        ("templates", MODE_MERGED_TEMPLATES, "example-merged-templates.ldif"),
    ],
)
def test_merged_output_of_the_example_site(base, mode, golden):
    assert ldif_map(render_example(mode, base)) == ldif_map((GOLDEN / golden).read_text())


def test_unchanged_input_gives_byte_identical_output():
    for mode, base in ((MODE_PLUGIN, "static"), (MODE_MERGED_STATIC, "static"), (MODE_MERGED_TEMPLATES, "templates")):
        assert render_example(mode, base) == render_example(mode, base)


def test_plugin_blocks_follow_the_bdii_rules():
    """One block per DN; tags with add:, never a static value again; the state replaced where it is."""
    blocks = modify_map(render_example(MODE_PLUGIN))
    static = ldif_map("\n".join(p.read_text() for p in (ETC / "static").glob("*.ldif")))
    for dn, operations in blocks.items():
        assert len({attribute for _, attribute, _ in operations}) == len(operations)
        for operation, attribute, values in operations:
            held = {v.lower() for v in static[dn].get(attribute, [])}
            if attribute == RTE:
                assert operation == "add" and not held & {v.lower() for v in values}
            else:
                assert (attribute, operation) == ("gluecestatestatus", "replace" if held else "add")


def test_templates_render_what_yaim_wrote():
    """The entries rendered from site-info.def are those of the example's static LDIF."""
    static = ldif_map(render_example(MODE_MERGED_STATIC))
    rendered = ldif_map(render_example(MODE_MERGED_TEMPLATES, "templates"))
    el9 = "gluesubclusteruniqueid=wn-el9.example.org,glueclusteruniqueid=ce.example.org,mds-vo-name=resource,o=grid"
    assert set(static) - set(rendered) == {el9} and set(rendered) <= set(static)
    for dn, attributes in rendered.items():
        for name, values in attributes.items():
            assert sorted(values) == sorted(static[dn][name]), (dn, name)
        assert set(static[dn]) - set(attributes) <= {"glueceimplementationversion"}


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30))
def test_rdn_escapes_as_python_ldap_does(value):
    import ldap.dn

    assert rdn(value) == ldap.dn.escape_dn_chars(value)
    if value_problem(value) is None:  # a value gip would print: it reads back as it was
        assert ldap.dn.str2dn(f"cn={rdn(value)},o=grid")[0][0][1] == value


# -- GlueCEs stamped from their shape ------------------------------------------------------


STAMPED_SITE_INFO = """\
SITE_NAME=STAMP
CE_HOST=ce.example.org
CE_BATCH_SYS=slurm
VOS="atlas cms"
QUEUES="a1 a2 a3 b.1 c_1 -odd long-2"
A1_GROUP_ENABLE="atlas /atlas/ROLE=pilot"
A2_GROUP_ENABLE="atlas /atlas/ROLE=pilot"
A3_GROUP_ENABLE="atlas /atlas/ROLE=pilot"
B_1_GROUP_ENABLE="cms"
C_1_GROUP_ENABLE="cms"
_ODD_GROUP_ENABLE="cms"
LONG_2_GROUP_ENABLE=""
A1_CE_STATE=Draining
A2_CE_STATE=Closed
CE_STATE=PilotSCAS
CE_CAPABILITY="CPUScalingReferenceSI00=2000 dn:x"
SE_LIST="se.example.org"
CE_OS=Linux CE_OS_RELEASE=9 CE_OS_VERSION=9 CE_OS_ARCH=x86_64 CE_CPU_MODEL=x CE_CPU_VENDOR=x CE_CPU_SPEED=1
CE_OTHERDESCR=x CE_PHYSCPU=1 CE_LOGCPU=1 CE_SMPSIZE=1 CE_SI00=1 CE_SF00=1 CE_MINPHYSMEM=1 CE_MINVIRTMEM=1
CE_OUTBOUNDIP=TRUE CE_INBOUNDIP=FALSE
"""


def test_stamped_ces_and_shares_are_what_each_rendered_alone_would_be(tmp_path):
    from gip.model import BASE_TEMPLATES, build_site
    from gip.siteconfig import load_site_config

    (tmp_path / "site-info.def").write_text(STAMPED_SITE_INFO)
    config = load_site_config(tmp_path / "site-info.def")
    own = tmp_path / "templates"
    own.mkdir()
    for name in ("glue1-ce.ldif.j2", "glue1-voview.ldif.j2", "glue2-share.ldif.j2"):
        (own / name).write_text((builtin_template_dir() / name).read_text())
    outputs = []
    for dirs in ([builtin_template_dir()], [own, builtin_template_dir()]):
        site = build_site(config, [], [], BASE_TEMPLATES, "both")
        publisher = Publisher(dirs)
        text = publisher.render_site(site, MODE_MERGED_TEMPLATES, "both")
        outputs.append((text, [str(problem) for problem in publisher.problems]))
    stamped, alone = outputs
    assert stamped == alone
    entries = ldif_map(stamped[0])
    share = "glue2shareid=a2_atlas_ce.example.org_computingelement,glue2serviceid=ce.example.org_computingelement," \
            "glue2groupid=resource,o=glue"
    assert entries[share]["glue2computingshareservingstate"] == ["closed"]
    assert entries[share.replace("a2_", "a1_")]["glue2computingshareservingstate"] == ["draining"]
    assert entries[share.replace("a2_", "a3_")]["glue2entityotherinfo"] == ["CEState=PilotSCAS"]
    assert entries["glueceuniqueid=ce.example.org:8443/cream-slurm-a2,mds-vo-name=resource,o=grid"][
        "gluecestatestatus"] == ["Closed"]
    assert entries["glueceuniqueid=ce.example.org:8443/cream-slurm-a3,mds-vo-name=resource,o=grid"][
        "gluecestatestatus"] == ["PilotSCAS"]
    # The capability that fails the LDIF rule is reported once per CE, as each render reports it.
    assert sum("GlueCECapability" in problem and "dn:x" in problem for problem in stamped[1]) == 7
