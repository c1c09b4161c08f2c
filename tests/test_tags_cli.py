from __future__ import annotations

import datetime
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest

from gip import history
from gip.cli import tags as cli
from gip.cli.tags import invoke, main
from gip.errors import EXIT_CODES

A, B, C = "VO-atlas-a", "VO-atlas-b", "VO-atlas-c"
SCRIPT = Path(sys.executable).parent / "gip-tags"
DOCUMENT_KEYS = {"command", "ok", "exit_code", "error", "vo", "subcluster", "file", "dry_run", "changed", "added",
                 "removed", "tags", "account", "identity"}


@pytest.fixture
def info(tmp_path) -> Path:
    (tmp_path / "info" / "atlas").mkdir(parents=True)
    return tmp_path / "info"


@pytest.fixture
def environ(tmp_path) -> Dict[str, str]:
    return {"X509_USER_PROXY": str(tmp_path / "no-proxy")}


def run(info: Path, environ, *argv: str, stdin: Optional[bytes] = None, vo: str = "atlas"):
    head = ["--info-dir", str(info)] + (["--vo", vo] if vo else [])
    return invoke(head + list(argv), environ=environ, stdin=io.BytesIO(stdin) if stdin is not None else None)


def tag_file(info: Path) -> Path:
    return info / "atlas" / "atlas.ldif"


def records(info: Path, vo: str = "atlas"):
    return history.read_history(info / vo / f".{vo}.ldif.history").records


def snapshot(folder: Path) -> Dict[str, Tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mode) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("planted", ["fifo", "folder", "link"])
@pytest.mark.parametrize("command", [("add", "VO-atlas-new"), ("history",)])
def test_a_history_that_is_no_regular_file_is_refused_at_once(info, environ, planted, command):
    # Reading a FIFO would wait for ever while holding the lock; a link would read another file.
    tag_file(info).write_text(f"{A}\n")
    history_path = info / "atlas" / ".atlas.ldif.history"
    if planted == "fifo":
        os.mkfifo(history_path)
    elif planted == "folder":
        history_path.mkdir()
    else:
        history_path.symlink_to("/dev/zero")
    outcome = run(info, environ, *command)
    kind = "is a symbolic link" if planted == "link" else "is not a regular file"
    assert (outcome.exit_code, outcome.document["error"]) == (1, f"the history {history_path} {kind}; refused")
    assert tag_file(info).read_text() == f"{A}\n"


@pytest.mark.parametrize("command", [("list",), ("history",), ("add", "VO-atlas-new")])
def test_a_tag_file_that_links_to_nothing_is_not_an_empty_file(info, environ, command):
    tag_file(info).symlink_to("/nonexistent/atlas.ldif")  # a shared file system not mounted
    outcome = run(info, environ, *command)
    assert outcome.exit_code == 1
    assert str(tag_file(info)) in outcome.document["error"] and outcome.document["tags"] == []
    assert tag_file(info).is_symlink() and not tag_file(info).exists()


@pytest.mark.parametrize("folder", ["/dev/null", "/dev/null/deeper", "x" * 5000])
def test_an_info_folder_that_cannot_be_one_is_a_message_not_a_traceback(tmp_path, environ, folder, capsys):
    assert main(["--info-dir", str(tmp_path / folder), "--vo", "atlas", "--json", "list"]) == 1
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert "not a usable tag folder" in document["error"] and "Traceback" not in err


@pytest.mark.skipif(not SCRIPT.exists(), reason="gip-tags is not installed in this Python's environment")
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, a stdout that is always full")
def test_a_report_that_cannot_be_written_says_so_and_the_change_stands(info, environ):
    base = [str(SCRIPT), "--info-dir", str(info), "--vo", "atlas"]
    with open("/dev/full", "w") as full:
        done = subprocess.run(base + ["--json", "add", A], stdout=full, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, **environ))
    assert done.returncode == 0 and tag_file(info).read_text() == f"{A}\n"
    assert done.stderr == "gip-tags: ERROR: cannot write to stdout: No space left on device; the change itself was made\n"


