"""gip-provider end to end: its output in a real slapd, and the example site in a real BDII.

The example site is etc/ as shipped (site-info.def, YAIM's static LDIF, a tag
tree with bad tags in it); the BDII runs the wrapper scripts of etc/bdii/ as
they are, configured by environment variables only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

from gip.cli.provider import main

ETC = Path(__file__).resolve().parent.parent / "etc"
RTE = "gluehostapplicationsoftwareruntimeenvironment"
CE_HOST = "ce.example.org"
MAIN_SC = f"GlueSubClusterUniqueID={CE_HOST},GlueClusterUniqueID={CE_HOST},mds-vo-name=resource,o=grid"
EL9_SC = f"GlueSubClusterUniqueID=wn-el9.example.org,GlueClusterUniqueID={CE_HOST},mds-vo-name=resource,o=grid"

STATIC_RTE = [
    "LCG-2", "LCG-2_1_0", "LCG-2_1_1", "LCG-2_2_0", "LCG-2_3_0", "LCG-2_3_1", "LCG-2_4_0",
    "LCG-2_5_0", "LCG-2_6_0", "LCG-2_7_0", "GLITE-3_0_0", "GLITE-3_1_0", "GLITE-3_2_0", "R-GMA",
]
# Every valid tag of etc/info, in the order gip publishes them: VOs by name, each VO's sorted.
GLOBAL_TAGS = [
    "VO-atlas-AtlasOffline-17.2.7",
    "VO-atlas-production-15.6.3-i686-slc5-gcc43-opt",
    "VO-atlas-production-17.2.1",
    "VO-atlas-production-17.2.2",
    "VO-cms-CMSSW_3_8_4",
    "VO-cms-CMSSW_4_2_8",
    "VO-cms-CMSSW_5_3_11",
    "VO-cms-pilot",
    "VO-dteam-test-1.0",
    "VO-dteam-test-2.0",
    "VO-ops-indented-line",
    "VO-ops-sam-nagios",
    "VO-vo.example.org-app-1.0",
    "VO-vo.example.org-app-2.0",
]
EL9_OWN_TAGS = ["VO-atlas-el9-only-1.0"]
# Tokens of etc/info that must never be published, compared case-sensitively.
INVALID = {
    "VO-cms-CMSSW_9_9_9",  # in atlas's file
    "dn:",
    "GlueSubClusterUniqueID=evil",
    "VO-cms-cmssw_3_8_4",  # a second spelling
    "VO-cms-caf\u00e9",
    "VO-ops-test/1",
    "VO-ops-" + "x" * 260,
    "VO-example-wrong",
    "VO-biomed-CVMFS",  # VO not in VOS
    "VO-cms-orphan-1.0",  # SubCluster that does not exist
    "VO-atlas-PRODUCTION-17.2.2",  # a second spelling, per SubCluster
}
STATES = {"long": "PilotSCAS", "short": "Closed", "sgm": "PilotSCAS"}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of the example site, so a test can change its tag files."""
    copy = tmp_path / "site"
    shutil.copytree(ETC, copy)
    return copy


def provider_program() -> str:
    installed = Path(sys.executable).parent / "gip-provider"
    found = str(installed) if installed.exists() else shutil.which("gip-provider")
    if found is None:
        pytest.fail("the gip-provider console script is not installed")
    return found


def wrapper_env(site: Path, **extra: str) -> Dict[str, str]:
    """The environment of the etc/bdii wrappers: where the example site is, nothing else."""
    env = {
        "GIP_PROVIDER": provider_program(),
        "GIP_DEFAULTS": str(site / "no-defaults-file"),
        "GIP_SITE_INFO": str(site / "site-info.def"),
        "GIP_STATIC_LDIF": f"{site}/static/static-file-CE.ldif:{site}/static/static-file-Cluster.ldif",
        "EDG_LOCATION_VAR": str(site),
    }
    env.update(extra)
    return env


