"""The integration harness against the real programs: slapd with the GLUE schemas, bdii-update -d.

Also pins down the facts of DESIGN.md §3 that gip's output relies on, measured
here with the packaged programs rather than taken on trust.
"""

from __future__ import annotations

import io
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import ldif
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip.dnkey import dn_key
from tests.support import integration
from tests.support.bdii import bdii_config, client_wrapper, completed_cycles
from tests.support.integration import REQUIRE_ENV, free_port, pid_alive, require_files, require_programs, stop_pid
from tests.support.ldifmap import (
    bdii_map, by_dn_key, ldif_map, ldif_records, modify_map, record_dn, split_bdii_output,
)
from tests.support.slapd import Rejected, databases, rewrite_config

DATA = Path(__file__).parent / "data" / "harness"
SITE_LDIF = (DATA / "site.ldif").read_text()
SUBCLUSTER = "GlueSubClusterUniqueID=ce01.example.org,GlueClusterUniqueID=ce01.example.org,mds-vo-name=resource,o=grid"
CE = "GlueCEUniqueID=ce01.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid"
GPU_SUBCLUSTER = (
    "GlueSubClusterUniqueID=ce01.example.org-gpu,GlueClusterUniqueID=ce01.example.org,"
    "mds-vo-name=resource,o=grid"
)
RTE = "gluehostapplicationsoftwareruntimeenvironment"


def cat_script(path: Path) -> str:
    return f"#!/bin/sh\nexec cat {shlex.quote(str(path))}\n"


def subcluster(uid: str, *rtes: str) -> str:
    lines = [
        f"dn: GlueSubClusterUniqueID={uid},GlueClusterUniqueID=ce01.example.org,mds-vo-name=resource,o=grid",
        "objectClass: GlueClusterTop", "objectClass: GlueSubCluster", "objectClass: GlueHostApplicationSoftware",
        f"GlueSubClusterUniqueID: {uid}",
    ]
    lines += [f"GlueHostApplicationSoftwareRunTimeEnvironment: {rte}" for rte in rtes]
    return "\n".join(lines) + "\n"


# -- integration.py ----------------------------------------------------------


def test_missing_program_skips_naming_it_and_its_package(monkeypatch, tmp_path):
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(integration, "SYSTEM_BIN_DIRS", ())
    with pytest.raises(pytest.skip.Exception) as caught:
        require_programs("sshd", "no-such-program-gip")
    assert str(caught.value) == (
        "integration test needs the programs sshd (Debian package openssh-server), no-such-program-gip"
    )


def test_only_missing_programs_are_named(monkeypatch):
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception) as caught:
        require_programs("sh", "no-such-program-gip")
    assert str(caught.value) == "integration test needs the program no-such-program-gip"


def test_missing_file_names_its_package(monkeypatch):
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    monkeypatch.setitem(integration.PACKAGES, "/nonexistent/Glue-CE.schema", "glue-schema")
    with pytest.raises(pytest.skip.Exception, match=r"/nonexistent/Glue-CE.schema \(Debian package glue-schema\)"):
        require_files("/nonexistent/Glue-CE.schema", __file__)


def test_missing_program_fails_when_integration_is_required(monkeypatch):
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no-such-program-gip"):
        require_programs("no-such-program-gip")


def test_found_programs_come_back_as_absolute_paths():
    paths = require_programs("sh")
    assert os.path.isabs(paths["sh"]) and os.access(paths["sh"], os.X_OK)


def test_free_port_can_be_bound():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 1024 <= port <= 65535