@pytest.mark.skipif(not SCRIPT.exists(), reason="gip-tags is not installed in this Python's environment")
def test_a_closed_stdout_or_stdin_is_no_traceback(info, environ):
    base = [str(SCRIPT), "--info-dir", str(info), "--vo", "atlas"]
    done = subprocess.run(base + ["add", A], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=dict(os.environ, **environ),
                          preexec_fn=lambda: (os.close(0), os.close(1)))
    assert (done.returncode, done.stderr) == (0, "")
    assert tag_file(info).read_text() == f"{A}\n"


def test_list_of_a_missing_file_is_empty(info, environ):
    outcome = run(info, environ, "list")
    assert (outcome.exit_code, outcome.document["tags"], outcome.text) == (0, [], [])


def test_add_then_list(info, environ, capsys):
    assert main(["--info-dir", str(info), "--vo", "atlas", "add", B, A]) == 0
    assert capsys.readouterr().out == f"added 2 tags to {tag_file(info)}\n"
    assert tag_file(info).read_text() == f"{A}\n{B}\n"
    assert main(["--info-dir", str(info), "--vo", "atlas", "list"]) == 0
    assert capsys.readouterr().out == f"{A}\n{B}\n"


def test_the_json_document(info, environ):
    outcome = run(info, environ, "--json", "add", A)
    document = outcome.document
    assert DOCUMENT_KEYS <= set(document)
    assert document == dict(document, command="add", ok=True, exit_code=0, error=None, vo="atlas", subcluster=None,
                            file=str(tag_file(info)), dry_run=False, changed=True, added=[A], removed=[], tags=[A],
                            identity=None)
    assert document["account"] == "root" or document["account"]


def test_main_json_prints_one_document_also_on_failure(info, capsys):
    code = main(["--info-dir", str(info), "--vo", "atlas", "--json", "add", "VO-cms-x"])
    out = capsys.readouterr().out
    document = json.loads(out)
    assert code == 1 and out.count("\n") == 1
    assert (document["ok"], document["exit_code"], document["changed"]) == (False, 1, False)
    assert "names VO 'cms'" in document["error"]
    assert document["invalid"] == {"VO-cms-x": "names VO 'cms', not 'atlas'"}


def test_a_usage_error_with_json_is_a_document_too(info, capsys):
    code = main(["--json", "--vo", "atlas", "add", "--no-such-option"])
    document = json.loads(capsys.readouterr().out)
    assert (code, document["exit_code"], document["command"]) == (2, 2, "add")
    assert "unrecognized arguments" in document["error"]


def test_add_a_tag_there_is_a_no_op(info, environ):
    run(info, environ, "add", A)
    before = snapshot(info)
    outcome = run(info, environ, "add", A)
    assert (outcome.exit_code, outcome.document["changed"], outcome.document["added"]) == (0, False, [])
    assert outcome.text == [f"nothing to add: 1 tag there already in {tag_file(info)}"]
    assert snapshot(info) == before


def test_add_a_case_variant_is_refused_naming_the_spelling_there(info, environ):
    run(info, environ, "add", A)
    outcome = run(info, environ, "add", "VO-atlas-A", B)
    assert outcome.exit_code == 1
    assert outcome.document["existing"] == {"VO-atlas-A": A}
    assert outcome.document["tags"] == [A]
    assert tag_file(info).read_text() == f"{A}\n"


def test_one_invalid_tag_refuses_the_whole_add(info, environ):
    outcome = run(info, environ, "add", A, "VO-atlas-x y")
    assert outcome.exit_code == 1 and "holds ' '" in outcome.document["error"]
    assert not tag_file(info).exists()
    assert list((info / "atlas").iterdir()) == []


def test_add_to_a_missing_folder_points_to_init(info, environ):
    outcome = run(info, environ, "add", "VO-cms-x", vo="cms")
    assert outcome.exit_code == 1
    assert "init --owner" in outcome.document["error"]
    assert not (info / "cms").exists()


def test_add_from_a_file_and_from_stdin(info, environ, tmp_path):
    listing = tmp_path / "tags.txt"
    listing.write_text(f"# to publish\n{A}, {B}\r\nGlueHostApplicationSoftwareRunTimeEnvironment: {C}\n")
    assert run(info, environ, "add", "--from-file", str(listing)).exit_code == 0
    assert run(info, environ, "add", "--from-file", "-", stdin=b"VO-atlas-d\n").exit_code == 0
    assert tag_file(info).read_text() == f"{A}\n{B}\n{C}\nVO-atlas-d\n"


