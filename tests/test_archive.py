from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path
from typing import Dict, Tuple

import pytest

from gip import archive, history
from gip.cli.tags import invoke
from gip.errors import InputError
from gip.identity import Who

A, B, C = "VO-atlas-a", "VO-atlas-b", "VO-atlas-c"
WHO = Who("root", None)


@pytest.fixture
def environ(tmp_path) -> Dict[str, str]:
    return {"X509_USER_PROXY": str(tmp_path / "no-proxy")}


def gip_tags(info: Path, environ, *argv: str):
    return invoke(["--info-dir", str(info), *argv], environ=environ)


@pytest.fixture
def tree(tmp_path, environ) -> Path:
    """A tag tree as a CE has it: global and per-SubCluster files, a legacy one, a migrated one, histories."""
    info = tmp_path / "info"
    for folder in ("atlas", "cms", "lhcb", "sc1/atlas"):
        (info / folder).mkdir(parents=True)
    gip_tags(info, environ, "--vo", "atlas", "add", A, B)
    gip_tags(info, environ, "--vo", "atlas", "remove", A)
    gip_tags(info, environ, "--vo", "atlas", "--sc", "sc1", "add", C)
    (info / "cms" / "cms.list").write_bytes(b"VO-cms-x\n# caf\xe9 latin-1 comment\n")
    (info / "lhcb" / "lhcb.list").write_text("VO-lhcb-pilot\n")
    gip_tags(info, environ, "--vo", "lhcb", "add", "VO-lhcb-x")
    (info / "atlas" / "atlas.ldif").chmod(0o664)
    os.chown(info / "cms" / "cms.list", 65534, 65534)
    (info / "notes.txt").write_text("not a folder\n")
    (info / "atlas" / "README").write_text("not a kept file\n")
    return info


def contents(info: Path) -> Dict[str, Tuple[bytes, int, int, int]]:
    """Every kept file: bytes, mode, owner, group (locks and notes left out)."""
    kept = {}
    for path in sorted(info.rglob("*")):
        if path.is_file() and not path.name.endswith(".lock") and path.name not in ("README", "notes.txt"):
            status = path.stat()
            kept[str(path.relative_to(info))] = (path.read_bytes(), stat.S_IMODE(status.st_mode), status.st_uid,
                                                 status.st_gid)
    return kept


def test_export_holds_every_folder_and_kept_file(tree):
    document = archive.export_tree(tree, "2024-05-01T12:00:00.000000Z")
    assert document["format"] == "gip-tags-export" and document["version"] == 1
    found = {(f["vo"], f["subcluster"]): sorted(e["name"] for e in f["files"]) for f in document["folders"]}
    assert found == {
        ("atlas", None): [".atlas.ldif.history", "atlas.ldif"],
        ("cms", None): ["cms.list"],
        ("lhcb", None): [".lhcb.ldif.history", "lhcb.ldif", "lhcb.list.migrated"],
        ("atlas", "sc1"): [".atlas.ldif.history", "atlas.ldif"],
    }
    cms = next(f for f in document["folders"] if f["vo"] == "cms")["files"][0]
    assert "text" not in cms and cms["owner"] == "nobody" and cms["mode"] == "0644"


def test_export_then_import_into_an_empty_tree_gives_it_all_back(tree, tmp_path, environ):
    exported = gip_tags(tree, environ, "--json", "export")
    assert exported.exit_code == 0
    saved = tmp_path / "backup.json"
    saved.write_text(archive.dump(exported.document["export"]))
    fresh = tmp_path / "reinstalled"
    outcome = gip_tags(fresh, environ, "import", str(saved))
    assert outcome.exit_code == 0, outcome.document["error"]
    before, after = contents(tree), contents(fresh)
    assert set(after) - set(before) == {"cms/.cms.ldif.history"}  # the import itself is recorded
    assert [r["command"] for r in history.read_history(fresh / "cms" / ".cms.ldif.history").records] == ["import"]
    for name, (data, mode, uid, gid) in before.items():
        if name.endswith(".history"):
            imported = history.read_history(fresh / name).records
            assert history.read_history(tree / name).records == imported[:-1]
            assert imported[-1]["command"] == "import"
        else:
            assert after[name] == (data, mode, uid, gid), name
    assert gip_tags(fresh, environ, "--vo", "atlas", "list").document["tags"] == [B]
    assert gip_tags(fresh, environ, "--vo", "atlas", "restore", "--steps", "1").document["tags"] == []


