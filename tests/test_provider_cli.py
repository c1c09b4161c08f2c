from __future__ import annotations

import io
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from gip.cli import provider
from gip.cli.provider import DEFAULT_STATIC_LDIF, main, static_ldif_paths
from gip.errors import EXIT_CODES
from gip.publish import JoinedEntries, parts_bytes
from gip.report import shown
from tests.support.integration import pid_alive
from tests.support.ldifmap import EntryMap, ldif_map, modify_map

ETC = Path(__file__).resolve().parent.parent / "etc"
SC = "GlueSubClusterUniqueID=sc1,GlueClusterUniqueID=ce,mds-vo-name=resource,o=grid"
CE = "GlueCEUniqueID=ce:8443/cream-pbs-long,mds-vo-name=resource,o=grid"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d gip-provider: ", re.MULTILINE)

SITE_INFO = """\
SITE_NAME=TEST
CE_HOST=ce
VOS="atlas cms"
QUEUES="long"
LONG_GROUP_ENABLE="atlas cms"
CE_BATCH_SYS=pbs
CE_STATE=PilotSCAS
"""
STATIC = f"""\
dn: {SC}
objectClass: GlueClusterTop
objectClass: GlueSubCluster
GlueSubClusterUniqueID: sc1
GlueHostApplicationSoftwareRunTimeEnvironment: GLITE-3_2_0

dn: {CE}
objectClass: GlueCETop
objectClass: GlueCE
GlueCEUniqueID: ce:8443/cream-pbs-long
GlueCEName: long
GlueCEStateStatus: Production
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small clean site: nothing in it is skipped."""
    (tmp_path / "site-info.def").write_text(SITE_INFO)
    (tmp_path / "static.ldif").write_text(STATIC)
    for vo, text in (("atlas", "VO-atlas-a\nVO-atlas-b\n"), ("cms", "VO-cms-x\n")):
        (tmp_path / "info" / vo).mkdir(parents=True)
        (tmp_path / "info" / vo / f"{vo}.ldif").write_text(text)
    return tmp_path


def args(site: Path, command: str, *extra: str) -> List[str]:
    return [command, "--site-info", str(site / "site-info.def"), "--static-ldif", str(site / "static.ldif"),
            "--info-dir", str(site / "info"), *extra]


def add_bad_tags(site: Path, count: int) -> None:
    (site / "info" / "cms" / "cms.ldif").write_text("VO-cms-x\n" + "".join(f"bad/{n}\n" for n in range(count)))


def add_tags_of_a_vo_not_in_vos(site: Path) -> None:
    (site / "info" / "biomed").mkdir()
    (site / "info" / "biomed" / "biomed.ldif").write_text("VO-biomed-x\n")


# -- exit codes -------------------------------------------------------------------------


def test_a_clean_site_exits_0_and_says_nothing(site, capsys):
    assert main(args(site, "plugin")) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert modify_map(out) == {
        SC.lower(): [("add", "gluehostapplicationsoftwareruntimeenvironment", ["VO-atlas-a", "VO-atlas-b", "VO-cms-x"])],
        CE.lower(): [("replace", "gluecestatestatus", ["PilotSCAS"])],
    }


def test_skipped_tags_exit_1_and_the_output_is_still_printed(site, capsys):
    add_bad_tags(site, 3)
    assert main(args(site, "plugin")) == 1
    out, err = capsys.readouterr()
    assert "VO-cms-x" in out and "bad/" not in out
    assert "cms.ldif:2: does not start with 'VO-cms-': 'bad/0' (and 2 more like it in this file" in err


def test_the_report_is_bounded_and_v_lists_every_case(site, capsys):
    add_bad_tags(site, 500)
    assert main(args(site, "plugin")) == 1
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert main(args(site, "plugin", "-v")) == 1
    assert len(capsys.readouterr().err.splitlines()) == 500
    assert main(["-v", *args(site, "plugin")]) == 1
    assert len(capsys.readouterr().err.splitlines()) == 500


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: SUBCOMMAND"),
        (["plugin", "--nope"], "unrecognized arguments: --nope"),
        (["publish"], "invalid choice: 'publish'"),
        (["merged", "--base", "yaml"], "invalid choice: 'yaml'"),
        (["wrap", "--timeout", "-1", "--", "true"], "must be more than 0"),
        (["wrap", "--timeout", "soon", "--", "true"], "not a number of seconds"),
    ],
)
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_wrap_without_a_command_is_a_usage_error(site, capsys):
    assert main(args(site, "wrap")) == 2
    assert "wrap needs the batch system's plugin" in capsys.readouterr().err


def test_templates_lacking_a_key_exit_3_naming_it(site, capsys):
    assert main(args(site, "merged", "--base", "templates")) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{site / 'site-info.def'}: CE_OS_ARCH is not set, and template glue1-merged-templates.ldif.j2 needs it" in err