def _python_child(code: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def test_stop_pid_terminates_and_reaps_a_child():
    child = _python_child("import time; print('ready', flush=True); time.sleep(60)")
    assert stop_pid(child.pid) is True
    assert not pid_alive(child.pid)
    with pytest.raises(ChildProcessError):  # reaped already: no zombie left
        os.waitpid(child.pid, os.WNOHANG)
    child.wait()


def test_stop_pid_kills_what_ignores_sigterm():
    child = _python_child(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    started = time.monotonic()
    assert stop_pid(child.pid, timeout=0.3) is False
    assert not pid_alive(child.pid)
    assert time.monotonic() - started < 3


def test_stop_pid_of_a_finished_process_is_a_no_op():
    child = subprocess.Popen(["true"])
    child.wait()
    assert stop_pid(child.pid) is True


# -- the OpenLDAP client wrappers --------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        # what bdii-update 6.0.0 runs
        (["-d", "256", "-x", "-c", "-h", "127.0.0.1", "-p", "2170", "-D", "o=grid", "-y", "/r/grid"],
         ["-H", "ldap://127.0.0.1:2170", "-d", "256", "-x", "-c", "-D", "o=grid", "-y", "/r/grid"]),
        (["-LLL", "-x", "-h", "bdii.example.org:2170", "-b", "o=grid"],
         ["-H", "ldap://bdii.example.org:2170", "-LLL", "-x", "-b", "o=grid"]),
        (["-x", "-p", "2170"], ["-H", "ldap://localhost:2170", "-x"]),
        # what a fixed bdii runs: untouched
        (["-x", "-c", "-H", "ldap://127.0.0.1:2170", "-D", "o=grid"],
         ["-x", "-c", "-H", "ldap://127.0.0.1:2170", "-D", "o=grid"]),
        # a value that looks like -h stays the value of its option
        (["-b", "-h", "-x"], ["-b", "-h", "-x"]),
        (["-w", "-p"], ["-w", "-p"]),
        (["it's", "a b", "$HOME", "*", ""], ["it's", "a b", "$HOME", "*", ""]),
        ([], []),
    ],
    ids=["bdii-6.0.0-add", "bdii-6.0.0-search", "port-only", "fixed-bdii", "value-b", "value-w", "quoting", "none"],
)
def test_client_wrapper_turns_h_and_p_into_a_uri(tmp_path, argv, expected):
    real = tmp_path / "real"
    real.write_text("#!/bin/sh\nfor arg; do printf '%s\\n' \"$arg\"; done\n")
    real.chmod(0o755)
    wrapper = tmp_path / "ldapadd"
    wrapper.write_text(client_wrapper(str(real)))
    wrapper.chmod(0o755)
    output = subprocess.run([str(wrapper), *argv], stdout=subprocess.PIPE, text=True, check=True).stdout
    assert output.split("\n")[:-1] == expected


@pytest.mark.parametrize(
    "log, cycles",
    [
        ("", 0),
        ("t: [INFO] Starting Update Process\nt: [INFO] Starting Update\nt: [INFO] Running Plugins\n", 0),
        ("t: [INFO] Starting Update\nt: [INFO] Sleeping for 1 seconds\n", 1),
        # the tail of a cycle that began before the wait does not count
        ("t: [INFO] Sleeping for 1 seconds\nt: [INFO] Starting Update\nt: [INFO] Sleeping for 1 seconds\n", 1),
        ("t: [INFO] Starting Update\nt: [INFO] Sleeping for 1 seconds\n"
         "t: [INFO] Starting Update\nt: [INFO] Sleeping for 0 seconds\nt: [INFO] Starting Update\n", 2),
    ],
)
def test_completed_cycles_counts_whole_cycles(log, cycles):
    assert completed_cycles(log) == cycles


def test_bdii_config_refuses_what_bdii_update_would_cut():
    assert bdii_config({"BDII_PORT": 2170, "BDII_LOG_LEVEL": "INFO"}) == "BDII_PORT=2170\nBDII_LOG_LEVEL=INFO\n"
    with pytest.raises(ValueError, match="BDII_LDIF_DIR"):
        bdii_config({"BDII_LDIF_DIR": "/tmp/a#b"})


# -- slapd configuration -----------------------------------------------------

