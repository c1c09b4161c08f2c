from __future__ import annotations

import errno
import fcntl
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip import history, store
from gip.errors import GipError, UsageError
from gip.identity import Who
from gip.store import (
    Ownership, Plan, Refused, case_map, describe_denied, editing, held_spellings, is_canonical, kept_ownership, locate,
    new_file_ownership, plan_add, plan_remove, plan_replace, plan_set, read_state, refuse_invalid,
)
from gip.tagfile import parse_tags, render_tag_file

A, B, C = "VO-atlas-a", "VO-atlas-b", "VO-atlas-c"
WHO = Who("atlassgm", None)


@pytest.fixture
def info(tmp_path) -> Path:
    (tmp_path / "info" / "atlas").mkdir(parents=True)
    return tmp_path / "info"


def commit(info: Path, plan_of, command: str = "add", subcluster: Optional[str] = None, timeout: float = 5):
    paths = locate(info, "atlas", subcluster)
    with editing(paths, WHO, timeout) as transaction:
        return transaction.commit(plan_of(transaction.state.tags), command)


def test_locate_names_the_files_beside_the_tag_file(tmp_path):
    paths = locate(tmp_path, "atlas")
    assert paths.tags == tmp_path / "atlas" / "atlas.ldif"
    assert paths.legacy == tmp_path / "atlas" / "atlas.list"
    assert paths.lock.name == ".atlas.ldif.lock"
    assert paths.history.name == ".atlas.ldif.history"
    assert paths.temp_prefix == ".atlas.ldif.tmp-"
    assert paths.migrated.name == "atlas.list.migrated"
    assert locate(tmp_path, "cms", "sc-1").tags == tmp_path / "sc-1" / "cms" / "cms.ldif"


@pytest.mark.parametrize("vo, subcluster", [("../etc", None), ("a/b", None), ("", None), ("..", None),
                                            ("Atlas", None), ("atlas", "../x"), ("atlas", ""), ("atlas", "a/b")])
def test_locate_refuses_names_that_leave_the_folder(tmp_path, vo, subcluster):
    with pytest.raises(UsageError):
        locate(tmp_path, vo, subcluster)


# Plans: pure functions on lists of tags.

@pytest.mark.parametrize("current, wanted, tags, added", [
    ([], [A], [A], [A]),
    ([B], [A, C], [A, B, C], [A, C]),
    ([A], [A], [A], []),
    ([A], [A, A, B], [A, B], [B]),
    ([C, A], [B], [A, B, C], [B]),
])
def test_plan_add(current, wanted, tags, added):
    plan = plan_add(current, wanted)
    assert (plan.tags, plan.added, plan.removed) == (tags, added, [])


@pytest.mark.parametrize("current, wanted, existing", [
    ([A], ["VO-atlas-A"], {"VO-atlas-A": A}),
    ([], [A, "VO-atlas-A"], {"VO-atlas-A": A}),
    ([A, B], [C, "VO-ATLAS-b"], {"VO-ATLAS-b": B}),
])
def test_plan_add_refuses_case_variants_naming_the_spelling_there(current, wanted, existing):
    with pytest.raises(Refused) as refused:
        plan_add(current, wanted)
    assert refused.value.details == {"existing": existing}
    assert all(held in str(refused.value) for held in existing.values())


@pytest.mark.parametrize("current, unwanted, ignore, tags, removed, missing", [
    ([A, B], [A], False, [B], [A], []),
    ([A, B], ["vo-ATLAS-b"], False, [A], [B], []),
    ([A, B], [A, "VO-atlas-x"], True, [B], [A], ["VO-atlas-x"]),
    ([A], [A, A], False, [], [A], []),
    ([A], ["VO-atlas-a\nVO-atlas-b"], True, [A], [], ["VO-atlas-a\nVO-atlas-b"]),
    (["VO-atlas-k"], ["VO-atlas-\u212a"], True, ["VO-atlas-k"], [], ["VO-atlas-\u212a"]),  # Kelvin sign: not ASCII
])
def test_plan_remove(current, unwanted, ignore, tags, removed, missing):
    plan = plan_remove(current, unwanted, ignore)
    assert (plan.tags, plan.removed, plan.missing) == (tags, removed, missing)