def test_add_from_a_file_with_a_bad_token_refuses(info, environ, tmp_path):
    listing = tmp_path / "tags.txt"
    listing.write_text(f"{A}\nVO-atlas-bad!\n")
    outcome = run(info, environ, "add", "--from-file", str(listing))
    assert outcome.exit_code == 1 and f"{listing}:2" in outcome.document["error"]
    assert not tag_file(info).exists()


def test_add_needs_a_tag(info, environ):
    assert run(info, environ, "add").exit_code == 2


def test_remove_matches_ignoring_case(info, environ):
    run(info, environ, "add", A, B)
    outcome = run(info, environ, "remove", "vo-atlas-A")
    assert (outcome.exit_code, outcome.document["removed"], outcome.document["tags"]) == (0, [A], [B])
    assert outcome.text == [f"removed 1 tag from {tag_file(info)}"]


def test_remove_is_all_or_nothing(info, environ):
    run(info, environ, "add", A, B)
    outcome = run(info, environ, "remove", A, C)
    assert (outcome.exit_code, outcome.document["missing"]) == (1, [C])
    assert tag_file(info).read_text() == f"{A}\n{B}\n"
    outcome = run(info, environ, "remove", A, C, "--ignore-missing")
    assert (outcome.exit_code, outcome.document["missing"], outcome.document["removed"]) == (0, [C], [A])
    assert tag_file(info).read_text() == f"{B}\n"


def test_replace(info, environ):
    run(info, environ, "add", A, B)
    outcome = run(info, environ, "replace", A, C)
    assert (outcome.exit_code, outcome.document["added"], outcome.document["removed"]) == (0, [C], [A])
    assert tag_file(info).read_text() == f"{B}\n{C}\n"
    assert [r["command"] for r in records(info)] == ["add", "replace"]


@pytest.mark.parametrize("old, new, code", [(C, "VO-atlas-d", 1), (A, "VO-cms-d", 1), (A, "VO-atlas-B", 1)])
def test_replace_refuses(info, environ, old, new, code):
    run(info, environ, "add", A, B)
    assert run(info, environ, "replace", old, new).exit_code == code
    assert tag_file(info).read_text() == f"{A}\n{B}\n"


def test_clean_needs_yes(info, environ):
    run(info, environ, "add", A, B)
    assert run(info, environ, "clean").exit_code == 2
    assert tag_file(info).read_text() == f"{A}\n{B}\n"


def test_clean_empties_the_file_and_keeps_its_owner_and_mode(info, environ):
    run(info, environ, "add", A, B)
    tag_file(info).chmod(0o664)
    os.chown(tag_file(info), 65534, 65534)
    outcome = run(info, environ, "clean", "--yes")
    assert (outcome.exit_code, outcome.document["removed"], outcome.document["tags"]) == (0, [A, B], [])
    kept = tag_file(info).stat()
    assert (tag_file(info).read_bytes(), stat.S_IMODE(kept.st_mode), kept.st_uid, kept.st_gid) == (b"", 0o664, 65534, 65534)