TEMPLATE = """include /etc/ldap/schema/core.schema
pidfile         /run/bdii/db/slapd.pid
argsfile        /run/bdii/db/slapd.args
# rootpw in a comment stays
database        mdb
suffix          "o=grid"
rootdn          "o=grid"
rootpw          $y$hash
directory       /var/lib/bdii/db/grid

database        relay
suffix          "GLUE2GroupName=services,o=glue"

database        mdb
suffix          "o=infosys"
rootdn          "o=infosys"
rootpw          $y$hash
directory       /var/lib/bdii/db/stats
"""


def test_rewrite_config_moves_files_and_sets_passwords(tmp_path):
    text = rewrite_config(TEMPLATE, tmp_path, {"o=grid": "secret1", "o=infosys": "secret2"})
    lines = text.splitlines()
    assert f"pidfile {tmp_path}/slapd.pid" in lines
    assert f"argsfile {tmp_path}/slapd.args" in lines
    assert f"directory {tmp_path}/db/grid" in lines
    assert f"directory {tmp_path}/db/stats" in lines
    assert [line for line in lines if line.startswith("rootpw")] == ["rootpw secret1", "rootpw secret2"]
    assert "# rootpw in a comment stays" in lines
    assert "/var/lib/bdii" not in text and "/run/bdii" not in text


def test_databases_are_those_with_a_root_account():
    assert [tuple(db) for db in databases(TEMPLATE)] == [("o=grid", "o=grid"), ("o=infosys", "o=infosys")]


@pytest.mark.parametrize(
    "text, records",
    [
        ("dn: o=a\no: a\n\n\ndn: o=b\no: b\n", ["dn: o=a\no: a\n", "dn: o=b\no: b\n"]),
        ("version: 1\n\ndn: o=a\r\no: a\r\n", ["dn: o=a\no: a\n"]),
        ("# only a comment\n\ndn: o=a\n# inside\no: a\n", ["dn: o=a\n# inside\no: a\n"]),
        ("dn: o=a\ndescription: folded\n  value\n", ["dn: o=a\ndescription: folded\n  value\n"]),
        ("\n\n", []),
    ],
)
def test_ldif_records_are_cut_at_blank_lines(text, records):
    assert ldif_records(text) == records


@pytest.mark.parametrize(
    "record, dn",
    [
        ("dn: o=grid\no: grid\n", "o=grid"),
        ("# a comment\ndn:   o=grid\n", "o=grid"),
        ("dn:: R2x1ZUNFVW5pcXVlSUQ9w6ksbz1ncmlk\n", "GlueCEUniqueID=\u00e9,o=grid"),
        ("dn:: not base64!\n", "dn:: not base64!"),
        ("not ldif\n", "not ldif"),
    ],
)
def test_record_dn_even_of_a_broken_record(record, dn):
    assert record_dn(record) == dn


# -- ldifmap -------------------------------------------------------------------


def test_ldif_map_normalizes_dn_and_attribute_names():
    text = (
        "dn: GlueCEUniqueID=ce:8443/long, Mds-Vo-Name = resource,o=grid\n"
        "GlueCEStateStatus: Production\nglueceStateStatus: Draining\n"
        "GlueCEName:: bG9uZw==\n"
    )
    assert ldif_map(text) == {
        "glueceuniqueid=ce:8443/long,mds-vo-name=resource,o=grid": {
            "gluecestatestatus": ["Production", "Draining"], "gluecename": ["long"],
        }
    }


def test_ldif_map_refuses_a_dn_twice():
    with pytest.raises(ValueError, match="twice"):
        ldif_map("dn: o=grid\no: grid\n\ndn: O=Grid\no: grid\n")


def test_modify_map_lists_operations_in_order():
    text = (DATA / "plugin-one.ldif").read_text() + "\ndn: o=grid\nchangetype: modify\ndelete: description\n-\n"
    assert modify_map(text) == {
        dn_key(SUBCLUSTER): [("add", RTE, ["VO-atlas-plugin-one"])],
        dn_key(CE): [("replace", "gluecestatestatus", ["PilotSCAS"])],
        "o=grid": [("delete", "description", [])],
    }


