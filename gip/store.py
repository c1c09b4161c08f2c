"""The tag-file store: the one way gip changes a tag file, and the changes commands make.

Beside ``<vo>.ldif`` gip keeps files whose names start with a dot, so the
provider (which reads only ``<vo>.ldif`` and ``<vo>.list``) never takes them
for tags: ``.<vo>.ldif.lock``, ``.<vo>.ldif.history`` (see gip.history) and
temporary files ``.<vo>.ldif.tmp-<random>``.

A change is made under a POSIX byte-range lock (``fcntl.lockf``: unlike
``flock`` it works over NFS, where these folders often live) on the lock file,
polled with backoff until a timeout. Holding it, the writer removes every
temporary file left in the folder (only a writer holding the lock makes them,
and it removes or renames them before letting go, so any found are a killed
writer's), reads the file, changes the tags in memory, validates, writes the
canonical form (gip.tagfile.render_tag_file of the sorted tags) to a new
temporary file (O_EXCL), fsyncs it, gives it the old file's mode and group
(and owner, where we are root), reserves the history record, renames the
temporary file over the tag file, fsyncs the folder and fills the record.
A reader sees the old file or the new one, never a part of one. A file whose
inode, size and modification time are those its last history record names is
the one gip wrote: its hash is taken from the record, not computed again.

Writes never go through a symlink: the tag file is replaced by rename (which
never follows one) and a symlink planted at its name is refused; the lock,
the history and the temporary files are opened with O_NOFOLLOW, and the
history must be a regular file with a single name. Reads may follow symlinks,
because sites mount these folders.

A new file gets the folder's group, mode 0644 (0664 when the folder is
group-writable, for pooled software-manager accounts) and, where we are root,
the folder's owner. The first write over a legacy ``<vo>.list`` migrates its
valid tags into ``<vo>.ldif`` and renames it ``<vo>.list.migrated``; its
invalid tokens are reported and stay in that file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence

from gip import log
from gip.errors import GipError, UsageError
from gip.identity import Who, account_name
from gip.report import Problem, shown
from gip.tagfile import TagFile, parse_tags, render_tag_file
from gip.tags import TagRule
from gip.tagtree import LEGACY_SUFFIX, TAG_SUFFIX, vo_folder

if TYPE_CHECKING:  # gip.history (and hashlib, json) is imported where a change is made, not to list
    from gip import history


MIGRATED_SUFFIX = ".migrated"
_FIRST_DELAY = 0.001
_MAX_DELAY = 0.05
_UNCHANGED = "the tag file was left as it was"


class Refused(GipError):
    """A command refused, nothing changed; ``details`` go into the JSON document."""

    def __init__(self, message: str, details: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.details = details or {}


class TagPaths(NamedTuple):
    """One tag file and the files gip keeps beside it."""

    vo: str
    subcluster: Optional[str]
    folder: Path
    tags: Path
    legacy: Path
    lock: Path
    history: Path
    temp_prefix: str

    @property
    def migrated(self) -> Path:
        return self.legacy.with_name(self.legacy.name + MIGRATED_SUFFIX)


def locate(info_dir: Path, vo: str, subcluster: Optional[str] = None) -> TagPaths:
    """The paths of VO ``vo``'s file (of one SubCluster); bad names raise UsageError."""
    folder = vo_folder(info_dir, vo, subcluster)
    name = vo + TAG_SUFFIX
    return TagPaths(
        vo=vo,
        subcluster=subcluster,
        folder=folder,
        tags=folder / name,
        legacy=folder / (vo + LEGACY_SUFFIX),
        lock=folder / f".{name}.lock",
        history=folder / f".{name}.history",
        temp_prefix=f".{name}.tmp-",
    )


class Ownership(NamedTuple):
    """Mode, owner and group for a file being written; -1 leaves owner or group as they come."""

    mode: int
    uid: int
    gid: int