def test_history_lists_every_change(info, environ, capsys):
    run(info, environ, "add", A, B)
    run(info, environ, "remove", A)
    outcome = run(info, environ, "history")
    assert [(r["command"], r["added"], r["removed"]) for r in outcome.document["history"]] == [
        ("add", [A, B], []), ("remove", [], [A])]
    assert main(["--info-dir", str(info), "--vo", "atlas", "history"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith(f"add: +{A} +{B}") and lines[1].endswith(f"remove: -{A}")


def test_history_shows_an_edit_not_recorded_yet(info, environ):
    run(info, environ, "add", A)
    tag_file(info).write_text(f"{B}\n")
    outcome = run(info, environ, "history")
    last = outcome.document["history"][-1]
    assert (last["command"], last["recorded"], last["tags"]) == ("external-edit", False, [B])
    assert len(records(info)) == 1


def test_restore_by_steps_is_itself_undoable(info, environ):
    run(info, environ, "add", A)
    run(info, environ, "add", B)
    run(info, environ, "remove", A)
    outcome = run(info, environ, "restore", "--steps", "2")
    assert (outcome.exit_code, outcome.document["tags"]) == (0, [A])
    assert tag_file(info).read_text() == f"{A}\n"
    assert run(info, environ, "restore", "--steps", "1").document["tags"] == [B]
    assert [r["command"] for r in records(info)] == ["add", "add", "remove", "restore", "restore"]


def test_restore_before_a_time(info, environ):
    run(info, environ, "add", A)
    middle = history.format_time(history.parse_time(records(info)[-1]["time"]) + 0.000001)
    run(info, environ, "add", B)
    outcome = run(info, environ, "restore", "--before", middle)
    assert (outcome.exit_code, outcome.document["tags"]) == (0, [A])
    assert outcome.document["restored_to"]["record"] == 1
    early = run(info, environ, "restore", "--before", "2000-01-01")
    assert (early.exit_code, early.document["tags"]) == (0, [])


@pytest.mark.parametrize("planted, reason", [
    ("VO-cms-x", "holding 'VO-cms-x', which is no tag of VO atlas"),
    ("VO-atlas-A", "holding two spellings of one tag"),
])
def test_restore_refuses_a_state_gip_never_wrote(info, environ, planted, reason):
    # An edited history with its hashes in order: a, then a and the planted value, then a again.
    states = [[], [A], sorted([A, planted]), [A]]
    records = [{"sha256": history.tags_sha256(after), "previous_sha256": history.tags_sha256(before),
                "time": f"2024-05-0{n}T12:00:00.000000Z", "account": "x", "command": "edit", "changed": True,
                "added": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after)),
                "previous_tags": before}
               for n, (before, after) in enumerate(zip(states, states[1:]), 1)]
    (info / "atlas" / ".atlas.ldif.history").write_text("".join(json.dumps(r) + "\n" for r in records))
    tag_file(info).write_text(f"{A}\n")
    outcome = run(info, environ, "restore", "--steps", "1")
    assert outcome.exit_code == 1 and reason in outcome.document["error"]
    assert tag_file(info).read_text() == f"{A}\n"


@pytest.mark.parametrize("argv, code", [
    (["restore"], 2), (["restore", "--steps", "1", "--before", "2024-01-01"], 2),
    (["restore", "--before", "not a time"], 2), (["restore", "--steps", "9"], 1), (["restore", "--steps", "0"], 2),
    (["restore", "--steps", "-1"], 2), (["restore", "--steps", "x"], 2),
])
def test_restore_refuses(info, environ, argv, code):
    run(info, environ, "add", A)
    assert run(info, environ, *argv).exit_code == code
    assert tag_file(info).read_text() == f"{A}\n"


def test_restore_brings_back_a_hand_edited_file(info, environ):
    tag_file(info).write_text(f"# by hand\n{B} {A}\n")
    run(info, environ, "add", C)
    assert run(info, environ, "restore", "--steps", "1").document["tags"] == [A, B]
    assert "# by hand" in records(info)[0]["previous_text"]


def test_validate_publishes_when_the_command_succeeds(info, environ):
    outcome = run(info, environ, "add", A, "--validate", "--", sys.executable, "-c", "print('checked ok')")
    assert (outcome.exit_code, outcome.document["tags"]) == (0, [A])
    validation = records(info)[-1]["validation"]
    assert (validation["exit_code"], validation["output_tail"]) == (0, "checked ok\n")
    assert outcome.document["validation"]["exit_code"] == 0


def test_validate_refuses_and_records_a_failure(info, environ):
    run(info, environ, "add", A)
    script = "import sys; print('missing libfoo'); sys.exit(3)"
    outcome = run(info, environ, "add", B, "--validate", "--", sys.executable, "-c", script)
    assert outcome.exit_code == 1 and "exited 3" in outcome.document["error"]
    assert tag_file(info).read_text() == f"{A}\n"
    last = records(info)[-1]
    assert (last["changed"], last["added"], last["validation"]["exit_code"]) == (False, [], 3)
    assert last["validation"]["tags"] == [B] and "missing libfoo" in last["validation"]["output_tail"]
    assert run(info, environ, "restore", "--steps", "1").document["tags"] == []


def test_validate_records_a_command_that_cannot_run(info, environ, tmp_path):
    outcome = run(info, environ, "add", A, "--validate", "--", str(tmp_path / "no-such-script"))
    assert outcome.exit_code == 1
    assert records(info)[-1]["validation"]["exit_code"] == 127