def test_templates_need_a_usable_site_info(site, capsys):
    (site / "site-info.def").write_text("CE_HOST=$(hostname)\n")
    assert main(args(site, "merged", "--base", "templates")) == 3
    assert "site-info.def:1: unsupported shell syntax '$('" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["-v", "check", "--merged", "--glue", "both"],
    ["wrap", "--timeout", "5", "--glue", "2", "--", "cat", "-v", "x"],
    ["merged", "--base", "templates", "-q"],
    ["plugin", "--static-ldif", "a", "--static-ldif", "b"],
])
def test_a_run_builds_only_its_own_subcommand_and_parses_alike(argv):
    import argparse

    from gip.cli.program import command_word
    from gip.cli.provider import COMMANDS, build_parser

    parser = build_parser(command_word(argv, COMMANDS))
    (subcommands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    assert list(subcommands.choices) == [argv[1] if argv[0] == "-v" else argv[0]]
    assert vars(parser.parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["--help"], ["wrap", "--", "cat", "-h"], ["--", "plugin"], ["bogus"], ["-v"]])
def test_where_the_subcommand_is_not_plain_every_one_is_built(argv):
    from gip.cli.program import command_word
    from gip.cli.provider import COMMANDS

    assert command_word(argv, COMMANDS) is None
    assert set(COMMANDS) == {"plugin", "merged", "wrap", "check"}


