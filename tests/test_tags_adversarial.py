"""Hostile input: bad tags, names that climb out of the folder, symlinks planted where gip writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gip import history
from gip.cli.tags import invoke
from gip.tagfile import read_tag_file
from gip.tags import TagRule

A = "VO-atlas-a"
ENV = {"X509_USER_PROXY": "/nonexistent"}


@pytest.fixture
def world(tmp_path) -> Tuple[Path, Path]:
    """An info folder with one tag, and a precious file outside it."""
    info = tmp_path / "info"
    (info / "atlas").mkdir(parents=True)
    assert gip_tags(info, "--vo", "atlas", "add", A).exit_code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("do not touch\n")
    return info, outside


def gip_tags(info: Path, *argv: str):
    return invoke(["--info-dir", str(info), *argv], environ=ENV)


def state_of(root: Path) -> Dict[str, Tuple[bytes, int]]:
    """Every file under ``root`` (links not followed): content and mtime."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return found


BAD_TAGS = [
    "VO-atlas-a\nVO-atlas-b", "VO-atlas-a\rb", "VO-atlas-dn:x", "dn: o=grid", "VO-atlas-a,VO-atlas-b", "VO-atlas-é",
    "VO-atlas-\u0000", "VO-atlas-a\x00b", "VO-atlas-" + "x" * 10240, " VO-atlas-x", "VO-atlas-x ", "VO-atlas-",
    "VO-atlas--x", "VO-cms-x", "vo-atlas-x", "", "VO-atlas-x#y", "VO-atlas-x/../../y", "VO-atlas-\t",
    "VO-atlas-x\u2028y", "VO-atlas-ＡＢＣ",
]


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_a_bad_tag_is_refused_and_nothing_is_written(world, tag):
    info, outside = world
    before = state_of(info.parent)
    for argv in (["add", tag], ["add", "VO-atlas-good", tag], ["replace", A, tag]):
        outcome = gip_tags(info, "--vo", "atlas", *argv)
        assert outcome.exit_code == 1, argv
        assert outcome.document["changed"] is False
    assert state_of(info.parent) == before


@pytest.mark.parametrize("content", [
    b"VO-atlas-x\x00y\n", b"VO-atlas-\xff\n", b"VO-atlas-ok\nVO-cms-x\n", b"dn: o=grid\n", b"VO-atlas-" + b"y" * 10240,
])
def test_a_bad_token_in_an_input_file_is_refused(world, tmp_path, content):
    info, _ = world
    source = tmp_path / "input"
    source.write_bytes(content)
    before = state_of(info)
    outcome = gip_tags(info, "--vo", "atlas", "add", "--from-file", str(source))
    assert outcome.exit_code == 1
    assert state_of(info) == before


@pytest.mark.parametrize("vo", ["../etc", "a/b", "", ".", "..", "/etc", "atlas/../../x", "-x", "Atlas", "atlas\n",
                                "at las", "é", "a" * 300])
def test_a_bad_vo_name_is_refused(world, vo):
    info, _ = world
    before = state_of(info.parent)
    for argv in (["list"], ["add", f"VO-{vo}-x"], ["remove", "x"], ["history"], ["clean", "--yes"],
                 ["init", "--owner", "root"], ["restore", "--steps", "1"]):
        outcome = gip_tags(info, "--vo", vo, *argv)
        assert outcome.exit_code == 2, (vo, argv)
    assert state_of(info.parent) == before
    assert sorted(p.name for p in info.parent.iterdir()) == ["info", "outside"]


@pytest.mark.parametrize("subcluster", ["../etc", "a/b", "", ".", "..", "/tmp", "-sc", "sc\n1", "sc 1"])
def test_a_bad_subcluster_id_is_refused(world, subcluster):
    info, _ = world
    before = state_of(info.parent)
    for argv in (["list"], ["add", A], ["init", "--owner", "root"]):
        assert gip_tags(info, "--vo", "atlas", "--sc", subcluster, *argv).exit_code == 2
    assert state_of(info.parent) == before


def plant(link: Path, target: Path) -> None:
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)