def test_validate_is_not_run_for_a_no_op_or_a_refusal(info, environ, tmp_path):
    run(info, environ, "add", A)
    marker = tmp_path / "ran"
    touch = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    assert run(info, environ, "add", A, "--validate", "--", *touch).exit_code == 0
    assert run(info, environ, "add", "VO-atlas-A", "--validate", "--", *touch).exit_code == 1
    assert not marker.exists()


@pytest.mark.parametrize("argv", [["add", A, "--validate"], ["remove", A, "--validate", "--", "true"]])
def test_validate_usage(info, environ, argv):
    assert run(info, environ, *argv).exit_code == 2


@pytest.mark.parametrize("argv", [
    ["add", C], ["remove", A], ["replace", A, C], ["clean", "--yes"], ["restore", "--steps", "1"],
    ["add", C, "--validate", "--", "false"],
])
def test_dry_run_writes_nothing(info, environ, argv):
    run(info, environ, "add", A, B)
    before = snapshot(info)
    outcome = run(info, environ, "--dry-run", *argv)
    assert outcome.exit_code == 0 and outcome.document["dry_run"] is True
    assert outcome.document["changed"] is False and (outcome.document["added"] or outcome.document["removed"])
    assert outcome.text[0].startswith("would ")
    assert snapshot(info) == before


def test_dry_run_does_not_even_take_the_lock(info, environ):
    outcome = run(info, environ, "--dry-run", "add", A)
    assert outcome.document["added"] == [A]
    assert list((info / "atlas").iterdir()) == []


def test_per_subcluster_file(info, environ):
    (info / "sc1" / "atlas").mkdir(parents=True)
    outcome = run(info, environ, "--sc", "sc1", "add", A)
    assert outcome.document["subcluster"] == "sc1"
    assert (info / "sc1" / "atlas" / "atlas.ldif").read_text() == f"{A}\n"
    assert run(info, environ, "list").document["tags"] == []


def test_list_reads_an_unmigrated_legacy_file(info, environ):
    (info / "atlas" / "atlas.list").write_text(f"{A},{B}\n")
    outcome = run(info, environ, "list")
    assert (outcome.document["tags"], outcome.document["file"]) == ([A, B], str(info / "atlas" / "atlas.list"))
    assert not tag_file(info).exists()
    run(info, environ, "add", C)
    assert tag_file(info).read_text() == f"{A}\n{B}\n{C}\n"
    assert (info / "atlas" / "atlas.list.migrated").exists()


def test_a_vo_named_like_a_command(tmp_path, environ):
    (tmp_path / "list").mkdir()
    outcome = invoke(["--info-dir", str(tmp_path), "--vo", "list", "--json", "add", "VO-list-x"], environ=environ)
    assert outcome.exit_code == 0 and (tmp_path / "list" / "list.ldif").read_text() == "VO-list-x\n"


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["list", "extra"], ["--vo"], ["export", "--vo", "x"]])
def test_usage_errors(info, environ, argv):
    assert invoke(["--info-dir", str(info)] + argv, environ=environ).exit_code == 2


def test_file_commands_need_a_vo(info, environ):
    outcome = run(info, environ, "list", vo="")
    assert outcome.exit_code == 2 and "--vo" in outcome.document["error"]


def test_lock_timeout_from_the_environment(info, environ):
    assert run(info, dict(environ, GIP_LOCK_TIMEOUT="soon"), "add", A).exit_code == 3
    assert run(info, dict(environ, GIP_LOCK_TIMEOUT="2.5"), "add", A).exit_code == 0
    assert run(info, environ, "--lock-timeout", "-1", "add", B).exit_code == 2