def new_file_ownership(folder: os.stat_result, root: bool) -> Ownership:
    """A new file: the folder's group, 0664 in a group-writable folder else 0644, the folder's owner if root."""
    mode = 0o664 if folder.st_mode & stat.S_IWGRP else 0o644
    return Ownership(mode, folder.st_uid if root else -1, folder.st_gid)


def kept_ownership(existing: os.stat_result, root: bool) -> Ownership:
    """A replaced file keeps its mode and group, and its owner where we are root."""
    return Ownership(stat.S_IMODE(existing.st_mode), existing.st_uid if root else -1, existing.st_gid)


class State:
    """What one tag file holds now: the ``.ldif``, else the legacy ``.list``, else nothing."""

    def __init__(self, path: Path, content: TagFile, exists: bool, legacy: bool,
                 info: Optional[os.stat_result] = None) -> None:
        self.path = path
        self.content = content
        self.exists = exists
        self.legacy = legacy
        self.info = info
        self._canonical: Optional[bytes] = None
        self._sha256: Optional[str] = None

    @property
    def tags(self) -> List[str]:
        return self.content.tags

    @property
    def problems(self) -> List[Problem]:
        return self.content.problems

    @cached_property
    def sorted_tags(self) -> List[str]:
        return sorted(self.content.tags)

    @property
    def canonical(self) -> bytes:
        """The form gip would write these tags in."""
        if self._canonical is None:
            data = self.content.data
            if self.exists and not self.legacy and is_canonical(data, self.content.tags, self.sorted_tags):
                self._canonical = data
            else:
                self._canonical = render_tag_file(self.sorted_tags)
        return self._canonical

    @property
    def sha256(self) -> str:
        """The hash of the canonical form, as the history records it."""
        if self._sha256 is None:
            from gip.history import content_sha256

            self._sha256 = content_sha256(self.canonical)
        return self._sha256

    def written_as(self, record: Optional[Dict[str, Any]]) -> bool:
        """True when this file is the one ``record`` left (same inode, size and modification time).

        Such a file is gip's canonical output and its hash is the record's, so
        neither is worked out again: hashing 20,000 tags costs more than the
        rest of a change. A file edited since has another modification time;
        one replaced, another inode.
        """
        if record is None or self.legacy or self.info is None or record.get("file") != fingerprint(self.info):
            return False
        self._canonical = self.content.data
        self._sha256 = str(record.get("sha256"))
        return True

    @property
    def hand_text(self) -> Optional[str]:
        """The text of a file gip did not write (comments, other order), which a rewrite would lose."""
        data = self.content.data
        if not self.exists or not data.strip() or (not self.legacy and data == self.canonical):
            return None
        return data.decode("utf-8", "backslashreplace")