@pytest.mark.parametrize(
    "text",
    [
        "dn: o=grid\no: grid\n",
        "dn: o=grid\nchangetype: add\no: grid\n",
        "dn: o=grid\nchangetype: modify\nadd: o\no: a\n\ndn: O=grid\nchangetype: modify\nadd: o\no: b\n",
    ],
)
def test_modify_map_refuses_what_is_not_one_modify_block_per_dn(text):
    with pytest.raises(ValueError):
        modify_map(text)


def test_split_bdii_output_cuts_at_each_dn_line():
    output = "dn: o=grid\nobjectclass: organization\no: grid\ndn: o=glue\no: glue\n\n"
    assert split_bdii_output(output) == ["dn: o=grid\nobjectclass: organization\no: grid\n", "dn: o=glue\no: glue\n"]
    assert bdii_map(output) == {"o=grid": {"objectclass": ["organization"], "o": ["grid"]}, "o=glue": {"o": ["glue"]}}


def test_by_dn_key_matches_ldif_map_keys():
    result = {"GlueCEUniqueID=a,Mds-Vo-name=resource,o=grid": {"GlueCEName": ["a"]}}
    assert by_dn_key(result) == {"glueceuniqueid=a,mds-vo-name=resource,o=grid": {"gluecename": ["a"]}}


_attribute_names = st.sampled_from(["GlueCEName", "description", "GLUE2EntityOtherInfo", "o"])
# python-ldap's parser (like bdii-update) drops leading whitespace of a plain value, so none is generated.
_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30).filter(lambda v: v == v.lstrip())
_entries = st.dictionaries(_attribute_names, st.lists(_values, min_size=1, max_size=4), min_size=1)


@settings(max_examples=50)
@given(st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9.\-]{0,12}", fullmatch=True), _entries), unique_by=lambda e: e[0]))
def test_ldif_map_reads_back_what_python_ldap_writes(records):
    stream = io.StringIO()
    writer = ldif.LDIFWriter(stream)
    for name, entry in records:
        writer.unparse(f"GlueCEUniqueID={name},o=grid", {k: [v.encode() for v in vs] for k, vs in entry.items()})
    expected = {f"glueceuniqueid={name},o=grid": {k.lower(): vs for k, vs in entry.items()} for name, entry in records}
    assert ldif_map(stream.getvalue()) == expected


# -- GlueSlapd: what the BDII's slapd accepts ------------------------------------


def test_glue_entries_load_and_come_back(glue_slapd):
    assert glue_slapd.add_ldif(SITE_LDIF) == []
    expected = ldif_map(SITE_LDIF)
    found = {**by_dn_key(glue_slapd.search("o=grid")), **by_dn_key(glue_slapd.search("o=glue"))}
    for key, attributes in expected.items():
        assert found[key] == attributes
    assert found[dn_key(SUBCLUSTER)][RTE] == ["GLITE-3_2_0", "VO-atlas-production-17.2.1"]
    assert "glue2groupid=resource,o=glue" in found and "mds-vo-name=resource,o=grid" in found


def test_search_with_filter_and_attributes(glue_slapd):
    glue_slapd.add_ldif(SITE_LDIF)
    found = glue_slapd.search("o=grid", "(GlueHostApplicationSoftwareRunTimeEnvironment=vo-atlas-*)", [RTE])
    assert by_dn_key(found) == {dn_key(SUBCLUSTER): {RTE: ["GLITE-3_2_0", "VO-atlas-production-17.2.1"]}}
    assert glue_slapd.search("GlueClusterUniqueID=absent,mds-vo-name=resource,o=grid") == {}