def test_export_to_a_file(tree, tmp_path, environ, capsys):
    target = tmp_path / "out.json"
    outcome = gip_tags(tree, environ, "export", "-o", str(target))
    assert outcome.exit_code == 0 and outcome.document["files"] == 8
    assert json.loads(target.read_text())["format"] == "gip-tags-export"
    assert capsys.readouterr().out == ""


def test_import_refuses_a_tree_with_later_changes_unless_forced(tree, tmp_path, environ):
    saved = tmp_path / "backup.json"
    gip_tags(tree, environ, "export", "-o", str(saved))
    gip_tags(tree, environ, "--vo", "atlas", "add", C)
    before = contents(tree)
    refused = gip_tags(tree, environ, "import", str(saved))
    assert refused.exit_code == 1 and refused.document["newer"] == [str(tree / "atlas" / ".atlas.ldif.history")]
    assert contents(tree) == before
    forced = gip_tags(tree, environ, "import", str(saved), "--force")
    assert forced.exit_code == 0
    assert (tree / "atlas" / "atlas.ldif").read_text() == f"{B}\n"
    undone = gip_tags(tree, environ, "--vo", "atlas", "restore", "--steps", "1")
    assert undone.document["tags"] == [B, C]


def test_import_removes_a_tag_file_the_export_did_not_have(tree, tmp_path, environ):
    saved = tmp_path / "backup.json"
    gip_tags(tree, environ, "export", "-o", str(saved))
    (tree / "cms" / "cms.ldif").write_text("VO-cms-newer\n")
    assert gip_tags(tree, environ, "import", str(saved)).exit_code == 0
    assert not (tree / "cms" / "cms.ldif").exists()
    assert gip_tags(tree, environ, "--vo", "cms", "list").document["tags"] == ["VO-cms-x"]
    last = history.read_history(tree / "cms" / ".cms.ldif.history").records[-1]
    assert last["previous_tags"] == ["VO-cms-newer"]


def test_import_dry_run_writes_nothing(tree, tmp_path, environ):
    saved = tmp_path / "backup.json"
    gip_tags(tree, environ, "export", "-o", str(saved))
    fresh = tmp_path / "fresh"
    outcome = gip_tags(fresh, environ, "--dry-run", "import", str(saved))
    assert outcome.exit_code == 0 and len(outcome.document["files"]) == 8
    assert not fresh.exists()


def test_import_from_stdin(tree, tmp_path, environ):
    import io

    data = archive.dump(archive.export_tree(tree, history.format_time(0))).encode()
    fresh = tmp_path / "fresh"
    outcome = invoke(["--info-dir", str(fresh), "import", "-"], environ=environ, stdin=io.BytesIO(data))
    assert outcome.exit_code == 0
    assert (fresh / "lhcb" / "lhcb.ldif").read_text() == "VO-lhcb-pilot\nVO-lhcb-x\n"


def good_document() -> Dict[str, object]:
    return {"format": "gip-tags-export", "version": 1, "created": "2024-05-01T12:00:00.000000Z", "folders": [
        {"vo": "atlas", "subcluster": None, "mode": "0755", "owner": "root", "group": "root",
         "files": [{"name": "atlas.ldif", "mode": "0644", "owner": "root", "group": "root", "text": f"{A}\n"}]}]}