def test_plan_remove_is_all_or_nothing():
    with pytest.raises(Refused) as refused:
        plan_remove([A, B], [A, "VO-atlas-x"], False)
    assert refused.value.details == {"missing": ["VO-atlas-x"]}


@pytest.mark.parametrize("current, old, new, tags, added, removed", [
    ([A, B], A, C, [B, C], [C], [A]),
    ([A], "vo-atlas-A", "VO-atlas-A", ["VO-atlas-A"], ["VO-atlas-A"], [A]),
    ([A], A, A, [A], [], []),
    ([A, B], A, B, [B], [], [A]),
])
def test_plan_replace(current, old, new, tags, added, removed):
    plan = plan_replace(current, old, new)
    assert (plan.tags, plan.added, plan.removed) == (tags, added, removed)


@pytest.mark.parametrize("current, old, new", [([A], C, B), ([A, B], A, "VO-atlas-B")])
def test_plan_replace_refuses(current, old, new):
    with pytest.raises(Refused):
        plan_replace(current, old, new)


def test_plan_set():
    plan = plan_set([A, B], [B, C])
    assert (plan.tags, plan.added, plan.removed, plan.changed) == ([B, C], [C], [A], True)
    assert not plan_set([A], [A]).changed


@pytest.mark.parametrize("tags, expected", [
    ([], {}),
    ([A, "VO-atlas-MixedCase"], {"vo-atlas-a": A, "vo-atlas-mixedcase": "VO-atlas-MixedCase"}),
])
def test_case_map(tags, expected):
    assert case_map(tags) == expected


@pytest.mark.parametrize("tag, reason", [
    ("VO-cms-x", "names VO 'cms'"),
    ("VO-atlas-a b", "holds ' '"),
    ("VO-atlas-é", "not ASCII"),
])
def test_refuse_invalid_gives_the_provider_reason(tag, reason):
    with pytest.raises(Refused, match=reason) as refused:
        refuse_invalid("atlas", [A, tag])
    assert list(refused.value.details["invalid"]) == [tag]


# Ownership and messages.

def fake_stat(mode: int, uid: int = 500, gid: int = 600) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))


@pytest.mark.parametrize("folder_mode, root, expected", [
    (stat.S_IFDIR | 0o755, False, Ownership(0o644, -1, 600)),
    (stat.S_IFDIR | 0o775, False, Ownership(0o664, -1, 600)),
    (stat.S_IFDIR | 0o2775, True, Ownership(0o664, 500, 600)),
])
def test_new_file_ownership(folder_mode, root, expected):
    assert new_file_ownership(fake_stat(folder_mode), root) == expected


def test_kept_ownership():
    assert kept_ownership(fake_stat(stat.S_IFREG | 0o640), False) == Ownership(0o640, -1, 600)
    assert kept_ownership(fake_stat(stat.S_IFREG | 0o600), True) == Ownership(0o600, 500, 600)


@pytest.mark.parametrize("uid, groups, expected", [
    (501, [501], "cannot write /x/atlas: folder owned by root:root, mode 0755; you are u501 (uid 501), "
                 "not the owner or in group root"),
    (0, [0], "cannot write /x/atlas: folder owned by root:root, mode 0755; you are u501 (uid 0), "
             "the owner, but the mode gives the owner no write access"),
    (501, [7, 0], "cannot write /x/atlas: folder owned by root:root, mode 0755; you are u501 (uid 501), "
                  "in group root, but the mode gives the group no write access"),
])
def test_describe_denied(uid, groups, expected):
    assert describe_denied("/x/atlas", "folder", "write", fake_stat(stat.S_IFDIR | 0o755, 0, 0), "u501", uid,
                           groups) == expected