@pytest.mark.parametrize(
    "rtes, error",
    [
        (["VO-atlas-Production-1", "VO-atlas-production-1"], "Type or value exists"),
        (["VO-atlas-ok", "VO-atlas-caf\u00e9"], "Invalid syntax"),
    ],
)
def test_one_bad_rte_value_rejects_the_whole_entry(glue_slapd, rtes, error):
    assert glue_slapd.add_ldif(SITE_LDIF) == []
    rejected = glue_slapd.add_ldif(subcluster("bad", *rtes) + "\n" + subcluster("good", "VO-atlas-fine"))
    bad_dn = "GlueSubClusterUniqueID=bad,GlueClusterUniqueID=ce01.example.org,mds-vo-name=resource,o=grid"
    assert [r.dn for r in rejected] == [bad_dn]
    assert error in rejected[0].message
    uids = {v for attrs in glue_slapd.search("o=grid", "(objectClass=GlueSubCluster)").values()
            for v in attrs["gluesubclusteruniqueid"]}
    assert uids == {"ce01.example.org", "good"}  # nothing of the bad entry, the next one loaded


def test_ce_state_is_single_valued_replace_not_add(glue_slapd):
    glue_slapd.add_ldif(SITE_LDIF)
    block = f"dn: {CE}\nchangetype: modify\n%s: GlueCEStateStatus\nGlueCEStateStatus: PilotSCAS\n"
    rejected = glue_slapd.add_ldif(block % "add")
    assert len(rejected) == 1 and "Constraint violation" in rejected[0].message
    assert glue_slapd.add_ldif(block % "replace") == []
    assert list(glue_slapd.search(CE, attrs=["GlueCEStateStatus"]).values()) == [{"gluecestatestatus": ["PilotSCAS"]}]


def test_slapd_leaves_glue2_enumerations_and_utf8_to_us(glue_slapd):
    assert glue_slapd.add_ldif(SITE_LDIF) == []
    share = (
        "dn: GLUE2ShareID=long_atlas,GLUE2ServiceID=ce01.example.org_ComputingElement,GLUE2GroupID=resource,o=glue\n"
        "objectClass: GLUE2Entity\nobjectClass: GLUE2Share\nobjectClass: GLUE2ComputingShare\n"
        "GLUE2ShareID: long_atlas\nGLUE2ShareServiceForeignKey: ce01.example.org_ComputingElement\n"
        "GLUE2ComputingShareServingState: PilotSCAS\nGLUE2EntityOtherInfo: caf\u00e9=1\n"
    )
    # Loads although PilotSCAS is no ServingState: gip has to keep to the enumeration itself.
    assert glue_slapd.add_ldif(share) == []
    found = glue_slapd.search("o=glue", "(objectClass=GLUE2ComputingShare)")
    assert [attrs["glue2computingshareservingstate"] for attrs in found.values()] == [["PilotSCAS"]]
    assert [attrs["glue2entityotherinfo"] for attrs in found.values()] == [["caf\u00e9=1"]]


def test_add_ldif_reports_every_refusal_and_goes_on(glue_slapd):
    text = "dn: o=elsewhere\no: elsewhere\nobjectClass: organization\n\n" + f"dn: {CE}\nnot ldif\n\n" + SITE_LDIF
    rejected = glue_slapd.add_ldif(text)
    assert [r.dn for r in rejected] == ["o=elsewhere", CE]
    assert isinstance(rejected[1], Rejected) and rejected[1].message.startswith("LDIF: ")
    assert dn_key(SUBCLUSTER) in by_dn_key(glue_slapd.search())


@pytest.mark.integration
def test_slapd_stops_by_pid(tmp_path):
    from tests.support.slapd import GlueSlapd, require_glue_slapd

    require_glue_slapd()
    with GlueSlapd(tmp_path) as server:
        pid = server.pid
        assert pid is not None and pid_alive(pid)
        assert server.search("o=grid") == {}  # no base entries until load_base()
    assert not pid_alive(pid)


# -- bdii-update without -d: what one cycle would load, no slapd needed ------------

STATIC_SC = (
    "dn: GlueSubClusterUniqueID=sc,mds-vo-name=resource,o=grid\nobjectClass: GlueSubCluster\n"
    "GlueSubClusterUniqueID: sc\nGlueSubClusterName: old\nGlueHostApplicationSoftwareRunTimeEnvironment: VO-a-1\n"
)
SC = "GlueSubClusterUniqueID=sc,mds-vo-name=resource,o=grid"
OS_NAME = "gluehostoperatingsystemname"