def provider_output(capsysbinary: pytest.CaptureFixture[bytes], site: Path, *argv: str) -> str:
    static = [f"--static-ldif={site}/static/static-file-CE.ldif", f"--static-ldif={site}/static/static-file-Cluster.ldif"]
    options = [f"--site-info={site}/site-info.def", f"--info-dir={site}/info", *static]
    code = main([argv[0], *options, *argv[1:]])
    assert code == 1  # the example site holds bad tags on purpose
    return capsysbinary.readouterr().out.decode("ascii")


def by_key(result: Dict[str, Dict[str, List[str]]]) -> Dict[str, Dict[str, List[str]]]:
    from tests.support.ldifmap import by_dn_key

    return by_dn_key(result)


def key(dn: str) -> str:
    from gip.dnkey import dn_key

    return dn_key(dn)


def assert_example_published(entries: Dict[str, Dict[str, List[str]]], el9: bool = True) -> None:
    """Every valid tag on every SubCluster, nothing invalid, the states of site-info.def."""
    main_tags = entries[key(MAIN_SC)][RTE]
    assert main_tags == STATIC_RTE + GLOBAL_TAGS
    if el9:
        assert entries[key(EL9_SC)][RTE] == ["GLITE-3_2_0"] + GLOBAL_TAGS + EL9_OWN_TAGS
    published = {value for entry in entries.values() for value in entry.get(RTE, [])}
    assert not published & INVALID
    for queue, state in STATES.items():
        ce = f"GlueCEUniqueID={CE_HOST}:8443/cream-pbs-{queue},mds-vo-name=resource,o=grid"
        assert entries[key(ce)]["gluecestatestatus"] == [state]


def remove_tag(site: Path, tag: str) -> None:
    path = site / "info" / "atlas" / "atlas.ldif"
    text = path.read_text()
    assert tag in text
    path.write_text(text.replace(tag, ""))


# -- (a) every mode's output loads into slapd without a rejected entry -------------


def static_ldif(site: Path) -> str:
    return "\n".join((site / "static" / name).read_text() for name in ("static-file-CE.ldif", "static-file-Cluster.ldif"))


def test_plugin_output_applies_to_the_static_entries(glue_slapd, site, capsysbinary):
    assert glue_slapd.add_ldif(static_ldif(site)) == []
    output = provider_output(capsysbinary, site, "plugin")
    assert glue_slapd.add_ldif(output) == []
    assert_example_published(by_key(glue_slapd.search()))


def test_merged_output_loads_whole(glue_slapd, site, capsysbinary):
    output = provider_output(capsysbinary, site, "merged")
    assert glue_slapd.add_ldif(output) == []
    entries = by_key(glue_slapd.search())
    assert_example_published(entries)
    static_dns = {key(line[4:]) for line in static_ldif(site).splitlines() if line.startswith("dn: ")}
    assert static_dns <= set(entries)
    assert len(entries) == 3 + len(static_dns)  # and o=grid's base entries


def test_merged_from_templates_loads_whole(glue_slapd, site, capsysbinary):
    output = provider_output(capsysbinary, site, "merged", "--base", "templates")
    assert glue_slapd.add_ldif(output) == []
    entries = by_key(glue_slapd.search())
    assert entries[key(MAIN_SC)][RTE] == STATIC_RTE + GLOBAL_TAGS
    assert_example_published(entries, el9=False)
    long_ce = key(f"GlueCEUniqueID={CE_HOST}:8443/cream-pbs-long,mds-vo-name=resource,o=grid")
    assert entries[long_ce]["gluecestatestatus"] == ["PilotSCAS"]
    assert entries[long_ce]["glueceaccesscontrolbaserule"] == [
        "VO:atlas", "VOMS:/atlas/ROLE=production", "VO:cms", "VO:vo.example.org"
    ]


# -- (b) the plugin wrapper beside YAIM's static files ------------------------------