# Reading.

def test_read_state_prefers_ldif_then_list(info):
    folder = info / "atlas"
    assert read_state(locate(info, "atlas")).exists is False
    (folder / "atlas.list").write_text(f"{B}, {A}\n")
    state = read_state(locate(info, "atlas"))
    assert (state.legacy, state.tags, state.path.name) == (True, [B, A], "atlas.list")
    (folder / "atlas.ldif").write_text(f"{C}\n")
    state = read_state(locate(info, "atlas"))
    assert (state.legacy, state.tags, state.sorted_tags) == (False, [C], [C])


def test_read_state_refuses_a_missing_folder_pointing_to_init(info):
    with pytest.raises(Refused, match="init --owner"):
        read_state(locate(info, "cms"))


def test_read_state_refuses_a_fifo(info):
    os.mkfifo(info / "atlas" / "atlas.ldif")
    with pytest.raises(GipError, match="not a regular file"):
        read_state(locate(info, "atlas"))


def test_state_of_a_hand_edited_file(info):
    (info / "atlas" / "atlas.ldif").write_text(f"# ours\n{B} {A}\n")
    state = read_state(locate(info, "atlas"))
    assert state.hand_text == f"# ours\n{B} {A}\n"
    assert state.sha256 == history.tags_sha256([A, B])


# Writing.

def test_commit_writes_the_canonical_form_and_records_it(info):
    record = commit(info, lambda tags: plan_add(tags, [B, A]))
    assert (info / "atlas" / "atlas.ldif").read_text() == f"{A}\n{B}\n"
    records = history.read_history(info / "atlas" / ".atlas.ldif.history").records
    assert records == [record]
    assert record["added"] == [A, B] and record["previous_tags"] == []
    assert record["sha256"] == history.tags_sha256([A, B]) and record["previous_sha256"] == history.EMPTY_SHA256
    assert record["account"] == "atlassgm" and record["command"] == "add"
    assert [p.name for p in (info / "atlas").iterdir() if ".tmp-" in p.name] == []


def test_a_new_file_gets_the_folder_group_and_0664_in_a_shared_folder(info):
    folder = info / "atlas"
    os.chown(folder, -1, 65534)
    folder.chmod(0o775)
    commit(info, lambda tags: plan_add(tags, [A]))
    for name in ("atlas.ldif", ".atlas.ldif.history", ".atlas.ldif.lock"):
        info_ = os.stat(folder / name)
        assert (stat.S_IMODE(info_.st_mode), info_.st_gid) == (0o664, 65534), name


def test_a_rewritten_file_keeps_its_mode_and_group(info):
    path = info / "atlas" / "atlas.ldif"
    path.write_text(f"{A}\n")
    path.chmod(0o640)
    os.chown(path, 65534, 65534)
    commit(info, lambda tags: plan_add(tags, [B]))
    kept = os.stat(path)
    assert (stat.S_IMODE(kept.st_mode), kept.st_uid, kept.st_gid) == (0o640, 65534, 65534)


def test_the_first_write_over_a_hand_edited_file_keeps_its_text_in_the_history(info):
    path = info / "atlas" / "atlas.ldif"
    path.write_text(f"# installed by hand\n{B}, {A}\nVO-cms-wrong\n")
    record = commit(info, lambda tags: plan_add(tags, [C]))
    assert path.read_text() == f"{A}\n{B}\n{C}\n"
    assert record["previous_tags"] == [A, B]
    assert "# installed by hand" in record["previous_text"] and "VO-cms-wrong" in record["previous_text"]
    second = commit(info, lambda tags: plan_remove(tags, [C], False), "remove")
    assert "previous_text" not in second and "previous_tags" not in second