def spoiled(path: str, value) -> bytes:
    document = copy.deepcopy(good_document())
    *parents, last = path.split(".")
    target = document
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize("data, message", [
    (b"not json", "not JSON"),
    (b"[" * 100000 + b"]" * 100000, "nested too deep"),
    (b"[]", "format"),
    (spoiled("format", "tar"), "format"),
    (spoiled("version", 2), "version 2"),
    (spoiled("created", "yesterday"), "created"),
    (spoiled("folders", {}), "not a list"),
    (spoiled("folders.0.vo", "../etc"), "VO name"),
    (spoiled("folders.0.vo", "a/b"), "VO name"),
    (spoiled("folders.0.vo", ""), "empty"),
    (spoiled("folders.0.subcluster", "../../x"), "SubCluster"),
    (spoiled("folders.0.mode", "rwx"), "octal"),
    (spoiled("folders.0.owner", "root;rm -rf /"), "account"),
    (spoiled("folders.0.files.0.name", "../../etc/passwd"), "not a file gip keeps"),
    (spoiled("folders.0.files.0.name", "cms.ldif"), "not a file gip keeps"),
    (spoiled("folders.0.files.0.name", ".atlas.ldif.lock"), "not a file gip keeps"),
    (spoiled("folders.0.files.0.text", KeyError), "no \"text\""),
    (spoiled("folders.0.files.0.text", 5), "no \"text\""),
    (spoiled("folders.0.files.0.text", "VO-atlas-a\ud800\n"), "not text that a file can hold"),
])
def test_load_refuses_a_bad_document(data, message):
    with pytest.raises(InputError, match=message):
        archive.load(data, "backup.json")


def test_import_writes_the_file_as_exported_and_warns_of_what_the_provider_skips(tmp_path, environ, capsys):
    document = good_document()
    document["folders"][0]["files"][0]["text"] = f"# by hand\n{A}\nnot-a-tag\n"
    source = tmp_path / "backup.json"
    source.write_text(json.dumps(document))
    info = tmp_path / "info"
    info.mkdir()
    outcome = invoke(["--info-dir", str(info), "import", str(source)], environ=environ)
    assert outcome.exit_code == 0
    assert (info / "atlas" / "atlas.ldif").read_text() == f"# by hand\n{A}\nnot-a-tag\n"
    err = capsys.readouterr().err
    assert "atlas.ldif:3: does not start with 'VO-atlas-'" in err and "the provider does not publish it" in err


def test_load_masks_special_mode_bits():
    data = spoiled("folders.0.files.0.mode", "4755")
    loaded = archive.load(data, "x")
    assert loaded.folders[0].files[0].mode == 0o644
    assert archive.load(spoiled("folders.0.mode", "2775"), "x").folders[0].mode == 0o2775


def test_import_never_writes_through_a_symlink(tmp_path, environ):
    info = tmp_path / "info"
    (info / "atlas").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.write_text("precious\n")
    (info / "atlas" / "atlas.ldif").symlink_to(outside)
    saved = tmp_path / "backup.json"
    saved.write_bytes(json.dumps(good_document()).encode())
    outcome = gip_tags(info, environ, "import", str(saved))
    assert outcome.exit_code == 1 and "symbolic link" in outcome.document["error"]
    assert outside.read_text() == "precious\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="owners are set by name only as root")
def test_import_sets_owners_by_name(tmp_path, environ):
    document = good_document()
    document["folders"][0]["owner"] = "nobody"
    document["folders"][0]["files"][0]["owner"] = "nobody"
    document["folders"][0]["files"][0]["group"] = "nogroup"
    saved = tmp_path / "backup.json"
    saved.write_text(json.dumps(document))
    info = tmp_path / "info"
    assert gip_tags(info, environ, "import", str(saved)).exit_code == 0
    assert (info / "atlas").stat().st_uid == 65534
    status = (info / "atlas" / "atlas.ldif").stat()
    assert (status.st_uid, status.st_gid) == (65534, 65534)


def test_export_of_a_missing_tree_is_refused(tmp_path, environ):
    outcome = gip_tags(tmp_path / "nowhere", environ, "export")
    assert outcome.exit_code == 1 and "nothing to export" in outcome.document["error"]