def test_plugin_wrapper_in_a_real_bdii(bdii: Callable[..., object], site: Path):
    server = bdii(env=wrapper_env(site))
    for name in ("static-file-CE.ldif", "static-file-Cluster.ldif"):
        server.add_static(name, (site / "static" / name).read_text())
    server.add_plugin("gip-bdii-plugin", (ETC / "bdii" / "gip-bdii-plugin").read_text())
    server.start()
    server.wait_cycles(1)
    assert_example_published(by_key(server.search()))
    remove_tag(site, "VO-atlas-production-17.2.2")
    server.wait_cycles(1)
    entries = by_key(server.search())
    assert "VO-atlas-production-17.2.2" not in entries[key(MAIN_SC)][RTE]
    assert "VO-atlas-production-17.2.1" in entries[key(MAIN_SC)][RTE]


# -- (c) the provider wrapper, static files out of ldif/ ----------------------------


def test_provider_wrapper_in_a_real_bdii(bdii: Callable[..., object], site: Path):
    server = bdii(env=wrapper_env(site))
    server.add_provider("gip-bdii-provider", (ETC / "bdii" / "gip-bdii-provider").read_text())
    server.start()
    server.wait_cycles(1)
    assert_example_published(by_key(server.search()))
    remove_tag(site, "VO-atlas-production-17.2.2")
    server.wait_cycles(1)
    assert "VO-atlas-production-17.2.2" not in by_key(server.search())[key(EL9_SC)][RTE]


def templates_provider_in_a_bdii(bdii: Callable[..., Any], site: Path) -> Tuple[Any, Dict[str, Dict[str, List[str]]]]:
    """A real BDII running the provider wrapper with the templates as base, and what it holds after a cycle."""
    server = bdii(env=wrapper_env(site, GIP_BASE="templates"))
    server.add_provider("gip-bdii-provider", (ETC / "bdii" / "gip-bdii-provider").read_text())
    server.start()
    server.wait_cycles(1)
    entries = by_key(server.search())
    assert_example_published(entries, el9=False)
    return server, entries


def test_provider_wrapper_from_templates_in_a_real_bdii(bdii: Callable[..., object], site: Path):
    _, entries = templates_provider_in_a_bdii(bdii, site)
    assert key(EL9_SC) not in entries


def test_a_kept_render_publishes_the_tags_of_each_cycle_in_a_real_bdii(bdii: Callable[..., Any], site: Path,
                                                                        tmp_path: Path):
    """From templates the render is kept between cycles (gip.rendercache), never the tags."""
    cache = tmp_path / "render-cache"
    server = bdii(env=wrapper_env(site, GIP_BASE="templates", GIP_CACHE_DIR=str(cache)))
    server.add_provider("gip-bdii-provider", (ETC / "bdii" / "gip-bdii-provider").read_text())
    server.start()
    server.wait_cycles(1)
    assert_example_published(by_key(server.search()), el9=False)
    (kept,) = cache.glob("*.record")
    made = kept.stat()
    remove_tag(site, "VO-atlas-production-17.2.2")
    server.wait_cycles(1)
    entries = by_key(server.search())
    assert entries[key(MAIN_SC)][RTE] == [tag for tag in STATIC_RTE + GLOBAL_TAGS if tag != "VO-atlas-production-17.2.2"]
    # Read back, not made again: a new record would be a new file, renamed into place.
    assert list(cache.glob("*.record")) == [kept]
    assert (kept.stat().st_ino, kept.stat().st_mtime_ns) == (made.st_ino, made.st_mtime_ns)


