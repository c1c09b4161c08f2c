"""lcg-ManageVOTag and lcg-tags editing a CE's tags through a real sshd.

The "CE" is this machine reached as 127.0.0.1 (a loopback address is remote):
an sshd from Debian's openssh-server on a free port, whose sessions see their
own EDG_LOCATION_VAR, so the tag tree they edit is not the one this side would
use. Skips where sshd is missing; fails instead under GIP_REQUIRE_INTEGRATION=1.
"""

from __future__ import annotations

import getpass
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gip import remote
from gip.cli import legacy
from gip.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gip.tagfile import read_tag_file
from tests.support.integration import free_port, require_programs
from tests.support.sshd import PROGRAMS, Sshd

pytestmark = pytest.mark.integration

CE = "127.0.0.1"
BIN = Path(sys.executable).parent
# sshd run by a user lets in only that user: the CE account is ours (no grid proxy here).
USER = getpass.getuser()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    programs = require_programs(*PROGRAMS)
    folder = tmp_path_factory.mktemp("sshd")
    remote_var = folder / "ce-var"
    environment = {"PATH": f"{BIN}:/usr/bin:/bin", "EDG_LOCATION_VAR": str(remote_var), "LANG": "C.UTF-8"}
    with Sshd(folder / "server", environment, programs) as sshd:
        yield sshd, remote_var / "info"


@pytest.fixture
def ce(server, tmp_path, monkeypatch):
    """The CE's tag tree, emptied for each test, with atlas and SubCluster sc1/atlas folders."""
    sshd, info = server
    shutil.rmtree(info, ignore_errors=True)
    (info / "atlas").mkdir(parents=True)
    (info / "sc1" / "atlas").mkdir(parents=True)
    monkeypatch.setenv("GIP_SSH", sshd.gip_ssh())
    # This side's own tag tree, which a remote operation must leave alone.
    monkeypatch.setenv("EDG_LOCATION_VAR", str(tmp_path / "local-var"))
    (tmp_path / "local-var" / "info" / "atlas").mkdir(parents=True)
    return info


def tags_in(path: Path) -> list:
    return read_tag_file(path, "atlas").tags if path.exists() else []