def test_legacy_list_is_migrated_once(info, capsys):
    folder = info / "atlas"
    (folder / "atlas.list").write_text(f"{A}\nnot-a-tag\n")
    record = commit(info, lambda tags: plan_add(tags, [B]))
    assert (folder / "atlas.ldif").read_text() == f"{A}\n{B}\n"
    assert not (folder / "atlas.list").exists()
    assert (folder / "atlas.list.migrated").read_text() == f"{A}\nnot-a-tag\n"
    assert record["migrated_from"] == str(folder / "atlas.list") and record["previous_tags"] == [A]
    assert "not-a-tag" in capsys.readouterr().err


def test_a_second_migration_does_not_overwrite_the_first(info):
    folder = info / "atlas"
    (folder / "atlas.list.migrated").write_text("first\n")
    (folder / "atlas.list").write_text(f"{A}\n")
    commit(info, lambda tags: plan_add(tags, [B]))
    assert (folder / "atlas.list.migrated").read_text() == "first\n"
    assert (folder / "atlas.list.migrated.1").read_text() == f"{A}\n"


def test_a_hand_edit_between_writes_is_recorded_as_an_external_edit(info):
    path = info / "atlas" / "atlas.ldif"
    commit(info, lambda tags: plan_add(tags, [A, B]))
    path.write_text(f"{A}\n{C}\n")
    commit(info, lambda tags: plan_add(tags, ["VO-atlas-d"]))
    records = history.read_history(info / "atlas" / ".atlas.ldif.history").records
    edit = records[1]
    assert edit["command"] == "external-edit"
    assert (edit["added"], edit["removed"], edit["tags"]) == ([C], [B], [A, C])
    assert records[2]["previous_sha256"] == edit["sha256"]
    assert history.target_by_steps(records, 2).tags == [A, B]


def test_stale_temporary_files_are_removed_by_the_next_writer(info):
    folder = info / "atlas"
    (folder / ".atlas.ldif.tmp-deadbeef").write_text("half a file")
    (folder / ".cms.ldif.tmp-1").write_text("not ours")
    commit(info, lambda tags: plan_add(tags, [A]))
    assert not (folder / ".atlas.ldif.tmp-deadbeef").exists()
    assert (folder / ".cms.ldif.tmp-1").exists()


def _hold_lock(path: str, ready, release) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    ready.set()
    release.wait(30)


def test_lock_timeout_leaves_the_file_as_it_was(info):
    commit(info, lambda tags: plan_add(tags, [A]))
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(info / "atlas" / ".atlas.ldif.lock"), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(GipError, match="held the lock .* for 0.2 s; the tag file was left as it was"):
            commit(info, lambda tags: plan_add(tags, [B]), timeout=0.2)
    finally:
        release.set()
        holder.join(10)
    assert (info / "atlas" / "atlas.ldif").read_text() == f"{A}\n"
    commit(info, lambda tags: plan_add(tags, [B]))
    assert (info / "atlas" / "atlas.ldif").read_text() == f"{A}\n{B}\n"


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["tag file", "history"])
def test_a_full_disk_leaves_the_file_and_history_as_they_were(info, monkeypatch, where):
    commit(info, lambda tags: plan_add(tags, [A]))
    folder = info / "atlas"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    if where == "tag file":
        monkeypatch.setattr(store, "write_all", _no_space)
    else:
        monkeypatch.setattr(os, "posix_fallocate", _no_space)
    with pytest.raises(GipError, match="no space left .*the tag file was left as it was"):
        commit(info, lambda tags: plan_add(tags, [B]))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_record_that_could_not_be_written_is_caught_by_the_next_writer(info, monkeypatch):
    commit(info, lambda tags: plan_add(tags, [A]))
    monkeypatch.setattr(os, "pwrite", _no_space)
    with pytest.raises(GipError, match="were changed, but its history record could not be written"):
        commit(info, lambda tags: plan_add(tags, [B]))
    monkeypatch.undo()
    commit(info, lambda tags: plan_add(tags, [C]))
    records = history.read_history(info / "atlas" / ".atlas.ldif.history").records
    assert [r["command"] for r in records] == ["add", "external-edit", "add"]
    assert history.target_by_steps(records, 2).tags == [A]