@pytest.mark.parametrize(
    "block, attribute, values",
    [
        # changetype: modify -- add creates or extends
        ("changetype: modify\nadd: GlueHostOperatingSystemName\nGlueHostOperatingSystemName: Linux\n",
         OS_NAME, ["Linux"]),
        ("changetype: modify\nadd: GlueHostApplicationSoftwareRunTimeEnvironment\n"
         "GlueHostApplicationSoftwareRunTimeEnvironment: VO-a-2\n", RTE, ["VO-a-1", "VO-a-2"]),
        # replace is ignored when the attribute is absent
        ("changetype: modify\nreplace: GlueHostOperatingSystemName\nGlueHostOperatingSystemName: Linux\n",
         OS_NAME, None),
        ("changetype: modify\nreplace: GlueSubClusterName\nGlueSubClusterName: new\n", "gluesubclustername", ["new"]),
        ("changetype: modify\ndelete: GlueSubClusterName\n", "gluesubclustername", None),
        # an exact repeat is dropped; a repeat differing in case is kept (and slapd would reject the entry)
        ("changetype: modify\nadd: GlueHostApplicationSoftwareRunTimeEnvironment\n"
         "GlueHostApplicationSoftwareRunTimeEnvironment: VO-a-1\n", RTE, ["VO-a-1"]),
        ("changetype: modify\nadd: GlueHostApplicationSoftwareRunTimeEnvironment\n"
         "GlueHostApplicationSoftwareRunTimeEnvironment: vo-A-1\n", RTE, ["VO-a-1", "vo-A-1"]),
        # two operations on one attribute in one block are merged: the deleted value comes back
        ("changetype: modify\ndelete: GlueHostApplicationSoftwareRunTimeEnvironment\n"
         "GlueHostApplicationSoftwareRunTimeEnvironment: VO-a-1\n-\n"
         "add: GlueHostApplicationSoftwareRunTimeEnvironment\nGlueHostApplicationSoftwareRunTimeEnvironment: VO-a-2\n",
         RTE, ["VO-a-1", "VO-a-2"]),
        # old style (no changetype): attributes the entry has are replaced, new ones dropped
        ("GlueSubClusterName: new\nGlueHostOperatingSystemName: Linux\n", "gluesubclustername", ["new"]),
        ("GlueSubClusterName: new\nGlueHostOperatingSystemName: Linux\n", OS_NAME, None),
    ],
    ids=[
        "add-creates", "add-extends", "replace-absent-ignored", "replace-present", "delete",
        "exact-repeat-dropped", "case-repeat-kept", "delete-and-add-merged", "old-style-replaces",
        "old-style-drops-new",
    ],
)
def test_plugin_blocks_as_bdii_update_merges_them(bdii, block, attribute, values):
    instance = bdii(default_ldif=False)
    instance.add_static("site.ldif", STATIC_SC)
    instance.add_plugin("plugin", f"#!/bin/sh\ncat <<'EOF'\ndn: {SC}\n{block}EOF\n")
    entry = bdii_map(instance.merged_ldif())[dn_key(SC)]
    assert entry.get(attribute) == values


def test_static_entries_win_over_providers_and_dn_in_a_value_splits_an_entry(bdii):
    instance = bdii(default_ldif=False)
    instance.add_static("site.ldif", STATIC_SC)
    instance.add_provider("a", f"#!/bin/sh\nprintf 'dn: {SC}\\nGlueSubClusterName: from-provider\\n\\n'\n")
    instance.add_provider("b", "#!/bin/sh\nprintf 'dn: o=grid\\ndescription: xdn: o=evil\\n\\n'\n")
    merged = bdii_map(instance.merged_ldif())
    assert merged[dn_key(SC)]["gluesubclustername"] == ["old"]
    assert merged["o=grid"] == {"description": ["x"]}  # the value was cut at 'dn:'
    assert merged["o=evil"] == {}