def manage(argv, monkeypatch, stdin: str = ""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return legacy.manage_vo_tag_main(argv)


def test_manage_vo_tag_edits_the_tags_of_the_remote_ce(ce, monkeypatch, capsys, tmp_path):
    base = ["-host", CE, "-vo", "atlas"]
    assert manage([*base, "-add", "-tag", "VO-atlas-a", "VO-atlas-b"], monkeypatch) == EXIT_OK
    assert capsys.readouterr().out == (
        f"lcg-ManageVOTag: [VO-atlas-a, VO-atlas-b] submitted for addition by {USER} "
        "to GlueHostApplicationSoftwareRunTimeEnvironment\n"
    )
    assert tags_in(ce / "atlas" / "atlas.ldif") == ["VO-atlas-a", "VO-atlas-b"]
    assert manage(["--host", CE, "--vo", "atlas", "--replace", "--tag", "VO-atlas-a", "VO-atlas-c"], monkeypatch) == EXIT_OK
    assert manage([*base, "-remove", "-tag", "VO-atlas-b"], monkeypatch, "y\n") == EXIT_OK
    capsys.readouterr()
    assert manage([*base, "-list"], monkeypatch) == EXIT_OK
    assert capsys.readouterr().out == "VO-atlas-c\n"
    assert tags_in(ce / "atlas" / "atlas.ldif") == ["VO-atlas-c"]
    assert not (tmp_path / "local-var" / "info" / "atlas" / "atlas.ldif").exists()


def test_lcg_tags_edits_the_ce_and_subcluster_files_of_the_remote_ce(ce, capsys, tmp_path):
    tagfile = tmp_path / "tags"
    tagfile.write_text("VO-atlas-x\nVO-atlas-y\n")
    sc_file = ce / "sc1" / "atlas" / "atlas.ldif"
    assert legacy.lcg_tags_main(["--ce", CE, "--vo", "atlas", "--add", "--tags", "VO-atlas-a,VO-atlas-b"]) == EXIT_OK
    assert legacy.lcg_tags_main(["--ce", CE, "--sc", "sc1", "--vo", "atlas", "--add", "--tagfile", str(tagfile)]) == EXIT_OK
    assert tags_in(ce / "atlas" / "atlas.ldif") == ["VO-atlas-a", "VO-atlas-b"]
    assert tags_in(sc_file) == ["VO-atlas-x", "VO-atlas-y"]
    assert legacy.lcg_tags_main(["--ce", CE, "--sc", "sc1", "--vo", "atlas", "--remove", "--tags", "VO-atlas-x"]) == EXIT_OK
    capsys.readouterr()
    assert legacy.lcg_tags_main(["--ce", CE, "--sc", "sc1", "--vo", "atlas", "--list"]) == EXIT_OK
    assert capsys.readouterr().out == "VO-atlas-y\n"
    assert legacy.lcg_tags_main(["--ce", CE, "--vo", "atlas", "--clean"]) == EXIT_OK
    assert (ce / "atlas" / "atlas.ldif").read_bytes() == b""
    assert tags_in(sc_file) == ["VO-atlas-y"]


def test_a_refusal_on_the_ce_comes_back_with_its_exit_code(ce, monkeypatch, capsys):
    assert legacy.lcg_tags_main(["--ce", CE, "--vo", "atlas", "--add", "--tags", "VO-atlas-a"]) == EXIT_OK
    capsys.readouterr()
    before = (ce / "atlas" / "atlas.ldif").read_bytes()
    # Valid here, refused there: the CE holds another spelling of it.
    assert manage(["-host", CE, "-vo", "atlas", "-add", "-tag", "VO-atlas-A"], monkeypatch) == EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("lcg-ManageVOTag: ERROR: ") and "VO-atlas-a" in captured.err
    assert captured.err.count("\n") == 1
    assert legacy.lcg_tags_main(["--ce", CE, "--vo", "atlas", "--remove", "--tags", "VO-atlas-gone"]) == EXIT_FAILED
    assert (ce / "atlas" / "atlas.ldif").read_bytes() == before


def test_injection_through_host_or_tag_changes_nothing(ce, monkeypatch, tmp_path):
    marker = tmp_path / "injected"
    attempts = [
        (["-host", f"{CE};touch {marker}", "-vo", "atlas", "-list"], EXIT_USAGE),
        (["-host", f"{CE}$(touch {marker})", "-vo", "atlas", "-list"], EXIT_USAGE),
        (["-host", CE, "-vo", "atlas", "-add", "-tag", f"$(touch {marker})"], EXIT_FAILED),
        (["-host", CE, "-vo", "atlas", "-add", "-tag", f"VO-atlas-a;touch {marker}"], EXIT_FAILED),
        (["-host", CE, "-vo", f"atlas;touch {marker}", "-list"], EXIT_USAGE),
    ]
    for argv, code in attempts:
        assert manage(argv, monkeypatch) == code
    assert not marker.exists()
    assert not (ce / "atlas" / "atlas.ldif").exists()


def test_quoting_alone_holds_through_the_remote_login_shell(server, ce, tmp_path):
    """Every local check bypassed: the words reach the CE's gip-tags whole, and it refuses them."""
    sshd, _ = server
    marker = tmp_path / "injected"
    hostile = [f"$(touch {marker})", f";touch {marker}", f"`touch {marker}`", f"'; touch {marker}; '",
               f"| touch {marker}", f"\ntouch {marker}", f"VO-atlas-a && touch {marker}"]
    reply = remote.run_remote(CE, ["--json", "--vo", "atlas", "add", *hostile], {"GIP_SSH": sshd.gip_ssh()})
    assert (reply.exit_code, reply.document["ok"], reply.document["changed"]) == (EXIT_FAILED, False, False)
    assert sorted(reply.document["invalid"]) == sorted(hostile)
    assert not marker.exists()
    assert not (ce / "atlas" / "atlas.ldif").exists()


def test_an_unreachable_ce_is_one_clear_error(server, ce, monkeypatch, capsys):
    sshd, _ = server
    closed = free_port()
    monkeypatch.setenv("GIP_SSH", sshd.gip_ssh().replace(f"-p {sshd.port}", f"-p {closed}"))
    assert legacy.lcg_tags_main(["--ce", CE, "--vo", "atlas", "--list"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"lcg-tags: ERROR: {CE}: ssh failed (exit 255): ")
    assert "Connection refused" in err


def test_the_installed_script_reads_its_confirmation_not_ssh(server, ce):
    sshd, _ = server
    (ce / "atlas" / "atlas.ldif").write_text("VO-atlas-a\nVO-atlas-b\n")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "GIP_SSH": sshd.gip_ssh(), "HOME": str(sshd.folder)}
    script = [str(BIN / "lcg-ManageVOTag"), "-host", CE, "-vo", "atlas", "--remove", "-tag", "VO-atlas-a"]
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        completed = subprocess.run(script, stdin=yes.stdout, capture_output=True, text=True, env=env, timeout=60)
    finally:
        yes.stdout.close()
        yes.kill()
        yes.wait()
    assert completed.returncode == EXIT_OK, completed.stderr
    assert completed.stdout == (
        f"lcg-ManageVOTag: [VO-atlas-a] removed by {USER} from GlueHostApplicationSoftwareRunTimeEnvironment\n"
    )
    assert tags_in(ce / "atlas" / "atlas.ldif") == ["VO-atlas-b"]