def test_a_typo_in_ce_state_does_not_take_the_site_out_of_a_real_bdii(bdii: Callable[..., object], site: Path):
    """From templates every entry comes from site-info.def: an unusable CE_STATE costs the state, not the site."""
    server, before = templates_provider_in_a_bdii(bdii, site)
    site_info = site / "site-info.def"
    site_info.write_text(site_info.read_text().replace("CE_STATE=PilotSCAS", "CE_STATE=Pilot\u00a0SCAS"))
    server.wait_cycles(1)
    after = by_key(server.search())
    assert after.keys() == before.keys()
    assert after[key(MAIN_SC)][RTE] == STATIC_RTE + GLOBAL_TAGS
    states = {queue: after[key(f"GlueCEUniqueID={CE_HOST}:8443/cream-pbs-{queue},mds-vo-name=resource,o=grid")]
              ["gluecestatestatus"] for queue in STATES}
    # Without CE_STATE the queues keep the state they start with; short's own is still set.
    assert states == {"long": ["Production"], "short": ["Closed"], "sgm": ["Production"]}


def test_plugin_wrapper_wrapping_a_batch_plugin_in_a_real_bdii(bdii: Callable[..., object], site: Path):
    """The batch system's plugin prints Production every cycle: wrapped, it cannot undo the CE state."""
    batch = site / "batch-plugin"
    blocks = "".join(
        f"dn: GlueCEUniqueID={CE_HOST}:8443/cream-pbs-{queue},mds-vo-name=resource,o=grid\n"
        f"GlueCEStateRunningJobs: 5\nGlueCEStateStatus: {'Draining' if queue == 'sgm' else 'Production'}\n\n"
        for queue in STATES
    )
    batch.write_text(f"#!/bin/sh\ncat <<'EOF'\n{blocks}EOF\n")
    batch.chmod(0o755)
    server = bdii(env=wrapper_env(site, GIP_BATCH_PLUGIN=str(batch), GIP_WRAP_TIMEOUT="30"))
    for name in ("static-file-CE.ldif", "static-file-Cluster.ldif"):
        server.add_static(name, (site / "static" / name).read_text())
    server.add_plugin("gip-bdii-plugin", (ETC / "bdii" / "gip-bdii-plugin").read_text())
    server.start()
    server.wait_cycles(1)
    entries = by_key(server.search())
    states = {queue: entries[key(f"GlueCEUniqueID={CE_HOST}:8443/cream-pbs-{queue},mds-vo-name=resource,o=grid")]
              for queue in STATES}
    # production-only: the batch system's Draining stays; its Production becomes the site's state.
    assert {queue: entry["gluecestatestatus"] for queue, entry in states.items()} == {
        "long": ["PilotSCAS"], "short": ["Closed"], "sgm": ["Draining"]
    }
    assert all(entry["gluecestaterunningjobs"] == ["5"] for entry in states.values())
    assert entries[key(MAIN_SC)][RTE] == STATIC_RTE + GLOBAL_TAGS


# -- (d) a site whose static LDIF is parsed in a child process -----------------------


def enlarge_static_ce(site: Path, queues: int) -> List[str]:
    """Adds ``queues`` GlueCEs to the site's static CE file, each a copy of queue long's with its own
    name, so that the file is larger than what the provider parses in-process; returns their DNs."""
    path = site / "static" / "static-file-CE.ldif"
    text = path.read_text()
    long_ce = text[:text.index("\n\n") + 2]
    assert "GlueCEName: long\n" in long_ce and "GlueCEStateStatus: Production\n" in long_ce
    names = [f"extra{n:03d}" for n in range(queues)]
    copies = [long_ce.replace("cream-pbs-long", f"cream-pbs-{name}").replace("GlueCEName: long", f"GlueCEName: {name}")
              for name in names]
    path.write_text(text + "\n" + "".join(copies))
    from gip.staticldif import BACKGROUND_BYTES

    assert path.stat().st_size > BACKGROUND_BYTES
    return [f"GlueCEUniqueID={CE_HOST}:8443/cream-pbs-{name},mds-vo-name=resource,o=grid" for name in names]