def test_a_read_only_transaction_cannot_commit(info):
    transaction = store.inspect(locate(info, "atlas"), WHO)
    with pytest.raises(RuntimeError):
        transaction.commit(Plan([A], [A], [], []), "add")
    assert not (info / "atlas" / ".atlas.ldif.lock").exists()


def _as_nobody(info: Path, queue) -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    try:
        commit(info, lambda tags: plan_add(tags, [A]))
        queue.put("no error")
    except GipError as error:
        queue.put(str(error))


@pytest.fixture
def open_folder():
    """A folder every account can reach (pytest's own are private to root), removed afterwards."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="gip-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another account")
def test_permission_denied_names_the_folder_its_owner_and_the_missing_access(open_folder):
    info = open_folder / "info"
    (info / "atlas").mkdir(parents=True)
    info.chmod(0o755)
    (info / "atlas").chmod(0o755)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_as_nobody, args=(info, queue))
    child.start()
    message = queue.get(timeout=20)
    child.join(10)
    assert message == (f"cannot write {info / 'atlas'}: folder owned by root:root, mode 0755; you are nobody "
                       f"(uid 65534), not the owner or in group root; nothing was changed")
    assert list((info / "atlas").iterdir()) == []


# The shortcuts taken for files of 20,000 tags agree with the plain way.

pieces = st.sampled_from([A, B, C, "VO-atlas-A", "VO-atlas-d", "\n", " ", ",", "\r\n", "#c\n", "\ufeff", "bad!", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=12))
def test_is_canonical_agrees_with_rendering(parts):
    data = "".join(parts).encode("utf-8")
    read = parse_tags(data, "atlas", "x")
    sorted_tags = sorted(read.tags)
    assert is_canonical(read.data, read.tags, sorted_tags) == (read.data == render_tag_file(sorted_tags))


names = st.text(alphabet="abAB\u212a\u0130k-", min_size=1, max_size=4).map(lambda t: "VO-atlas-" + t)


@settings(max_examples=300, deadline=None)
@given(st.lists(names, max_size=8, unique_by=str.lower), st.lists(names, max_size=20))
def test_held_spellings_agrees_with_lower(current, wanted):
    expected = {}
    for tag in wanted:
        match = [held for held in current if tag.isascii() and held.lower() == tag.lower()]
        if match:
            expected[tag] = match[0]
    assert held_spellings(current, wanted) == expected


def _list_as_nobody(info: Path, queue) -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    try:
        read_state(locate(info, "atlas"))
        queue.put("no error")
    except GipError as error:
        queue.put(str(error))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another account")
def test_an_unreadable_tag_file_is_named_with_its_owner(open_folder):
    info = open_folder / "info"
    (info / "atlas").mkdir(parents=True)
    for folder in (info, info / "atlas"):
        folder.chmod(0o755)
    (info / "atlas" / "atlas.ldif").write_text(f"{A}\n")
    (info / "atlas" / "atlas.ldif").chmod(0o600)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_list_as_nobody, args=(info, queue))
    child.start()
    message = queue.get(timeout=20)
    child.join(10)
    assert message == (f"cannot read {info / 'atlas' / 'atlas.ldif'}: file owned by root:root, mode 0600; "
                       "you are nobody (uid 65534), not the owner or in group root")


def test_a_file_gip_wrote_is_known_by_inode_size_and_mtime(info):
    paths = locate(info, "atlas")
    record = commit(info, lambda tags: plan_add(tags, [A, B]))
    assert record["file"] == store.fingerprint(os.stat(paths.tags))
    assert read_state(paths).written_as(record)
    os.utime(paths.tags, ns=(0, 1))
    assert not read_state(paths).written_as(record)
    paths.tags.write_text(f"{A}\n{C}\n")  # same size, edited in place
    edited = read_state(paths)
    assert not edited.written_as(record)
    assert edited.sha256 == history.tags_sha256([A, C])
    assert store.inspect(paths, WHO).pending[0]["command"] == "external-edit"