def fingerprint(info: os.stat_result) -> Dict[str, int]:
    """What tells the file a record describes from a file changed since."""
    return {"inode": info.st_ino, "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def read_state(paths: TagPaths) -> State:
    """Reads the tag file (following symlinks: sites mount these folders)."""
    require_folder(paths)
    for path, legacy in ((paths.tags, False), (paths.legacy, True)):
        state = _read_if_there(path, paths.vo, legacy)
        if state is not None:
            return state
    return State(paths.tags, TagFile(str(paths.tags), paths.vo, []), exists=False, legacy=False)


def require_folder(paths: TagPaths) -> os.stat_result:
    """The folder's status; a missing folder is refused with a pointer to ``init``."""
    try:
        info = os.stat(paths.folder)
    except FileNotFoundError:
        raise Refused(f"no tag folder {paths.folder}: a site admin creates it with `{_init_hint(paths)}`") from None
    except PermissionError:
        raise GipError(denied_message(paths.folder, "search")) from None
    except OSError as error:  # a file on the way, a name too long, a loop of links
        raise GipError(f"{paths.folder}: not a usable tag folder: {error.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise GipError(f"{paths.folder} is not a folder")
    return info


def _read_if_there(path: Path, vo: str, legacy: bool) -> Optional[State]:
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise GipError(f"{path} is not a regular file")
        with open(path, "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        if os.path.islink(path):  # a link to nothing: not the same as no file
            raise GipError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist") from None
        return None
    except PermissionError:
        raise GipError(denied_message(path, "read")) from None
    except OSError as error:
        raise GipError(f"cannot read {path}: {error.strerror}") from None
    return State(path, parse_tags(data, vo, str(path)), exists=True, legacy=legacy, info=info)


def _init_hint(paths: TagPaths) -> str:
    where = f" --sc {paths.subcluster}" if paths.subcluster else ""
    info_dir = paths.folder.parent.parent if paths.subcluster else paths.folder.parent
    return f"gip-tags --info-dir {info_dir} --vo {paths.vo}{where} init --owner <software manager account>"


def is_canonical(data: bytes, tags: Sequence[str], sorted_tags: Sequence[str]) -> bool:
    """True when ``data``, read as ``tags``, is ``render_tag_file(sorted_tags)``, without rendering it.

    Rendering 20,000 tags again costs more than the rest of a change. When the
    reader found exactly ``tags`` in this order, sorted, and the bytes are as
    many as the tags plus one newline each, with that many newlines and one at
    the end, every separator is a single newline: the canonical form.
    """
    if list(tags) != list(sorted_tags) or (data and data[-1:] != b"\n"):
        return False
    return len(data) == sum(map(len, tags)) + len(tags) and data.count(b"\n") == len(tags)


# Changes: what a command does to a list of tags, worked out in memory.


class Plan(NamedTuple):
    """The tags a file will hold (sorted) and how they differ from what it holds."""

    tags: List[str]
    added: List[str]
    removed: List[str]
    missing: List[str]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)

    @classmethod
    def keeping(cls, tags: List[str]) -> Plan:
        """No change: the file keeps ``tags``."""
        return cls(tags, [], [], [])


def refuse_invalid(vo: str, tags: Sequence[str]) -> None:
    """Refuses the whole command when one tag is not valid, as the provider would skip it."""
    rule = TagRule(vo)
    invalid = {tag: reason for tag in tags for reason in [rule.problem(tag)] if reason is not None}
    if invalid:
        reasons = "; ".join(f"{shown(tag)}: {reason}" for tag, reason in invalid.items())
        raise Refused(f"invalid tag(s), nothing was changed: {reasons}", {"invalid": invalid})


def refuse_problems(problems: Sequence[Problem]) -> None:
    """Refuses tags read from a file when the reader skipped anything in it."""
    if problems:
        listed = "; ".join(str(p) for p in problems)
        invalid = {str(p): p.reason for p in problems}
        raise Refused(f"invalid tag(s), nothing was changed: {listed}", {"invalid": invalid})


def plan_add(current: Sequence[str], wanted: Sequence[str]) -> Plan:
    """Adds ``wanted``; one there already is a no-op, one there in another case is refused."""
    asked: Dict[str, str] = {}
    clashes: Dict[str, str] = {}
    for tag in wanted:
        first = asked.setdefault(tag.lower(), tag)
        if first != tag:
            clashes[tag] = first
    present = set(current)
    new = [tag for tag in asked.values() if tag not in present]
    clashes.update(held_spellings(current, new))
    if clashes:
        listed = ", ".join(f"{shown(t)} (there as {shown(h)})" for t, h in clashes.items())
        raise Refused(f"differs only in case from a tag already there or asked for: {listed}; "
                      "the BDII would reject both; nothing was changed", {"existing": clashes})
    return Plan(sorted([*current, *new]), sorted(new), [], [])


def plan_remove(current: Sequence[str], unwanted: Sequence[str], ignore_missing: bool) -> Plan:
    """Removes ``unwanted`` ignoring case; all or nothing unless ``ignore_missing``."""
    present = set(current)
    removed = {tag for tag in unwanted if tag in present}
    others = [tag for tag in unwanted if tag not in present]
    held = held_spellings(current, others)
    missing = [tag for tag in others if tag not in held]
    removed.update(held.values())
    if missing and not ignore_missing:
        listed = ", ".join(shown(t) for t in missing)
        raise Refused(f"not there: {listed}; nothing was changed (--ignore-missing removes the others)",
                      {"missing": missing})
    kept = [tag for tag in current if tag not in removed]
    return Plan(sorted(kept), [], sorted(removed), missing)


def held_spellings(current: Sequence[str], wanted: Sequence[str]) -> Dict[str, str]:
    """For each wanted tag equal but for case to one in ``current``, the spelling there.

    Case is ASCII case, as LDAP compares these IA5 strings: a tag that is not
    ASCII never matches. A few tags are looked up in one lower-cased copy of
    the text; many, or a list that is not ASCII itself, through case_map.
    """
    wanted = [tag for tag in wanted if tag.isascii() and "\n" not in tag]
    if not wanted:
        return {}
    text = "\n" + "\n".join(current) + "\n"
    if len(wanted) > 16 or not text.isascii():
        held = case_map(current)
        return {tag: held[tag.lower()] for tag in wanted if tag.lower() in held}
    lowered = text.lower()
    found = {}
    for tag in wanted:
        at = lowered.find("\n" + tag.lower() + "\n")
        if at >= 0:
            found[tag] = text[at + 1:at + 1 + len(tag)]
    return found


def case_map(tags: Sequence[str]) -> Dict[str, str]:
    """Lower-cased tag to its spelling. One lower() of the joined text is far quicker than
    one per tag on a file of 20,000; valid tags hold no newline, so the split lines up."""
    return dict(zip("\n".join(tags).lower().split("\n"), tags))


def plan_replace(current: Sequence[str], old: str, new: str) -> Plan:
    """Replaces ``old`` (ignoring case) by ``new``, in one change."""
    without = plan_remove(current, [old], ignore_missing=False)
    with_new = plan_add(without.tags, [new])
    removed = [t for t in without.removed if t not in with_new.added]
    added = [t for t in with_new.added if t not in without.removed]
    return Plan(with_new.tags, added, removed, [])


def plan_set(current: Sequence[str], target: Sequence[str]) -> Plan:
    """Makes the file hold exactly ``target``."""
    now, then = set(current), set(target)
    return Plan(sorted(then), sorted(then - now), sorted(now - then), [])


# Transactions: reading and changing one file, under its lock.


class Transaction:
    """One command's transaction on one tag file: its state and history as read, and (locked) the change."""

    def __init__(self, paths: TagPaths, state: State, who: Who, clock: Callable[[], float], locked: bool) -> None:
        self.paths = paths
        self.state = state
        self.who = who
        self.clock = clock
        self.locked = locked
        self.last = _last_record(paths.history)
        state.written_as(self.last)
        self.pending = self._unrecorded_change()

    def records(self) -> List[history.Record]:
        """The whole history, with the change found unrecorded (if any) at its end."""
        from gip import history

        return history.read_history(self.paths.history).records + self.pending

    def commit(self, plan: Plan, command: str, extra: Optional[Dict[str, Any]] = None) -> history.Record:
        """Writes ``plan.tags`` as the file and records the change; raises GipError, file unchanged."""
        from gip.history import content_sha256

        if not self.locked:
            raise RuntimeError("commit needs the lock")
        data = render_tag_file(plan.tags)
        temp = write_temp(self.paths, data, self._ownership_for_tags())
        try:
            record = self.record_for(command, plan, content_sha256(data), extra)
            record["file"] = fingerprint(os.lstat(temp))
        except BaseException:
            _discard(temp)
            raise
        self._write(temp, [*self.pending, record])
        self.pending = []
        self.last = record
        self.state = State(self.paths.tags, TagFile(str(self.paths.tags), self.paths.vo, list(plan.tags), [], data),
                           exists=True, legacy=False, info=_lstat(self.paths.tags))
        return record

    def note(self, command: str, extra: Dict[str, Any]) -> history.Record:
        """Records something that changed nothing, such as a failed validation."""
        from gip import history

        if not self.locked:
            raise RuntimeError("note needs the lock")
        plan = Plan.keeping(self.state.sorted_tags)
        record = self.record_for(command, plan, self.state.sha256, extra)
        record["changed"] = False
        if self.state.exists and not self.state.legacy and self.state.info is not None:
            record["file"] = fingerprint(self.state.info)
        try:
            history.append(self.paths.history, [*self.pending, record], *self.history_ownership())
        except OSError as error:
            raise os_failure(error, self.paths.history, _UNCHANGED) from None
        self.pending = []
        self.last = record
        return record

    def record_for(self, command: str, plan: Plan, sha: str, extra: Optional[Dict[str, Any]]) -> history.Record:
        """The record of ``plan`` made by ``command`` over the state read, with what restore needs."""
        from gip.history import format_time

        state = self.state
        record: history.Record = {
            "time": format_time(self.clock()),
            "account": self.who.account,
            "identity": self.who.identity(),
            "command": command,
            "changed": True,
            "added": sorted(plan.added),
            "removed": sorted(plan.removed),
            "previous_sha256": state.sha256,
            "sha256": sha,
        }
        if self.last is None and not self.pending:
            record["previous_tags"] = state.sorted_tags
        if state.hand_text is not None:
            record["previous_text"] = state.hand_text
        if state.legacy:
            record["migrated_from"] = str(state.path)
        record.update(extra or {})
        return record

    def _unrecorded_change(self) -> List[history.Record]:
        """An ``external-edit`` record when the file is not what the last record says."""
        from gip import history

        last = self.last
        if last is None or last.get("sha256") == self.state.sha256:
            return []
        known = history.state_after_last(history.read_history(self.paths.history).records)
        tags = set(self.state.tags)
        when = self.state.info.st_mtime if self.state.info is not None else self.clock()
        return [{
            "time": max(history.format_time(when), str(last.get("time"))),
            "account": self.who.account,
            "identity": None,
            "command": history.EXTERNAL_EDIT,
            "changed": True,
            "note": "the file changed without a record (edited by hand, or a writer died before recording); "
                    "time is the file's, account is who found it",
            "added": sorted(tags - known) if known is not None else [],
            "removed": sorted(known - tags) if known is not None else [],
            "previous_sha256": last.get("sha256"),
            "sha256": self.state.sha256,
            "tags": self.state.sorted_tags,
            **({} if known is not None else {"diff_known": False}),
        }]

    def history_ownership(self) -> Sequence[int]:
        """Mode, uid and gid for a history file created now."""
        own = new_file_ownership(os.stat(self.paths.folder), _root())
        return own.mode, own.uid, own.gid

    def _ownership_for_tags(self) -> Ownership:
        if self.state.exists and self.state.info is not None:
            return kept_ownership(self.state.info, _root())
        return new_file_ownership(os.stat(self.paths.folder), _root())

    def _write(self, temp: Path, records: List[history.Record]) -> None:
        """Reserves the records, renames ``temp`` over the tag file, fills the records."""
        from gip import history

        paths = self.paths
        try:
            reservation = history.reserve(paths.history, records, *self.history_ownership())
        except OSError as error:
            _discard(temp)
            raise os_failure(error, paths.history, _UNCHANGED) from None
        except BaseException:
            _discard(temp)
            raise
        try:
            os.rename(temp, paths.tags)
        except OSError as error:
            reservation.cancel()
            _discard(temp)
            raise os_failure(error, paths.tags, _UNCHANGED) from None
        self._after_rename(reservation)

    def _after_rename(self, reservation: history.Reservation) -> None:
        if self.state.legacy:
            retire_legacy(self.paths, self.state.problems)
        fsync_folder(self.paths.folder)
        try:
            reservation.fill()
        except OSError as error:
            raise GipError(f"the tags in {self.paths.tags} were changed, but its history record could not be "
                           f"written ({error.strerror}); the next change will record it as an external edit") from None


def _last_record(path: Path) -> Optional[history.Record]:
    from gip.history import last_record

    return last_record(path)


def inspect(paths: TagPaths, who: Who, clock: Callable[[], float] = time.time) -> Transaction:
    """A read-only transaction, without the lock: for --dry-run and for reading the history."""
    return Transaction(paths, read_state(paths), who, clock, locked=False)


@contextmanager
def editing(paths: TagPaths, who: Who, lock_timeout: float,
            clock: Callable[[], float] = time.time) -> Iterator[Transaction]:
    """A transaction holding the file's lock, with stale temporary files cleaned."""
    folder = require_folder(paths)
    with hold_lock(paths.lock, lock_timeout, new_file_ownership(folder, _root())):
        clean_stale_temps(paths)
        refuse_symlink(paths.tags)
        yield Transaction(paths, read_state(paths), who, clock, locked=True)


# The primitives: lock, temporary file, rename, folder fsync.


@contextmanager
def hold_lock(path: Path, timeout: float, ownership: Ownership) -> Iterator[None]:
    """Holds a POSIX write lock on ``path`` (created if needed, never through a symlink)."""
    fd = _open_lock(path, ownership)
    try:
        _acquire(fd, path, timeout)
        yield
    finally:
        # Closing any descriptor of the file drops a POSIX lock: this is the only one we open.
        os.close(fd)


def _open_lock(path: Path, ownership: Ownership) -> int:
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = os.open(path, flags)
        else:
            apply_ownership(fd, ownership, path)
    except OSError as error:
        raise os_failure(error, path, "nothing was changed") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise GipError(f"refusing to use {path} as a lock: not a regular file")
    return fd


def _acquire(fd: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EAGAIN):
                raise os_failure(error, path, "nothing was changed") from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GipError(f"another writer held the lock {path} for {timeout:g} s; {_UNCHANGED} "
                           "(try again, or wait longer with --lock-timeout or GIP_LOCK_TIMEOUT)")
        # Jitter keeps many waiting writers from retrying in step.
        time.sleep(min(delay * (0.5 + os.urandom(1)[0] / 255), remaining))
        delay = min(delay * 2, _MAX_DELAY)


def clean_stale_temps(paths: TagPaths) -> List[str]:
    """Removes temporary files a killed writer left; call with the lock held."""
    removed = []
    with os.scandir(paths.folder) as entries:
        stale = [entry.name for entry in entries if entry.name.startswith(paths.temp_prefix)]
    for name in stale:
        try:
            os.unlink(paths.folder / name)
        except FileNotFoundError:
            continue
        except OSError as error:
            log.warning("%s: cannot remove a stale temporary file: %s", paths.folder / name, error.strerror)
            continue
        removed.append(name)
        log.info("removed %s, left by a writer that was stopped", paths.folder / name)
    return removed


def refuse_symlink(path: Path) -> None:
    """Refuses to write where a symlink stands: it may point anywhere."""
    info = _lstat(path)
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise Refused(f"refusing to write {path}: it is a symbolic link ({os.readlink(path)}); "
                      "gip writes only regular files in the tag folder; nothing was changed")


def write_temp(paths: TagPaths, data: bytes, ownership: Ownership) -> Path:
    """A new temporary file in the folder holding ``data``, fsynced, with ``ownership``."""
    path = paths.folder / (paths.temp_prefix + os.urandom(8).hex())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise os_failure(error, path, _UNCHANGED) from None
    try:
        write_all(fd, data)
        apply_ownership(fd, ownership, path)
        os.fsync(fd)
    except OSError as error:
        os.close(fd)
        _discard(path)
        raise os_failure(error, path, _UNCHANGED) from None
    except BaseException:
        os.close(fd)
        _discard(path)
        raise
    os.close(fd)
    return path


def replace_file(paths: TagPaths, target: Path, data: bytes, ownership: Ownership) -> None:
    """Writes ``target`` in ``paths.folder`` atomically (temporary file, fsync, rename, folder fsync)."""
    refuse_symlink(target)
    temp = write_temp(paths, data, ownership)
    try:
        os.rename(temp, target)
    except OSError as error:
        _discard(temp)
        raise os_failure(error, target, "it was left as it was") from None
    fsync_folder(paths.folder)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def apply_ownership(fd: int, ownership: Ownership, path: Path) -> None:
    """Mode always; owner and group where allowed (a group we are not in is left as it comes)."""
    os.fchmod(fd, ownership.mode)
    info = os.fstat(fd)
    uid = -1 if ownership.uid in (-1, info.st_uid) else ownership.uid
    gid = -1 if ownership.gid in (-1, info.st_gid) else ownership.gid
    if uid == -1 and gid == -1:
        return
    try:
        os.fchown(fd, uid, gid)
    except PermissionError:
        log.warning("%s: cannot give it group %s (you are not in it); it keeps yours", path, _group_name(gid))


def fsync_folder(folder: Path) -> None:
    """Makes a rename durable; some file systems refuse fsync on a folder, which we accept."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def retire_legacy(paths: TagPaths, problems: Sequence[Problem]) -> Optional[Path]:
    """Renames ``<vo>.list`` to ``<vo>.list.migrated`` (numbered when that exists)."""
    target = paths.migrated
    number = 1
    while os.path.lexists(target):
        target = paths.migrated.with_name(f"{paths.migrated.name}.{number}")
        number += 1
    try:
        os.rename(paths.legacy, target)
    except OSError as error:
        log.warning("%s: migrated to %s but cannot rename it: %s; the provider reads %s first",
                    paths.legacy, paths.tags.name, error.strerror, paths.tags.name)
        return None
    for problem in problems:
        log.warning("%s (not migrated; kept in %s)", problem, target)
    log.info("migrated %s to %s; the old file is now %s", paths.legacy, paths.tags, target)
    return target


def _discard(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _lstat(path: Path) -> Optional[os.stat_result]:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _root() -> bool:
    return os.geteuid() == 0


# Messages: errors that say which file, whose it is, and what access is missing.


def os_failure(error: OSError, path: Path, outcome: str) -> GipError:
    """An OSError met while writing ``path``, as a message that says what happened to the file."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return GipError(f"no space left on the device (or quota) writing {path}; {outcome}")
    if error.errno in (errno.EACCES, errno.EPERM):
        where = Path(error.filename) if error.filename else path
        return GipError(f"{denied_message(where, 'write')}; {outcome}")
    if error.errno == errno.ELOOP:
        return Refused(f"refusing to write {path}: it is a symbolic link; {outcome}")
    return GipError(f"cannot write {path}: {error.strerror}; {outcome}")


def denied_message(path: Path, access: str) -> str:
    """Why ``access`` to ``path`` (or, where it does not exist, to its folder) is refused."""
    target, kind = path, "file"
    info = _stat(target)
    if info is None:
        target, kind, access = path.parent, "folder", "write" if access == "write" else "search"
        info = _stat(target)
    if info is None:
        return f"cannot {access} {path}: permission denied"
    if stat.S_ISDIR(info.st_mode):
        kind = "folder"
    uid = os.getuid()
    return describe_denied(str(target), kind, access, info, account_name(uid), uid, _own_groups())


def describe_denied(
    path: str, kind: str, access: str, info: os.stat_result, user: str, uid: int, groups: Sequence[int]
) -> str:
    """``cannot write /x/atlas: folder owned by atlassgm:atlas, mode 0755; you are cmssgm (uid 501), ...``."""
    group = _group_name(info.st_gid)
    head = (f"cannot {access} {path}: {kind} owned by {account_name(info.st_uid)}:{group}, "
            f"mode {stat.S_IMODE(info.st_mode):04o}; you are {user} (uid {uid}), ")
    if uid == info.st_uid:
        return head + f"the owner, but the mode gives the owner no {access} access"
    if info.st_gid in groups:
        return head + f"in group {group}, but the mode gives the group no {access} access"
    return head + f"not the owner or in group {group}"


def _stat(path: Path) -> Optional[os.stat_result]:
    try:
        return os.stat(path)
    except OSError:
        return None


def _own_groups() -> List[int]:
    return sorted({os.getgid(), os.getegid(), *os.getgroups()})


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# Setting up a folder for a software-manager account (init), and giving files to their owners.


class Owner(NamedTuple):
    """The account (and group) a VO's tag folder belongs to."""

    user: str
    uid: int
    group: str
    gid: int
    shared: bool

    @property
    def folder_mode(self) -> int:
        return 0o775 if self.shared else 0o755

    @property
    def file_mode(self) -> int:
        return 0o664 if self.shared else 0o644

    def describe(self) -> str:
        return f"owned by {self.user}:{self.group}, folder mode {self.folder_mode:04o}, file mode {self.file_mode:04o}"


def resolve_owner(user: str, group: Optional[str]) -> Owner:
    """The account ``user`` and ``group`` (default: the account's own group) by name."""
    import grp
    import pwd

    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise UsageError(f"--owner {user!r}: no such account") from None
    if group is None:
        return Owner(user, account.pw_uid, _group_name(account.pw_gid), account.pw_gid, shared=False)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise UsageError(f"--group {group!r}: no such group") from None
    return Owner(user, account.pw_uid, group, gid, shared=True)


def init_tag_file(paths: TagPaths, owner: Owner, who: Who, lock_timeout: float,
                  clock: Callable[[], float] = time.time) -> bool:
    """Creates the folder and an empty tag file for ``owner`` (or gives existing ones to it).

    A legacy ``<vo>.list`` is migrated rather than hidden behind an empty file.
    Returns True when the tag file was created.
    """
    if not _root() and owner.uid != os.getuid():
        raise Refused(f"init gives {paths.folder} to {owner.user}: run it as root; nothing was changed")
    make_parents(paths)
    make_folder(paths.folder, owner.folder_mode, owner.uid, owner.gid)
    with editing(paths, who, lock_timeout, clock) as transaction:
        created = not transaction.state.exists or transaction.state.legacy
        if created:
            tags = transaction.state.sorted_tags
            transaction.commit(Plan.keeping(tags), "init", {"owner": owner.user, "group": owner.group})
    for path in (paths.tags, paths.lock, paths.history):
        give_file(path, Ownership(owner.file_mode, owner.uid, owner.gid))
    return created


def make_parents(paths: TagPaths) -> None:
    """The info folder (and the SubCluster's folder) where missing: 0755, ours."""
    parents = [paths.folder.parent]
    if paths.subcluster is not None:
        parents.insert(0, paths.folder.parent.parent)
    for parent in parents:
        try:
            os.makedirs(parent, 0o755, exist_ok=True)
        except OSError as error:
            raise os_failure(error, parent, "nothing was changed") from None


def make_folder(folder: Path, mode: int, uid: int, gid: int) -> None:
    """Creates ``folder`` if missing and sets its mode and owner, never through a symlink."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise os_failure(error, folder, "nothing was changed") from None
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(f"refusing to set up {folder}: not a real folder (a symbolic link?)") from None
        raise os_failure(error, folder, "nothing was changed") from None
    try:
        _set_owner_and_mode(fd, folder, mode, uid, gid)
    finally:
        os.close(fd)


def give_file(path: Path, ownership: Ownership) -> None:
    """Sets an existing regular file's mode and owner through a descriptor (no symlink, no race)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as error:
        raise os_failure(error, path, "its owner and mode were left as they were") from None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            _set_owner_and_mode(fd, path, ownership.mode, ownership.uid, ownership.gid)
    finally:
        os.close(fd)


def _set_owner_and_mode(fd: int, path: Path, mode: int, uid: int, gid: int) -> None:
    info = os.fstat(fd)
    try:
        if uid not in (-1, info.st_uid) or gid not in (-1, info.st_gid):
            os.fchown(fd, uid, gid)
        if stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)
    except PermissionError:
        owner = "(kept)" if uid == -1 else account_name(uid)
        group = "(kept)" if gid == -1 else _group_name(gid)
        log.warning("%s: cannot set owner %s:%s and mode %04o (that needs root or the owner)", path, owner, group, mode)