@pytest.mark.parametrize("name", ["atlas.ldif", ".atlas.ldif.history", ".atlas.ldif.lock"])
@pytest.mark.parametrize("target", ["precious", "missing"])
def test_a_symlink_planted_where_gip_writes_is_refused(world, name, target):
    info, outside = world
    folder = info / "atlas"
    plant(folder / name, outside / target)
    before_outside, before_folder = state_of(outside), state_of(folder)
    for argv in (["add", "VO-atlas-b"], ["remove", A], ["clean", "--yes"], ["restore", "--steps", "1"]):
        outcome = gip_tags(info, "--vo", "atlas", *argv)
        assert outcome.exit_code == 1, (name, argv, outcome.document)
        assert "symbolic link" in outcome.document["error"] or "history holds 0" in outcome.document["error"]
    assert state_of(outside) == before_outside
    assert state_of(folder) == before_folder
    assert not (outside / "missing").exists()
    assert (folder / name).is_symlink()


def test_a_symlinked_tag_file_is_still_read(world):
    info, outside = world
    (outside / "site.ldif").write_text("VO-atlas-from-the-mount\n")
    plant(info / "atlas" / "atlas.ldif", outside / "site.ldif")
    assert gip_tags(info, "--vo", "atlas", "list").document["tags"] == ["VO-atlas-from-the-mount"]


def test_a_symlink_at_a_temporary_name_is_removed_not_followed(world):
    info, outside = world
    folder = info / "atlas"
    for suffix in ("0000000000000000", "deadbeefdeadbeef"):
        plant(folder / f".atlas.ldif.tmp-{suffix}", outside / "precious")
    before = state_of(outside)
    assert gip_tags(info, "--vo", "atlas", "add", "VO-atlas-b").exit_code == 0
    assert state_of(outside) == before
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name]
    assert (folder / "atlas.ldif").read_text() == f"{A}\nVO-atlas-b\n"


def test_a_hard_link_planted_at_the_history_is_refused(world):
    info, outside = world
    history_path = info / "atlas" / ".atlas.ldif.history"
    history_path.unlink()
    os.link(outside / "precious", history_path)
    before = state_of(outside)
    outcome = gip_tags(info, "--vo", "atlas", "add", "VO-atlas-b")
    assert outcome.exit_code == 1 and "single name" in outcome.document["error"]
    assert state_of(outside) == before
    assert (info / "atlas" / "atlas.ldif").read_text() == f"{A}\n"


def test_a_folder_planted_at_the_tag_file_is_refused(world):
    info, _ = world
    path = info / "atlas" / "atlas.ldif"
    path.unlink()
    path.mkdir()
    assert gip_tags(info, "--vo", "atlas", "add", "VO-atlas-b").exit_code == 1
    assert path.is_dir() and list(path.iterdir()) == []


def test_a_garbled_history_does_not_stop_writes_and_is_not_trusted(world):
    info, _ = world
    history_path = info / "atlas" / ".atlas.ldif.history"
    with open(history_path, "ab") as stream:
        stream.write(b"\x00\xff{not json\n")
    assert gip_tags(info, "--vo", "atlas", "add", "VO-atlas-b").exit_code == 0
    assert read_tag_file(info / "atlas" / "atlas.ldif", "atlas").tags == [A, "VO-atlas-b"]
    last = history.read_history(history_path).records[-1]
    assert last["previous_tags"] == [A]  # the unreadable line is not taken as the last state
    assert gip_tags(info, "--vo", "atlas", "restore", "--steps", "1").document["tags"] == [A]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=0, max_size=40) | st.sampled_from(["--validate", "--", "-x", "--json", A.upper()])
                | st.from_regex(r"VO-atlas-[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True), min_size=1, max_size=4))
def test_any_argument_leaves_a_file_of_valid_tags(world, tags):
    """Whatever an ESM types, the file stays one the provider reads without a problem."""
    info, _ = world
    rule = TagRule("atlas")
    outcome = gip_tags(info, "--vo", "atlas", "add", "--", *tags)
    valid = all(rule.is_valid(t) for t in tags) and len({t.lower() for t in tags}) == len(set(tags))
    if valid:
        assert outcome.exit_code == 0 or (outcome.exit_code == 1 and outcome.document["existing"])
    else:
        assert outcome.exit_code == 1 and outcome.document["changed"] is False
    read = read_tag_file(info / "atlas" / "atlas.ldif", "atlas")
    assert read.problems == []
    assert all(rule.is_valid(t) for t in read.tags)