def test_help_shows_the_exit_codes_and_the_race(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for code, meaning in EXIT_CODES:
        assert f"  {code}  {meaning}" in out
    assert "race each other" in out and "wrap" in out


# -- inputs and failures of one input ----------------------------------------------------------


def test_a_broken_site_info_costs_the_state_and_the_vos_filter_not_the_tags(site, capsys):
    (site / "site-info.def").write_text("VOS=`ls`\nCE_STATE=PilotSCAS\n")
    add_tags_of_a_vo_not_in_vos(site)
    assert main(args(site, "plugin")) == 1
    out, err = capsys.readouterr()
    blocks = modify_map(out)
    assert list(blocks) == [SC.lower()]
    assert blocks[SC.lower()][0][2] == ["VO-atlas-a", "VO-atlas-b", "VO-biomed-x", "VO-cms-x"]
    assert "ERROR: " in err and "unsupported shell syntax '`'" in err
    assert "publishing without the CE state override and the VOS filter" in err
    assert main(args(site, "check")) == 1
    summary = capsys.readouterr().out.splitlines()
    counted = summary.index("skipped or wrong: 1")
    assert summary[counted + 1:] == [f"  {site / 'site-info.def'}:1: unsupported shell syntax '`'; published without "
                                     "the CE state override and the VOS filter"]


def test_an_unusable_state_costs_only_that_setting(site, capsys):
    (site / "site-info.def").write_text(SITE_INFO.replace("CE_STATE=PilotSCAS", "CE_STATE='Pilot\tSCAS'"))
    add_tags_of_a_vo_not_in_vos(site)
    assert main(args(site, "plugin")) == 1
    out, err = capsys.readouterr()
    # The tags as ever, the VOS filter kept (biomed is not in VOS), no state change.
    assert modify_map(out) == {
        SC.lower(): [("add", "gluehostapplicationsoftwareruntimeenvironment", ["VO-atlas-a", "VO-atlas-b", "VO-cms-x"])],
    }
    line = (f"ERROR: {site / 'site-info.def'}:7: CE_STATE cannot be published as GlueCEStateStatus: not printable "
            "ASCII (a line break, a control or a non-ASCII character); ignored, as if not set: 'Pilot\\tSCAS'")
    assert line in err.splitlines()[0]
    assert "WARNING: " in err and "biomed" in err and "VOS filter" not in err
    assert main(args(site, "check")) == 1
    summary = capsys.readouterr().out.splitlines()
    assert "  ce:8443/cream-pbs-long (queue long): Production (unchanged)" in summary
    counted = summary.index("skipped or wrong: 2")
    assert summary[counted + 1].startswith(f"  {site / 'site-info.def'}:7: CE_STATE cannot be published")


def test_a_vos_naming_what_cannot_be_a_vo_costs_the_filter_not_the_state(site, capsys):
    (site / "site-info.def").write_text(SITE_INFO.replace('VOS="atlas cms"', 'VOS="atlas CMS"'))
    add_tags_of_a_vo_not_in_vos(site)
    assert main(args(site, "plugin")) == 1
    out, err = capsys.readouterr()
    assert modify_map(out) == {
        SC.lower(): [("add", "gluehostapplicationsoftwareruntimeenvironment",
                      ["VO-atlas-a", "VO-atlas-b", "VO-biomed-x", "VO-cms-x"])],
        CE.lower(): [("replace", "gluecestatestatus", ["PilotSCAS"])],
    }
    assert err.count("ERROR: ") == 1 and "WARNING: " not in err
    assert (f"ERROR: {site / 'site-info.def'}:3: VOS: a VO name is lower-case ASCII letters, digits and ._- and starts "
            "with a letter or digit; VOS is ignored, so every VO folder is read: 'CMS'") in err


def example_site(folder: Path, *added: str) -> List[str]:
    """The example site of etc/ with lines added to its site-info.def, as arguments after the subcommand."""
    folder.mkdir(exist_ok=True)
    site_info = folder / "site-info.def"
    site_info.write_text((ETC / "site-info.def").read_text() + "".join(line + "\n" for line in added))
    return ["--site-info", str(site_info), "--info-dir", str(ETC / "info"),
            "--static-ldif", str(ETC / "static" / "static-file-CE.ldif"),
            "--static-ldif", str(ETC / "static" / "static-file-Cluster.ldif")]


def from_templates(capsys: pytest.CaptureFixture[str], folder: Path, *added: str) -> Tuple[EntryMap, List[str]]:
    """merged --base templates of the example site with lines added to its site-info.def: the entries
    printed, and the errors said (after the program's name and level)."""
    assert main(["merged", "--base", "templates", *example_site(folder, *added)]) == 1  # the example has bad tags
    out, err = capsys.readouterr()
    return ldif_map(out), [line.split("ERROR: ", 1)[1] for line in err.splitlines() if "ERROR: " in line]


def test_templates_with_an_unusable_state_still_print_the_site(tmp_path, capsys):
    expected, _ = from_templates(capsys, tmp_path / "good")
    # A long state of its own that cannot be printed: long takes CE_STATE's, as a queue without one does.
    entries, errors = from_templates(capsys, tmp_path, "LONG_CE_STATE=Piloté", "CE_STATE_POLICY=Sometimes")
    assert entries.keys() == expected.keys()
    states = {dn: entry["gluecestatestatus"] for dn, entry in entries.items() if "gluecestatestatus" in entry}
    assert states == {dn: entry["gluecestatestatus"] for dn, entry in expected.items() if "gluecestatestatus" in entry}
    assert sorted(state for values in states.values() for state in values) == ["Closed", "PilotSCAS", "PilotSCAS"]
    last = (ETC / "site-info.def").read_text().count("\n")
    assert [line.split(f"{tmp_path / 'site-info.def'}:", 1)[1].split(" ", 2)[:2] for line in errors] == [
        [f"{last + 1}:", "LONG_CE_STATE"], [f"{last + 2}:", "CE_STATE_POLICY"]]
    # An unusable CE_STATE: the queues keep the state they start with, but short's own.
    entries, errors = from_templates(capsys, tmp_path, "CE_STATE=")
    states = sorted(v for entry in entries.values() for v in entry.get("gluecestatestatus", []))
    assert states == ["Closed", "Production", "Production"]
    assert errors == [f"{tmp_path / 'site-info.def'}:{last + 1}: CE_STATE cannot be published as GlueCEStateStatus: "
                      "empty; ignored, as if not set"]


def test_templates_leave_out_a_queue_or_group_they_cannot_publish_not_the_site(tmp_path, capsys):
    expected, _ = from_templates(capsys, tmp_path / "good")
    entries, errors = from_templates(capsys, tmp_path, 'QUEUES="long short sgm sh/ort"',
                                     'SHORT_GROUP_ENABLE="dteam OPS cms"')
    # short without OPS: its rule and its VOView for ops are gone, and nothing else.
    ops_view = "gluevoviewlocalid=ops,glueceuniqueid=ce.example.org:8443/cream-pbs-short,mds-vo-name=resource,o=grid"
    assert ops_view in expected and set(entries) == set(expected) - {ops_view}
    short = "glueceuniqueid=ce.example.org:8443/cream-pbs-short,mds-vo-name=resource,o=grid"
    assert expected[short]["glueceaccesscontrolbaserule"] == ["VO:dteam", "VO:ops", "VO:cms"]
    assert entries[short]["glueceaccesscontrolbaserule"] == ["VO:dteam", "VO:cms"]
    last = (ETC / "site-info.def").read_text().count("\n")
    assert errors == [
        f"{tmp_path / 'site-info.def'}:{last + 1}: QUEUES: a queue name is ASCII letters, digits and ._-; "
        "that queue is left out: 'sh/ort'",
        f"{tmp_path / 'site-info.def'}:{last + 2}: SHORT_GROUP_ENABLE: a VO name is lower-case ASCII letters, digits "
        "and ._- and starts with a letter or digit; left out of the queue's access rules: 'OPS'",
    ]


def test_a_missing_static_file_costs_its_entries(site, capsys):
    assert main([*args(site, "plugin"), "--static-ldif", str(site / "gone.ldif")]) == 1
    out, err = capsys.readouterr()
    assert len(modify_map(out)) == 2
    assert "gone.ldif: cannot read: No such file or directory" in err


def test_a_vo_file_that_cannot_be_read_costs_that_vos_tags(site, monkeypatch, capsys):
    from gip import tagfile

    def read(path, vo):
        if vo == "cms":
            raise PermissionError(13, "Permission denied")
        return tagfile.read_tag_file(path, vo)

    monkeypatch.setattr("gip.cli.provider.read_tag_file", read)
    assert main(args(site, "plugin")) == 1
    out, err = capsys.readouterr()
    assert modify_map(out)[SC.lower()][0][2] == ["VO-atlas-a", "VO-atlas-b"]
    assert "cms.ldif: cannot read: Permission denied; VO cms's tags from it are not published" in err


def test_a_legacy_list_file_is_read_where_there_is_no_ldif(site, capsys):
    (site / "info" / "cms" / "cms.ldif").unlink()
    (site / "info" / "cms" / "cms.list").write_text("VO-cms-legacy\n")
    assert main(args(site, "plugin")) == 0
    assert "VO-cms-legacy" in capsys.readouterr().out


def test_inputs_from_the_environment(site, monkeypatch, capsys):
    monkeypatch.setenv("GIP_SITE_INFO", str(site / "site-info.def"))
    monkeypatch.setenv("GIP_STATIC_LDIF", f"{site / 'missing.ldif'}::{site / 'static.ldif'}")
    monkeypatch.setenv("EDG_LOCATION_VAR", str(site))
    assert main(["merged"]) == 1
    out, err = capsys.readouterr()
    assert set(ldif_map(out)) == {SC.lower(), CE.lower()}
    assert "missing.ldif: cannot read" in err


def test_site_templates_from_the_environment(site, monkeypatch, capsys, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "glue1-merged-templates.ldif.j2").write_text(
        "{% for sc in site.subclusters %}{{ sc.unique_id | line('x') }}{% endfor %}"
    )
    monkeypatch.setenv("GIP_TEMPLATES", str(templates))
    main(args(site, "merged", "--base", "templates"))
    assert capsys.readouterr().out == "x: ce\n"


@pytest.mark.parametrize(
    "option, variable, expected",
    [
        (None, None, DEFAULT_STATIC_LDIF),
        (None, "", DEFAULT_STATIC_LDIF),
        (None, "/a.ldif:/b.ldif", ("/a.ldif", "/b.ldif")),
        (["/c.ldif"], "/a.ldif", ("/c.ldif",)),
    ],
)
def test_static_ldif_paths(option, variable, expected):
    environ = {} if variable is None else {"GIP_STATIC_LDIF": variable}
    assert static_ldif_paths(option, environ) == expected


def test_merged_warns_when_the_static_files_are_in_the_bdii_ldif_folder(site, capsys):
    assert main(args(site, "merged", "--bdii-ldif-dir", str(site))) == 1
    err = capsys.readouterr().err
    assert "static.ldif: in the BDII's ldif/ folder while gip prints merged entries" in err


def test_merged_leaves_out_static_lines_that_bdii_update_would_read_as_entries(site, capsys):
    # 'ownerdn:' holds 'dn:', where bdii-update starts an entry; 'DN:' is no attribute; the last dn
    # line has no blank line before it: bdii-update reads it as the next entry, and so does gip.
    lines = STATIC.replace("GlueCEName: long\n", "GlueCEName: long\nownerdn: o=evil\nDN: o=worse\n")
    (site / "static.ldif").write_text(lines.replace(f"\n\ndn: {CE}", f"\ndn: {CE}"))
    assert main(args(site, "merged", "--bdii-ldif-dir", str(site / "elsewhere"))) == 1
    out, err = capsys.readouterr()
    assert out.count("dn:") == 2 and out.startswith(f"dn: {SC}\n") and f"\n\ndn: {CE}\n" in out
    assert set(ldif_map(out)) == {SC.lower(), CE.lower()}
    assert "evil" not in out and "worse" not in out and "ownerdn" not in out
    assert ldif_map(out)[CE.lower()]["gluecestatestatus"] == ["PilotSCAS"]
    said = STAMP.sub("", err).splitlines()
    static = site / "static.ldif"
    assert said == [
        f"WARNING: {static}:6: a 'dn:' line inside an entry, with no blank line before it: read as the start "
        "of another entry, as bdii-update reads it",
        f"WARNING: {static}:11: attribute name ends in 'dn', which with its colon bdii-update takes for the "
        "start of an entry; the value is not published: 'ownerdn'",
        f"WARNING: {static}:12: attribute named 'dn' inside an entry: the BDII would take it for another entry "
        "or refuse it; the value is not published: 'DN'",
    ]


CUT = ("holds 'dn:' inside the line, where bdii-update starts another entry: the BDII does not see the entry's "
       "lines from here on, and neither does gip; fix the line")


@pytest.mark.parametrize("line", ["ownerdn: cn=x", "GlueCEInfoContactString: see dn: here", "# the old dn: was x"])
@pytest.mark.parametrize("state", ["Production", "Closed"])
def test_plugin_sets_the_state_of_a_static_entry_as_bdii_update_cuts_it(site, capsys, line, state):
    # bdii-update starts another entry at the 'dn:' inside the line: the CE it keeps has no state, whatever
    # the file says after it, so a replace would change nothing; gip adds the state, and says which line to fix.
    static = STATIC.replace("GlueCEStateStatus: Production", f"{line}\nGlueCEStateStatus: {state}")
    (site / "static.ldif").write_text(static)
    assert main(args(site, "plugin")) == 1
    out, err = capsys.readouterr()
    assert modify_map(out)[CE.lower()] == [("add", "gluecestatestatus", ["PilotSCAS"])]
    assert STAMP.sub("", err).splitlines() == [f"WARNING: {site / 'static.ldif'}:12: {CUT}: {shown(CE)}"]


def test_an_entry_that_is_both_subcluster_and_ce_gets_one_block(site, capsys):
    # bdii-update applies one block per DN of a plugin's output: a second one would be lost.
    both = STATIC.replace(f"\n\ndn: {CE}\nobjectClass: GlueCETop\n", "\n")  # the CE's lines in the SubCluster
    (site / "static.ldif").write_text(both)
    assert main(args(site, "plugin")) == 0
    out = capsys.readouterr().out
    assert out.count("dn: ") == 1 and out.count("changetype: modify") == 1
    assert modify_map(out)[SC.lower()] == [
        ("add", "gluehostapplicationsoftwareruntimeenvironment", ["VO-atlas-a", "VO-atlas-b", "VO-cms-x"]),
        ("replace", "gluecestatestatus", ["PilotSCAS"]),
    ]


@pytest.mark.parametrize("dn_line", [f"dn:{SC}", f"dn:  {SC}"])
def test_a_dn_line_bdii_update_matches_otherwise_is_reported(site, capsys, dn_line):
    (site / "static.ldif").write_text(STATIC.replace(f"dn: {SC}", dn_line))
    assert main(args(site, "plugin")) == 1
    err = STAMP.sub("", capsys.readouterr().err)
    assert f"WARNING: {site / 'static.ldif'}:1: the dn line is not written 'dn: <DN>' (one space, no base64)" in err


def test_a_static_file_without_a_final_line_end_is_reported_where_bdii_update_joins_files(site, capsys):
    (site / "static.ldif").write_text(STATIC.rstrip("\n"))
    assert main(args(site, "plugin")) == 1
    err = STAMP.sub("", capsys.readouterr().err)
    assert f"WARNING: {site / 'static.ldif'}: does not end with a line end: bdii-update joins the files" in err


def test_wrap_sets_the_state_of_a_static_entry_as_bdii_update_cuts_it(site, capsys):
    (site / "static.ldif").write_text(STATIC.replace("GlueCEStateStatus", "ownerdn: x\nGlueCEStateStatus"))
    plugin = batch_plugin(site, f"dn: {CE}\nchangetype: modify\nreplace: GlueCEStateStatus\n"
                                f"GlueCEStateStatus: Production\n-\n")
    assert main([*args(site, "wrap"), "--", *plugin]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"dn: {CE}\nchangetype: modify\nadd: GlueCEStateStatus\nGlueCEStateStatus: PilotSCAS\n-\n")


def test_wrap_starts_the_plugin_before_reading_and_stops_it_if_gip_fails(site, monkeypatch, capsys):
    """A batch plugin that takes seconds to ask the batch system runs while gip reads its own inputs."""
    started = site / "started"
    script = site / "slow-plugin.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {started}\nsleep 0.3\nprintf 'dn: {CE}\\nGlueCEStateStatus: Production\\n'\n")
    build = provider.build
    seen = []

    def build_when_started(*arguments, **keywords):
        deadline = time.monotonic() + 5
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(started.exists())
        return build(*arguments, **keywords)

    monkeypatch.setattr(provider, "build", build_when_started)
    assert main([*args(site, "wrap"), "--", "/bin/sh", str(script)]) == 0
    assert seen == [True]
    assert "GlueCEStateStatus: PilotSCAS" in capsys.readouterr().out

    def failing_build(*arguments, **keywords):
        build_when_started(*arguments, **keywords)
        raise MemoryError

    started.unlink()
    seen.clear()
    monkeypatch.setattr(provider, "build", failing_build)
    script.write_text(f"#!/bin/sh\necho $$ > {started}\nexec sleep 60\n")
    with pytest.raises(MemoryError):
        main([*args(site, "wrap"), "--", "/bin/sh", str(script)])
    assert seen == [True]
    # The plugin was stopped and reaped: nothing of it runs, and it is no zombie of ours.
    pid = int(started.read_text())
    assert not pid_alive(pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_tag_the_cut_hides_from_the_bdii_is_added_again(site, capsys):
    hidden = STATIC.replace("GlueSubClusterUniqueID: sc1\n", "GlueSubClusterUniqueID: sc1\nGlueSubClusterName: see dn: x\n")
    (site / "static.ldif").write_text(hidden.replace("GLITE-3_2_0", "VO-atlas-a"))
    assert main(args(site, "plugin")) == 1
    added = modify_map(capsys.readouterr().out)[SC.lower()]
    assert added == [("add", "gluehostapplicationsoftwareruntimeenvironment", ["VO-atlas-a", "VO-atlas-b", "VO-cms-x"])]


def test_merged_prints_the_whole_entry_whatever_bdii_update_would_cut(site, capsys):
    # In merged mode gip prints the entries: the line is left out (reported), the rest is kept.
    (site / "static.ldif").write_text(STATIC.replace("GlueCEStateStatus", "ownerdn: x\nGlueCEStateStatus"))
    assert main(args(site, "merged", "--bdii-ldif-dir", str(site / "elsewhere"))) == 1
    assert ldif_map(capsys.readouterr().out)[CE.lower()]["gluecestatestatus"] == ["PilotSCAS"]


# -- output --------------------------------------------------------------------------------------


class Recorder(io.TextIOWrapper):
    """A stdout that keeps the writes that reach its bytes, and whether gip was emitting its output then."""

    def __init__(self) -> None:
        self.raw_writes: List[bytes] = []
        self.emitting = False
        self.early_writes = 0
        recorder = self

        class Buffer(io.BytesIO):
            def write(self, data) -> int:  # type: ignore[override]
                recorder.raw_writes.append(bytes(data))
                recorder.early_writes += not recorder.emitting
                return super().write(data)

        super().__init__(Buffer(), encoding="ascii", write_through=True)


@pytest.mark.parametrize("command", [["plugin"], ["merged"], ["check"], ["merged", "--base", "templates", "--glue", "2"]])
def test_everything_goes_out_at_once_at_the_end(site, monkeypatch, command):
    add_bad_tags(site, 2)
    if "templates" in command:
        shutil.copy(ETC / "site-info.def", site / "site-info.def")  # every key the templates need
    stdout = Recorder()
    monkeypatch.setattr(sys, "stdout", stdout)
    emit = provider._emit
    calls = []

    def recorded_emit(out, *parts):
        calls.append(parts)
        stdout.emitting = True
        try:
            emit(out, *parts)
        finally:
            stdout.emitting = False

    monkeypatch.setattr(provider, "_emit", recorded_emit)
    main(args(site, *command))
    # One emit, after every decision; a part per write (large parts are not copied together), the
    # ApplicationEnvironments made a chunk at a time as they are written.
    assert len(calls) == 1 and stdout.early_writes == 0
    printed = b"".join(parts_bytes(calls[0]))
    assert b"".join(stdout.raw_writes) == printed and printed.count(b"\n") > 3
    if "--glue" in command:
        assert any(isinstance(part, JoinedEntries) for part in calls[0])
        names = re.findall(rb"^GLUE2ApplicationEnvironmentAppName: (.*)$", printed, re.MULTILINE)
        assert {b"VO-atlas-a", b"VO-atlas-b", b"VO-cms-x"} <= set(names)


def test_log_lines_carry_a_timestamp_when_stderr_is_not_a_terminal(site, capsys):
    add_bad_tags(site, 1)
    main(args(site, "plugin"))
    err = capsys.readouterr().err
    assert err and all(STAMP.match(line) for line in err.splitlines())


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("gip-provider ")


# -- check ------------------------------------------------------------------------------------------


def test_check_of_a_clean_site(site, capsys):
    assert main(args(site, "check")) == 0
    out = capsys.readouterr().out
    assert "  sc1 (" in out and "3 tags published" not in out
    assert "  sc1 (" + str(site / "static.ldif") + ":1): 4 tags published, 3 added by gip" in out
    assert "    atlas: 2 global, 0 own" in out
    assert "  ce:8443/cream-pbs-long (queue long): Production -> PilotSCAS" in out
    assert out.rstrip().endswith("skipped or wrong: 0")


def test_check_lists_every_skipped_tag(site, capsys):
    add_bad_tags(site, 30)
    assert main(args(site, "check")) == 1
    out, err = capsys.readouterr()
    assert "skipped or wrong: 30" in out
    assert sum("does not start with 'VO-cms-'" in line for line in out.splitlines()) == 30
    assert "cms.ldif:31:" in out


def test_check_merged_renders_and_reports_what_merged_would_skip(site, capsys):
    (site / "static.ldif").write_text(STATIC + "GlueCEInfoHostName: caf\u00e9\n", encoding="utf-8")
    assert main(args(site, "check")) == 0
    capsys.readouterr()
    assert main(args(site, "check", "--merged", "--bdii-ldif-dir", str(site))) == 1
    out = capsys.readouterr().out
    assert "static.ldif:13: GlueCEInfoHostName: not printable ASCII" in out
    assert "in the BDII's ldif/ folder" in out


def test_check_of_the_example_site(capsys):
    argv = ["check", "--site-info", str(ETC / "site-info.def"), "--info-dir", str(ETC / "info"),
            "--static-ldif", str(ETC / "static" / "static-file-CE.ldif"),
            "--static-ldif", str(ETC / "static" / "static-file-Cluster.ldif")]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "skipped or wrong: 13" in out
    assert "ce.example.org:8443/cream-pbs-short (queue short): Production -> Closed" in out


# -- wrap -----------------------------------------------------------------------------------------------


def batch_plugin(folder: Path, text: str, status: int = 0, sleep: float = 0) -> List[str]:
    script = folder / "batch-plugin"
    script.write_text(f"#!/bin/sh\nsleep {sleep}\ncat <<'EOF'\n{text}EOF\nexit {status}\n")
    script.chmod(0o755)
    return [str(script)]


def test_wrap_sets_the_state_in_the_plugins_output_and_adds_the_tags(site, capsys):
    plugin = batch_plugin(site, f"dn: {CE}\nGlueCEStateRunningJobs: 7\nGlueCEStateStatus: Production\n")
    assert main([*args(site, "wrap"), "--", *plugin]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"dn: {CE}\nGlueCEStateRunningJobs: 7\nGlueCEStateStatus: PilotSCAS\n\n")
    assert modify_map(out.split("\n\n", 1)[1]) == {
        SC.lower(): [("add", "gluehostapplicationsoftwareruntimeenvironment", ["VO-atlas-a", "VO-atlas-b", "VO-cms-x"])]
    }


def test_wrap_keeps_a_state_the_batch_system_set(site, capsys):
    plugin = batch_plugin(site, f"dn: {CE}\nGlueCEStateStatus: Draining\n")
    assert main([*args(site, "wrap"), "--", *plugin]) == 0
    assert f"dn: {CE}\nGlueCEStateStatus: Draining\n" in capsys.readouterr().out


def test_wrap_prints_the_state_blocks_when_the_plugin_fails(site, capsys):
    plugin = batch_plugin(site, f"dn: {CE}\nGlueCEStateStatus: Production\n", status=3)
    assert main([*args(site, "wrap"), "--", *plugin]) == 1
    out, err = capsys.readouterr()
    assert modify_map(out)[CE.lower()] == [("replace", "gluecestatestatus", ["PilotSCAS"])]
    assert "exited with status 3" in err


@pytest.mark.parametrize(("printed", "made"), [(f"dn: {CE}\nGlueCEStateStatus: Production\n", 0), ("", 1)],
                         ids=["plugin-prints-the-ce", "plugin-prints-nothing"])
def test_wrap_makes_a_state_block_only_for_a_ce_the_plugin_does_not_print(site, capsys, monkeypatch, printed, made):
    from gip.publish import Publisher

    calls = []
    state_block = Publisher._state_block
    monkeypatch.setattr(Publisher, "_state_block", lambda self, ce: calls.append(ce.unique_id) or state_block(self, ce))
    main([*args(site, "wrap"), "--", *batch_plugin(site, printed)])
    assert calls == ["ce:8443/cream-pbs-long"] * made
    out = capsys.readouterr().out
    assert out.count(f"dn: {CE}\n") == 1
    if made:
        assert modify_map(out)[CE.lower()] == [("replace", "gluecestatestatus", ["PilotSCAS"])]
    else:
        assert out.startswith(f"dn: {CE}\nGlueCEStateStatus: PilotSCAS\n\ndn: {SC}\nchangetype: modify\n")


def test_wrap_stops_a_plugin_that_outlives_its_timeout(site, capsys):
    plugin = batch_plugin(site, "", sleep=30)
    assert main([*args(site, "wrap"), "--timeout", "0.3", "--", *plugin]) == 1
    out, err = capsys.readouterr()
    assert set(modify_map(out)) == {SC.lower(), CE.lower()}
    assert "still running after 0.3 s" in err


@pytest.mark.parametrize("static_state", ["Production", "Closed"])
def test_wrap_leaves_a_queue_whose_state_cannot_be_printed_and_says_so_once(static_state):
    # site-info.def refuses such a value; this is the line behind it, for a value that got past.
    from gip.model import build_site
    from gip.siteconfig import QueueConfig, SiteConfig
    from gip.staticldif import parse_static_ldif

    config = SiteConfig(path="site-info.def", values={"LONG_CE_STATE": "x dn: y"}, ce_state="PilotSCAS",
                        queues=(QueueConfig("long", ("atlas",)),))
    static = parse_static_ldif(STATIC.replace("Production", static_state).encode("ascii"), "static.ldif").entries
    site = build_site(config, static, [])
    problems = list(site.problems)
    assert provider.state_overrides(site, problems) == []
    assert [str(p) for p in problems] == [
        "site-info.def: CE state for queue 'long' holds 'dn:', which bdii-update takes for the start of an "
        "entry; left unchanged: 'x dn: y'"
    ]


def test_the_example_wrappers_exist_and_are_executable():
    for name in ("gip-bdii-plugin", "gip-bdii-provider"):
        path = ETC / "bdii" / name
        assert path.stat().st_mode & 0o111 and path.read_text().startswith("#!/bin/sh\n")
    assert shutil.which("sh")


def test_wrap_leaves_a_subcluster_the_plugin_prints_and_says_so(site, capsys):
    plugin = batch_plugin(site, f"dn: {SC}\nGlueSubClusterLogicalCPUs: 8\n\ndn: {CE}\nGlueCEStateStatus: Production\n")
    assert main([*args(site, "wrap"), "--", *plugin]) == 1
    out, err = capsys.readouterr()
    assert out.count(f"dn: {SC}") == 1 and "VO-atlas-a" not in out
    assert "prints a SubCluster itself, so gip cannot add its tags" in err


@pytest.mark.parametrize("printed", [f"dn: {SC[:30]}\n {SC[30:]}\n", f"x: y dn: {SC}\n"], ids=["folded", "in-a-line"])
def test_wrap_sees_a_subcluster_the_plugin_prints_as_bdii_update_reads_it(site, capsys, printed):
    plugin = batch_plugin(site, f"dn: {CE}\nGlueCEStateStatus: Production\n\n{printed}GlueSubClusterLogicalCPUs: 8\n")
    assert main([*args(site, "wrap"), "--", *plugin]) == 1
    out, err = capsys.readouterr()
    assert "VO-atlas-a" not in out
    assert "prints a SubCluster itself, so gip cannot add its tags" in err


def example_argv(command: List[str], tmp_path: Path) -> Tuple[Path, List[str]]:
    """etc/, and the argv of ``command`` (a subcommand, then its own options) run on the example site."""
    etc = Path(__file__).resolve().parent.parent / "etc"
    argv = [command[0], "--site-info", str(etc / "site-info.def"), "--info-dir", str(etc / "info"),
            "--bdii-ldif-dir", str(tmp_path)]
    for static in sorted((etc / "static").glob("*.ldif")):
        argv += ["--static-ldif", str(static)]
    return etc, argv + command[1:]


@pytest.mark.parametrize("command", [
    ["plugin"], ["merged"], ["check"], ["wrap", "--", "cat", "static-file-CE.ldif"],
], ids=" ".join)
def test_a_run_loads_no_module_it_does_not_use(command, tmp_path):
    """Jinja2, python-ldap, dataclasses, base64, shutil and logging cost a run more than its work on a small site."""
    import subprocess

    etc, argv = example_argv(command, tmp_path)
    unused = ('jinja2', 'ldap', 'ldif', 'dataclasses', 'base64', 'shutil', 'logging')
    code = ("import sys\nfrom gip.cli.provider import main\nmain(sys.argv[1:])\n"
            f"print(sorted(m for m in {unused!r} if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=etc / "static")
    assert result.stderr.splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", [
    ["plugin"], ["plugin", "--glue", "both"], ["merged"], ["check"], ["check", "--glue", "both"],
    ["wrap", "--glue", "both", "--", "cat", "static-file-CE.ldif", "ComputingShare.ldif"],
], ids=" ".join)
def test_a_run_does_not_import_typing(command, tmp_path):
    """typing costs every run about 2 ms and is of no use at run time: the modules a run loads import
    it for mypy only, and make their records with gip._records. Jinja2, which the templates and the
    GLUE 2 ApplicationEnvironments of merged need, imports it itself."""
    import subprocess

    etc, argv = example_argv(command, tmp_path)
    code = ("import sys\nfrom gip.cli.provider import main\nmain(sys.argv[1:])\n"
            "print('typing' in sys.modules, file=sys.stderr)")
    # Without site (-S): an editable install's import hook loads importlib.util, and on Python 3.9
    # that imports typing before gip does anything; an installed gip has no such hook.
    env = {**os.environ, "PYTHONPATH": str(etc.parent)}
    result = subprocess.run([sys.executable, "-S", "-c", code, *argv], capture_output=True, text=True,
                            cwd=etc / "static", env=env)
    assert result.stdout and result.stderr.splitlines()[-1] == "False"


