"""GLUE 2 end to end: every mode's output in a real slapd, the example site in a real BDII.

The slapd has the BDII's schemas (GLUE20.schema among them) and its base
entries (GLUE2GroupID=resource,o=glue); the BDII runs the etc/bdii wrappers
as they are, configured by environment variables only.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import pytest

from gip.cli.provider import main
from gip.model import SERVING_STATES
from tests.test_provider_bdii import (
    EL9_OWN_TAGS,
    ETC,
    GLOBAL_TAGS,
    INVALID,
    STATIC_RTE,
    by_key,
    provider_program,
    remove_tag,
    wrapper_env,
)

GLUE1_FILES = ("static-file-CE.ldif", "static-file-Cluster.ldif")
# Parents first: slapd refuses an entry whose parent is not there yet.
GLUE2_FILES = ("ComputingService.ldif", "ComputingManager.ldif", "ExecutionEnvironment.ldif", "ComputingShare.ldif")
SERVICE = "ce.example.org_ComputingElement"
APP_NAME = "glue2applicationenvironmentappname"
APP_ENV = "glue2applicationenvironmentexecutionenvironmentforeignkey"
STATE = "glue2computingshareservingstate"
INFO = "glue2entityotherinfo"
# The example's shares (queue, VO) and what they publish: CE_STATE=PilotSCAS is not in the
# enumeration, SHORT_CE_STATE=Closed is; sgm/cms is draining in the static LDIF (production-only keeps it).
STATIC_SHARES = {
    ("long", "atlas"): ("production", "PilotSCAS"),
    ("long", "cms"): ("production", "PilotSCAS"),
    ("long", "vo.example.org"): ("production", "PilotSCAS"),
    ("short", "dteam"): ("closed", None),
    ("short", "ops"): ("closed", None),
    ("short", "cms"): ("closed", None),
    ("sgm", "atlas"): ("production", "PilotSCAS"),
    ("sgm", "cms"): ("draining", None),
}
TEMPLATE_SHARES = {**STATIC_SHARES, ("sgm", "cms"): ("production", "PilotSCAS")}
EXPECTED_APPLICATIONS = {
    "ce.example.org": set(STATIC_RTE + GLOBAL_TAGS),
    "wn-el9.example.org": set(["GLITE-3_2_0"] + GLOBAL_TAGS + EL9_OWN_TAGS),
}

Entries = Dict[str, Dict[str, List[str]]]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(ETC, copy)
    return copy


def static_options(site: Path, files: Sequence[str] = GLUE1_FILES + GLUE2_FILES) -> List[str]:
    return [f"--static-ldif={site}/static/{name}" for name in files]


def run_provider(capsysbinary: pytest.CaptureFixture[bytes], site: Path, *argv: str) -> str:
    options = [f"--site-info={site}/site-info.def", f"--info-dir={site}/info", *static_options(site)]
    assert main([argv[0], *options, *argv[1:]]) == 1  # the example site holds bad tags on purpose
    return capsysbinary.readouterr().out.decode("ascii")


def static_text(site: Path, files: Sequence[str] = GLUE1_FILES + GLUE2_FILES) -> str:
    return "\n".join((site / "static" / name).read_text() for name in files)


def applications(entries: Entries) -> Dict[str, Set[str]]:
    """AppName values by ExecutionEnvironment, from every ApplicationEnvironment found."""
    found: Dict[str, Set[str]] = {}
    for attributes in entries.values():
        if APP_NAME in attributes:
            (environment,) = attributes[APP_ENV]
            found.setdefault(environment, set()).update(attributes[APP_NAME])
    return found


def shares(entries: Entries) -> Dict[Tuple[str, str], Tuple[str, Optional[str]]]:
    """(queue, VO) -> (ServingState, CEState or None) of every share found."""
    result = {}
    for dn, attributes in entries.items():
        if dn.startswith("glue2shareid="):
            queue, vo, _ = dn.split(",", 1)[0][len("glue2shareid="):].split("_", 2)
            (state,) = attributes[STATE]
            ce_states = [v[len("CEState="):] for v in attributes.get(INFO, []) if v.startswith("CEState=")]
            assert len(ce_states) <= 1
            result[(queue, vo)] = (state, ce_states[0] if ce_states else None)
    return result


def assert_glue2_published(entries: Entries, expected_apps: Dict[str, Set[str]],
                           expected_shares: Dict[Tuple[str, str], Tuple[str, Optional[str]]]) -> None:
    apps = applications(entries)
    assert apps == expected_apps
    assert not set().union(*apps.values()) & INVALID
    assert shares(entries) == expected_shares
    # slapd does not enforce the enumeration: gip must.
    assert all(value in SERVING_STATES for attributes in entries.values() for value in attributes.get(STATE, []))


def glue2_search(server: object) -> Entries:
    return by_key(server.search("o=glue"))  # type: ignore[attr-defined]


# -- every mode's output loads into slapd without a rejected entry --------------------------------


def test_merged_glue2_loads_whole(glue_slapd, site, capsysbinary):
    output = run_provider(capsysbinary, site, "merged", "--glue", "both")
    assert glue_slapd.add_ldif(output) == []
    assert_glue2_published(glue2_search(glue_slapd), EXPECTED_APPLICATIONS, STATIC_SHARES)


def test_merged_glue2_from_templates_loads_whole(glue_slapd, site, capsysbinary):
    output = run_provider(capsysbinary, site, "merged", "--base", "templates", "--glue", "both")
    assert glue_slapd.add_ldif(output) == []
    entries = glue2_search(glue_slapd)
    assert_glue2_published(entries, {"ce.example.org": EXPECTED_APPLICATIONS["ce.example.org"]}, TEMPLATE_SHARES)
    classes = {c.lower() for attributes in entries.values() for c in attributes.get("objectclass", [])}
    assert {"glue2computingservice", "glue2computingmanager", "glue2executionenvironment",
            "glue2mappingpolicy"} <= classes


def test_plugin_glue2_applies_to_the_static_shares(glue_slapd, site, capsysbinary):
    assert glue_slapd.add_ldif(static_text(site)) == []
    output = run_provider(capsysbinary, site, "plugin", "--glue", "both")
    assert glue_slapd.add_ldif(output) == []
    entries = glue2_search(glue_slapd)
    assert_glue2_published(entries, {}, STATIC_SHARES)
    long_atlas = entries[f"glue2shareid=long_atlas_{SERVICE},glue2serviceid={SERVICE},glue2groupid=resource,o=glue"
                         .lower()]
    assert "InfoProviderName=glite-ce-glue2-share-static" in long_atlas[INFO]  # replace kept the share's own


# -- the example site in a real BDII ---------------------------------------------------------


def glue2_env(site: Path, **extra: str) -> Dict[str, str]:
    files = ":".join(f"{site}/static/{name}" for name in GLUE1_FILES + GLUE2_FILES)
    return wrapper_env(site, GIP_GLUE="both", GIP_STATIC_LDIF=files, **extra)


def test_provider_wrapper_publishes_glue2_in_a_real_bdii(bdii: Callable[..., object], site: Path):
    server = bdii(env=glue2_env(site))
    server.add_provider("gip-bdii-provider", (ETC / "bdii" / "gip-bdii-provider").read_text())  # type: ignore
    server.start()  # type: ignore[attr-defined]
    server.wait_cycles(1)  # type: ignore[attr-defined]
    assert_glue2_published(glue2_search(server), EXPECTED_APPLICATIONS, STATIC_SHARES)
    remove_tag(site, "VO-atlas-AtlasOffline-17.2.7")
    server.wait_cycles(1)  # type: ignore[attr-defined]
    apps = applications(glue2_search(server))
    assert apps == {sc: values - {"VO-atlas-AtlasOffline-17.2.7"} for sc, values in EXPECTED_APPLICATIONS.items()}


def test_provider_wrapper_from_templates_publishes_glue2_in_a_real_bdii(bdii: Callable[..., object], site: Path):
    server = bdii(env=glue2_env(site, GIP_BASE="templates"))
    server.add_provider("gip-bdii-provider", (ETC / "bdii" / "gip-bdii-provider").read_text())  # type: ignore
    server.start()  # type: ignore[attr-defined]
    server.wait_cycles(1)  # type: ignore[attr-defined]
    assert_glue2_published(glue2_search(server), {"ce.example.org": EXPECTED_APPLICATIONS["ce.example.org"]},
                           TEMPLATE_SHARES)


def test_plugin_wrapper_sets_the_share_states_in_a_real_bdii(bdii: Callable[..., object], site: Path):
    server = bdii(env=glue2_env(site))
    for name in GLUE1_FILES + GLUE2_FILES:
        server.add_static(name, (site / "static" / name).read_text())  # type: ignore[attr-defined]
    server.add_plugin("gip-bdii-plugin", (ETC / "bdii" / "gip-bdii-plugin").read_text())  # type: ignore
    server.start()  # type: ignore[attr-defined]
    server.wait_cycles(1)  # type: ignore[attr-defined]
    assert_glue2_published(glue2_search(server), {}, STATIC_SHARES)


def test_wrap_sets_the_share_states_of_a_batch_plugin_in_a_real_bdii(bdii: Callable[..., object], site: Path):
    """The batch plugin prints every share production; wrapped, the site's states win where the policy says."""
    blocks = "".join(
        f"dn: GLUE2ShareID={queue}_{vo}_{SERVICE},GLUE2ServiceID={SERVICE},GLUE2GroupID=resource,o=glue\n"
        f"GLUE2ComputingShareRunningJobs: 5\nGLUE2ComputingShareServingState: "
        f"{'draining' if (queue, vo) == ('sgm', 'cms') else 'production'}\n\n"
        for queue, vo in STATIC_SHARES if queue == "short" or (queue, vo) == ("sgm", "cms")
    )
    batch = site / "batch-plugin"
    batch.write_text(f"#!/bin/sh\ncat <<'EOF'\n{blocks}EOF\n")
    batch.chmod(0o755)
    plugin = (f"#!/bin/sh\nexec {provider_program()} wrap --glue both --site-info {site}/site-info.def "
              f"--info-dir {site}/info {' '.join(static_options(site))} -- {batch}\n")
    server = bdii(env=glue2_env(site))
    for name in GLUE1_FILES + GLUE2_FILES:
        server.add_static(name, (site / "static" / name).read_text())  # type: ignore[attr-defined]
    server.add_plugin("gip-wrap", plugin)  # type: ignore[attr-defined]
    server.start()  # type: ignore[attr-defined]
    server.wait_cycles(1)  # type: ignore[attr-defined]
    entries = glue2_search(server)
    assert_glue2_published(entries, {}, STATIC_SHARES)
    running = {key: a.get("glue2computingsharerunningjobs") for key, a in entries.items()
               if key.startswith("glue2shareid=short_")}
    assert running and all(value == ["5"] for value in running.values())