@pytest.mark.parametrize("folder", ["plugin", "provider"])
def test_a_large_static_ldif_parsed_in_a_child_in_a_real_bdii(bdii: Callable[..., object], site: Path, folder: str):
    """The static LDIF of a large CE is parsed beside the tag files: a real BDII holds every entry alike."""
    from gip import background

    extra = enlarge_static_ce(site, 160)
    if background.available():
        done = subprocess.run([provider_program(), "plugin", "-vv", f"--site-info={site}/site-info.def",
                               f"--info-dir={site}/info", f"--static-ldif={site}/static/static-file-CE.ldif"],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 1, done.stderr
        assert "is parsed in a child process while the tag files are read" in done.stderr
    server = bdii(env=wrapper_env(site))
    if folder == "plugin":
        for name in ("static-file-CE.ldif", "static-file-Cluster.ldif"):
            server.add_static(name, (site / "static" / name).read_text())
        server.add_plugin("gip-bdii-plugin", (ETC / "bdii" / "gip-bdii-plugin").read_text())
    else:
        server.add_provider("gip-bdii-provider", (ETC / "bdii" / "gip-bdii-provider").read_text())
    server.start()
    server.wait_cycles(1)
    entries = by_key(server.search())
    assert_example_published(entries)
    # CE_STATE=PilotSCAS replaces each copy's Production, as it does long's.
    assert [entries[key(dn)]["gluecestatestatus"] for dn in extra] == [["PilotSCAS"]] * len(extra)


def test_a_kept_reading_of_large_static_files_follows_their_changes_in_a_real_bdii(bdii: Callable[..., Any],
                                                                                    site: Path, tmp_path: Path):
    """The child's reading is kept between cycles (gip.rendercache) while the static files are unchanged."""
    from gip import background

    if not background.available():
        pytest.skip("gip parses the static LDIF in one process here (no fork, or one CPU): nothing is kept")
    extra = enlarge_static_ce(site, 160)
    cache = tmp_path / "kept"
    server = bdii(env=wrapper_env(site, GIP_CACHE_DIR=str(cache)))
    server.add_provider("gip-bdii-provider", (ETC / "bdii" / "gip-bdii-provider").read_text())
    server.start()
    server.wait_cycles(1)
    assert_example_published(by_key(server.search()))
    (kept,) = cache.glob("*.record")
    made = kept.stat()

    def states() -> List[List[str]]:
        entries = by_key(server.search())
        return [entries[key(dn)]["gluecestatestatus"] for dn in extra]

    assert states() == [["PilotSCAS"]] * len(extra)
    remove_tag(site, "VO-atlas-production-17.2.2")
    server.wait_cycles(1)
    assert "VO-atlas-production-17.2.2" not in by_key(server.search())[key(MAIN_SC)][RTE]
    # Read back, not made again: a new record would be a new file, renamed into place.
    assert list(cache.glob("*.record")) == [kept]
    assert (kept.stat().st_ino, kept.stat().st_mtime_ns) == (made.st_ino, made.st_mtime_ns)
    done = subprocess.run([provider_program(), "merged", "-vv", f"--site-info={site}/site-info.def",
                           f"--info-dir={site}/info", f"--static-ldif={site}/static/static-file-CE.ldif",
                           f"--static-ldif={site}/static/static-file-Cluster.ldif"],
                          capture_output=True, text=True, check=False, env={**os.environ, "GIP_CACHE_DIR": str(cache)})
    assert "the static LDIF is unchanged since its reading was kept" in done.stderr, done.stderr
    # One queue draining in the static file, which keeps its size: read afresh, and kept anew.
    ce_file = site / "static" / "static-file-CE.ldif"
    text = ce_file.read_text()
    at = text.index("GlueCEName: extra001\n")
    changed = text[:at] + text[at:].replace("GlueCEStateStatus: Production", "GlueCEStateStatus: Draining", 1).replace(
        "GlueCEStateWaitingJobs: 444444\n", "GlueCEStateWaitingJobs: 44444444\n", 1)
    assert len(changed) == len(text)
    ce_file.write_text(changed)
    server.wait_cycles(1)
    assert states() == [["Draining" if "-extra001," in dn else "PilotSCAS"] for dn in extra]
    assert kept.stat().st_ino != made.st_ino