@pytest.mark.parametrize("command", ["plugin", "check"])
def test_the_command_prints_and_exits_as_main_returns_without_the_interpreter_teardown(command, tmp_path):
    import subprocess

    etc = Path(__file__).resolve().parent.parent / "etc"
    argv = [command, "--site-info", str(etc / "site-info.def"), "--info-dir", str(etc / "info")]
    for static in sorted((etc / "static").glob("*.ldif")):
        argv += ["--static-ldif", str(static)]
    runs = []
    for call in ("sys.exit(main())", "console_main()", "start.provider()"):
        code = ("import atexit, sys\nfrom gip.cli import start\nfrom gip.cli.provider import console_main, main\n"
                "atexit.register(lambda: print('torn down', file=sys.stderr))\n"
                f"sys.argv[1:] = {argv!r}\n{call}\n")
        runs.append(subprocess.run([sys.executable, "-c", code], capture_output=True))
    by_main, by_command, by_script = runs
    assert by_main.stdout and by_command.stdout == by_main.stdout == by_script.stdout
    assert by_script.returncode == by_command.returncode == by_main.returncode == 1  # the example's bad tags
    untimed = [re.sub(rb"(?m)^\S+T\S+ ", b"", run.stderr) for run in runs]
    assert untimed[0].endswith(b"torn down\n") and (b"WARNING" in untimed[0]) == (command == "plugin")
    assert untimed[1] == untimed[2] == untimed[0][:-len(b"torn down\n")]


def test_the_console_script_is_the_entry_point_that_loads_gip_without_the_collector():
    import configparser
    import gc

    from gip.cli import start

    assert gc.isenabled()  # importing it changes nothing
    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    scripts = dict(line.split(" = ") for line in config["options.entry_points"]["console_scripts"].split("\n") if line)
    assert scripts["gip-provider"] == "gip.cli.start:provider" and callable(start.provider)