# -- a real BDII in daemon mode ------------------------------------------------


@pytest.mark.slow
def test_bdii_loads_static_providers_and_plugins_and_follows_changes(bdii):
    instance = bdii()
    instance.add_static("site.ldif", SITE_LDIF)
    instance.add_provider("gpu", cat_script(DATA / "provider.ldif"))
    instance.add_plugin("tags", cat_script(DATA / "plugin-one.ldif"))
    instance.start()
    started = time.monotonic()
    instance.wait_cycles(1)
    first_cycle = time.monotonic() - started

    found = by_dn_key(instance.search())
    assert found[dn_key(SUBCLUSTER)][RTE] == ["GLITE-3_2_0", "VO-atlas-production-17.2.1", "VO-atlas-plugin-one"]
    assert found[dn_key(CE)]["gluecestatestatus"] == ["PilotSCAS"]
    assert found[dn_key(GPU_SUBCLUSTER)][RTE] == ["VO-cms-CMSSW_3_8_4"]
    assert "glue2groupid=resource,o=glue" in by_dn_key(instance.search("o=glue"))

    instance.add_plugin("tags", cat_script(DATA / "plugin-two.ldif"))
    started = time.monotonic()
    instance.wait_cycles(1)
    next_cycle = time.monotonic() - started
    found = by_dn_key(instance.search())
    assert found[dn_key(SUBCLUSTER)][RTE] == ["GLITE-3_2_0", "VO-atlas-production-17.2.1", "VO-atlas-plugin-two"]
    assert found[dn_key(CE)]["gluecestatestatus"] == ["PilotSCAS"]

    merged = bdii_map(instance.merged_ldif())
    for key in (dn_key(SUBCLUSTER), dn_key(CE), dn_key(GPU_SUBCLUSTER)):
        assert merged[key] == found[key]
    assert instance.warnings() == []

    pids = [instance.slapd.pid, *instance.processes()]
    assert instance.pid in pids
    instance.stop()
    assert [pid for pid in pids if pid is not None and pid_alive(pid)] == []
    print(f"bdii cycles: first {first_cycle:.2f} s (includes the daemon's 3 s start pause), next {next_cycle:.2f} s")


@pytest.mark.slow
def test_stop_ends_what_bdii_update_is_running(bdii):
    instance = bdii()
    marker = instance.root / "plugin-ran"
    instance.add_plugin("slow", f"#!/bin/sh\ntouch {shlex.quote(str(marker))}\nsleep 60\n")
    instance.start()
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, instance.diagnostics()
        time.sleep(0.05)
    running: List[int] = instance.processes()
    assert len(running) >= 3  # the daemon, its reader child, the plugin's shell (and its sleep)
    instance.stop()
    assert [pid for pid in running if pid_alive(pid)] == []
    assert instance.processes() == []


@pytest.mark.slow
def test_refusals_reach_the_log_and_debug_keeps_the_cycle_files(bdii):
    instance = bdii(debug=True)
    instance.add_static("site.ldif", SITE_LDIF)
    instance.add_static("bad.ldif", subcluster("bad", "VO-atlas-A", "VO-atlas-a"))
    instance.start()
    instance.wait_cycles(1)
    # bdii-update passes values differing only in case on to slapd, which refuses the whole entry
    bad = "GlueSubClusterUniqueID=bad,GlueClusterUniqueID=ce01.example.org,mds-vo-name=resource,o=grid"
    assert bdii_map(instance.var_text("new.ldif"))[dn_key(bad)][RTE] == ["VO-atlas-A", "VO-atlas-a"]
    found = by_dn_key(instance.search())
    assert dn_key(bad) not in found and dn_key(SUBCLUSTER) in found
    assert any("Type or value exists" in line for line in instance.warnings())
    # ... and its FailedAdds counter does not see it (see BdiiInstance.warnings)
    assert "[INFO] FailedAdds: 0" in instance.log_text()
    assert "Type or value exists" in instance.diagnostics()