def test_set_uid_is_refused(info, environ, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    outcome = run(info, environ, "add", A)
    assert outcome.exit_code == 3 and "set-uid" in outcome.document["error"]
    assert not tag_file(info).exists()


def test_help_holds_the_exit_code_table(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for code, meaning in EXIT_CODES:
        assert f"  {code}  {meaning}" in out
    for command in cli.COMMANDS:
        assert command in out


def test_invoke_prints_nothing(info, environ, capsys):
    run(info, environ, "add", A)
    run(info, environ, "list")
    run(info, environ, "add", "bad")
    assert capsys.readouterr().out == ""


def _certificate(path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.DOMAIN_COMPONENT, "org"),
                      x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Jane Doe")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return "/DC=org/CN=Jane Doe"


def test_the_grid_identity_is_recorded_and_reported(info, tmp_path):
    pytest.importorskip("cryptography")
    proxy = tmp_path / "x509up"
    subject = _certificate(proxy)
    environ = {"X509_USER_PROXY": str(proxy)}
    outcome = run(info, environ, "add", A)
    assert outcome.document["identity"] == subject
    assert records(info)[-1]["identity"] == subject
    assert run(info, environ, "list").document["identity"] is None  # list never reads the proxy


# init: site admins, as root.

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="init gives folders to other accounts: needs root")


@needs_root
def test_init_creates_the_folder_and_file_for_the_account(tmp_path, environ):
    info = tmp_path / "info"
    outcome = invoke(["--info-dir", str(info), "--vo", "cms", "init", "--owner", "nobody"], environ=environ)
    assert outcome.exit_code == 0 and outcome.document["changed"] is True
    for path, mode in ((info / "cms", 0o755), (info / "cms" / "cms.ldif", 0o644), (info / "cms" / ".cms.ldif.history", 0o644)):
        status = path.stat()
        assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (65534, 65534, mode), path
    assert (info / "cms" / "cms.ldif").read_bytes() == b""


@needs_root
def test_init_with_a_group_for_pooled_accounts(tmp_path, environ):
    info = tmp_path / "info"
    argv = ["--info-dir", str(info), "--vo", "cms", "--sc", "sc1", "init", "--owner", "nobody", "--group", "root"]
    assert invoke(argv, environ=environ).exit_code == 0
    folder, file = info / "sc1" / "cms", info / "sc1" / "cms" / "cms.ldif"
    assert (stat.S_IMODE(folder.stat().st_mode), folder.stat().st_gid) == (0o775, 0)
    assert (stat.S_IMODE(file.stat().st_mode), file.stat().st_uid, file.stat().st_gid) == (0o664, 65534, 0)


@needs_root
def test_init_keeps_tags_and_migrates_a_legacy_file(info, environ):
    (info / "atlas" / "atlas.list").write_text(f"{A}\n")
    assert run(info, environ, "init", "--owner", "nobody").exit_code == 0
    assert tag_file(info).read_text() == f"{A}\n"
    assert tag_file(info).stat().st_uid == 65534
    run(info, environ, "add", B)
    assert run(info, environ, "init", "--owner", "nobody").document["changed"] is False
    assert tag_file(info).read_text() == f"{A}\n{B}\n"


@pytest.mark.parametrize("argv", [["init"], ["init", "--owner", "no-such-account-x"],
                                  ["init", "--owner", "nobody", "--group", "no-such-group-x"]])
def test_init_usage(info, environ, argv):
    assert run(info, environ, *argv).exit_code == 2


def test_init_for_another_account_needs_root(info, environ, monkeypatch):
    from gip import store

    monkeypatch.setattr(store, "_root", lambda: False)
    monkeypatch.setattr(os, "getuid", lambda: 12345)
    monkeypatch.setattr(os, "geteuid", lambda: 12345)
    outcome = run(info, environ, "init", "--owner", "nobody")
    assert outcome.exit_code == 1 and "run it as root" in outcome.document["error"]


# The installed console script.

@pytest.mark.skipif(not SCRIPT.exists(), reason="gip-tags is not installed in this Python's environment")
def test_the_console_script(info, tmp_path):
    environ = dict(os.environ, X509_USER_PROXY=str(tmp_path / "none"))
    base = [str(SCRIPT), "--info-dir", str(info), "--vo", "atlas"]
    added = subprocess.run(base + ["add", A, B], capture_output=True, text=True, env=environ)
    assert (added.returncode, added.stdout, added.stderr) == (0, f"added 2 tags to {tag_file(info)}\n", "")
    listed = subprocess.run(base + ["list"], capture_output=True, text=True, env=environ)
    assert (listed.returncode, listed.stdout) == (0, f"{A}\n{B}\n")
    refused = subprocess.run(base + ["--json", "remove", C], capture_output=True, text=True, env=environ)
    assert refused.returncode == 1 and json.loads(refused.stdout)["missing"] == [C]
    assert "not there" in refused.stderr
    clean = subprocess.run(base + ["clean"], capture_output=True, text=True, env=environ)
    assert clean.returncode == 2 and clean.stdout == "" and "--yes" in clean.stderr
    version = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("gip-tags ")
