"""The history of one tag file, and the earlier states it lets ``restore`` put back.

Format: JSON Lines (one JSON object per line, UTF-8 text that is in fact ASCII,
LF endings) in ``.<vo>.ldif.history`` beside the tag file; the leading dot
keeps the provider away from it. Every record holds:

* ``time``: UTC, ISO 8601 with microseconds, ``2024-05-01T12:00:00.000000Z``;
* ``account``: the login name of the real uid; ``identity``: the grid identity or null;
* ``command``: ``add``, ``remove``, ``replace``, ``clean``, ``restore``,
  ``import``, ``init``, or ``external-edit`` for a change gip did not make;
* ``changed``: false for a record that changed nothing (a failed validation);
* ``added``, ``removed``: the exact spellings, sorted;
* ``previous_sha256``, ``sha256``: SHA-256 of the canonical form of the tag
  list before and after (``render_tag_file`` of the sorted tags: for a file gip
  wrote, the hash of the file itself);
* ``file``: inode, size and modification time of the tag file the record left,
  so the next writer knows an unchanged file without hashing it again;
* where known and needed: ``validation`` (command, exit code, output tail),
  ``previous_tags`` (the full list before: the first record over a file gip did
  not write, ``import``), ``tags`` (the full list after: ``external-edit``),
  ``previous_text`` (a hand-edited file's text, comments included, so nothing
  typed by a person is lost when gip rewrites it in canonical form).

States are derived forward: from a record holding ``previous_tags`` (or one
whose ``previous_sha256`` is that of the empty list), each record's diff gives
the next state; ``tags`` re-anchors. A record whose ``previous_sha256`` is not
its predecessor's ``sha256`` breaks the chain. Where the forward walk cannot
reach a state (a lost beginning, an unreadable line), it is derived backward
from the file as it is now, undoing diffs down the unbroken part of the chain;
an ``external-edit`` whose diff was not known (``diff_known`` false) stops that
walk. A derived state is checked against its hash before it is put back.

Crash safety, in the order a change is made (the store holds the lock):

1. the new tag file is written to a temporary file and fsynced;
2. the history record is *reserved*: the file grows by the record's length
   (``posix_fallocate``), so a full disk is found before anything changes;
3. the temporary file is renamed over the tag file and the folder fsynced;
4. the record is written into the reserved bytes and the history fsynced.

A crash before 3 leaves the tag file as it was and perhaps a tail of zero
bytes in the history: a last line without a newline is torn, ignored by
readers and cut off by the next writer. A crash between 3 and 4 leaves a
change with no record: the next writer sees that the file's hash is not the
last record's and records an ``external-edit`` holding the full list before
its own change. Recording first and renaming second would instead leave a
record of a change that never happened. Either way the chain stays honest,
and restore never puts back a state the file did not have.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any, Callable, Collection, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple

from gip.errors import GipError
from gip.report import Problem
from gip.tagfile import render_tag_file


def _sha256_function() -> Callable[[bytes], Any]:
    """The interpreter's own SHA-256 (``_sha256``; ``_sha2`` from Python 3.12), else hashlib's.

    Importing hashlib loads OpenSSL, which takes longer than a whole change of a
    20,000-tag file; start-up time is what an ESM's scripts wait for.
    """
    for name in ("_sha256", "_sha2"):
        try:
            return importlib.import_module(name).sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    from hashlib import sha256

    return sha256

Record = Dict[str, Any]

_SHA256 = _sha256_function()
EMPTY_SHA256: str = _SHA256(b"").hexdigest()
EXTERNAL_EDIT = "external-edit"
_FRACTION = re.compile(r"([T ]\d\d:\d\d:\d\d)[.,](\d+)")
_TAIL_CHUNK = 65536


def tags_sha256(sorted_tags: Sequence[str]) -> str:
    """The hash of a tag list's canonical form; ``sorted_tags`` must be sorted already."""
    return content_sha256(render_tag_file(sorted_tags))


def content_sha256(canonical: bytes) -> str:
    """The hash of a canonical form already rendered (render_tag_file of the sorted tags)."""
    return str(_SHA256(canonical).hexdigest())


def format_time(epoch: float) -> str:
    """``2024-05-01T12:00:00.123456Z``: ISO 8601, UTC, sortable as text."""
    seconds = int(epoch)
    micro = int(round((epoch - seconds) * 1_000_000))
    if micro == 1_000_000:
        seconds, micro = seconds + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micro:06d}Z"


def parse_time(text: str) -> float:
    """Seconds since the epoch for an ISO 8601 time; a time without a zone is UTC."""
    from datetime import datetime, timezone

    cleaned = text.strip()
    if cleaned[-1:] in ("Z", "z"):
        cleaned = cleaned[:-1] + "+00:00"
    # Python 3.9 reads only 3 or 6 digits of a fraction of a second.
    cleaned = _FRACTION.sub(lambda m: m.group(1) + "." + (m.group(2) + "00000")[:6], cleaned)
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class History(NamedTuple):
    """The records of one history file, oldest first, and the lines that could not be read."""

    records: List[Record]
    problems: List[Problem]


def _open_for_reading(path: Path) -> Optional[int]:
    """A descriptor of the history file to read, None when there is none.

    Anything but a regular file is refused before a byte is read: a link
    (another file's content), a FIFO (reading it waits for ever, and a writer
    holds the lock meanwhile) or a device.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise GipError(f"the history {path} is a symbolic link; refused") from None
        raise GipError(f"cannot read the history {path}: {error.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise GipError(f"the history {path} is not a regular file; refused")
    return fd


def read_history(path: Path) -> History:
    """Every record of ``path``; a missing file is an empty history."""
    fd = _open_for_reading(path)
    if fd is None:
        return History([], [])
    try:
        with os.fdopen(fd, "rb") as stream:
            data = stream.read()
    except OSError as error:
        raise GipError(f"cannot read the history {path}: {error.strerror}") from None
    history = History([], [])
    lines = data.split(b"\n")
    # The piece after the last newline is empty, or a record a crash cut short.
    for number, line in enumerate(lines[:-1], 1):
        record = _decode(line)
        if record is None:
            history.problems.append(Problem(str(path), number, "not a history record; skipped"))
        else:
            history.records.append(record)
    return history


def last_record(path: Path) -> Optional[Record]:
    """The last complete record, read from the end; None when there is none or it is unreadable."""
    fd = _open_for_reading(path)
    if fd is None:
        return None
    try:
        return _decode(_last_line(fd))
    except OSError as error:
        raise GipError(f"cannot read the history {path}: {error.strerror}") from None
    finally:
        os.close(fd)


def encode_records(records: Sequence[Record]) -> bytes:
    """Records as JSON Lines; ASCII only, so a reader never meets an encoding question."""
    return "".join(json.dumps(r, ensure_ascii=True, separators=(",", ":")) + "\n" for r in records).encode("ascii")


class Reservation:
    """Bytes set aside at the end of a history file, filled when the change has been made."""

    def __init__(self, fd: int, offset: int, data: bytes, path: Path) -> None:
        self._fd = fd
        self._offset = offset
        self._data = data
        self.path = path

    def fill(self) -> None:
        """Writes the records into the reserved bytes and fsyncs; the file descriptor is closed."""
        try:
            view = memoryview(self._data)
            offset = self._offset
            while view:
                written = os.pwrite(self._fd, view, offset)
                view, offset = view[written:], offset + written
            os.fsync(self._fd)
        finally:
            os.close(self._fd)

    def cancel(self) -> None:
        """Gives the reserved bytes back: the change was not made."""
        try:
            os.ftruncate(self._fd, self._offset)
        finally:
            os.close(self._fd)


def reserve(path: Path, records: Sequence[Record], mode: int, uid: int, gid: int) -> Reservation:
    """Opens ``path`` (never through a symlink), cuts a torn tail and reserves room for ``records``.

    ``mode``, ``uid`` and ``gid`` (-1: leave) apply to a history file created here.
    """
    data = encode_records(records)
    fd = _open_for_append(path, mode, uid, gid)
    try:
        offset = _cut_torn_tail(fd)
        os.posix_fallocate(fd, offset, len(data))
    except BaseException:
        os.close(fd)
        raise
    return Reservation(fd, offset, data, path)


def append(path: Path, records: Sequence[Record], mode: int, uid: int, gid: int) -> None:
    """Appends ``records`` at once (reserve, then fill)."""
    reserve(path, records, mode, uid, gid).fill()


class Target(NamedTuple):
    """A state of the file found in the history: its sorted tags, and what it was."""

    tags: List[str]
    sha256: str
    position: int
    time: Optional[str]
    description: str


def target_by_steps(records: Sequence[Record], steps: int, current: Optional[Collection[str]] = None) -> Target:
    """The state before the last ``steps`` changes (records that changed nothing do not count).

    ``current``: the file's tags now, which the last record must describe; states
    the forward replay cannot reach are then found by undoing diffs from it.
    """
    changes = [i for i, r in enumerate(records) if r.get("changed", True)]
    if steps < 1:
        raise GipError("--steps must be 1 or more")
    if steps > len(changes):
        raise GipError(f"the history holds {len(changes)} recorded changes, not {steps}; nothing was changed")
    last = "the last change" if steps == 1 else f"the last {steps} changes"
    return _target(records, changes[-steps], False, current, f"before {last}")


def target_before_time(records: Sequence[Record], moment: float, current: Optional[Collection[str]] = None) -> Target:
    """The state in force just before ``moment``: after the last record made earlier."""
    earlier = [i for i, r in enumerate(records) if _record_time(r) < moment]
    if earlier:
        return _target(records, earlier[-1], True, current, f"before {format_time(moment)}")
    if not records:
        raise GipError("the history is empty: there is no earlier state; nothing was changed")
    return _target(records, 0, False, current, f"before {format_time(moment)}")


def state_after_last(records: Sequence[Record]) -> Optional[FrozenSet[str]]:
    """The state the history ends in, or None where it cannot be derived."""
    if not records:
        return None
    return _replay(records, len(records) - 1)[1]


def describe(record: Record, limit: int = 10) -> str:
    """One line for a person: when, who, what."""
    who = str(record.get("account"))
    if record.get("identity"):
        who += f" ({record['identity']})"
    validation = record.get("validation")
    refused = validation.get("tags") if isinstance(validation, dict) and not record.get("changed", True) else None
    changes = [f"+{t}" for t in record.get("added") or []] + [f"-{t}" for t in record.get("removed") or []]
    shown = " ".join(changes[:limit])
    if len(changes) > limit:
        shown += f" (and {len(changes) - limit} more)"
    if refused:
        shown = "not published: " + " ".join(f"+{t}" for t in refused[:limit])
    line = f"{record.get('time')} {who} {record.get('command')}: {shown or 'no change'}"
    if isinstance(validation, dict):
        line += f" [validation exit {validation.get('exit_code')}]"
    return line


def _target(records: Sequence[Record], index: int, after: bool, current: Optional[Collection[str]],
            description: str) -> Target:
    """The state before (or after) record ``index``, checked against the hash the history gives it."""
    record = records[index]
    before_state, after_state = _replay(records, index)
    state = after_state if after else before_state
    if state is None and current is not None:
        state = _undo_to(records, index, after, frozenset(current))
    expected = str(record.get("sha256" if after else "previous_sha256"))
    if state is None:
        raise GipError(f"the history cannot tell the state {description} (record {index + 1} has no known "
                       "predecessor); nothing was changed")
    tags = sorted(state)
    if tags_sha256(tags) != expected:
        raise GipError(f"the history does not agree with itself at record {index + 1}; nothing was changed")
    return Target(tags, expected, index, record.get("time"), description)


def _replay(records: Sequence[Record], index: int) -> Tuple[Optional[FrozenSet[str]], Optional[FrozenSet[str]]]:
    """(state before, state after) record ``index``, replaying forward from the nearest anchor."""
    state: Optional[FrozenSet[str]] = None
    previous_sha: Optional[str] = None
    before: Optional[FrozenSet[str]] = None
    for record in records[: index + 1]:
        before = _state_entering(record, state, previous_sha)
        state = _state_leaving(record, before)
        previous_sha = record.get("sha256")
    return before, state


def _undo_to(records: Sequence[Record], index: int, after: bool, current: FrozenSet[str]) -> Optional[FrozenSet[str]]:
    """Walks back from the current state, undoing each record's diff, to record ``index``."""
    if not records or records[-1].get("sha256") != tags_sha256(sorted(current)):
        return None
    state: Optional[FrozenSet[str]] = current
    for position in range(len(records) - 1, index - 1, -1):
        record = records[position]
        if position == index and after:
            return state
        state = _undone(record, state)
        if position == index:
            return state
        if record.get("previous_sha256") != records[position - 1].get("sha256"):
            return None
    return None


def _undone(record: Record, after: Optional[FrozenSet[str]]) -> Optional[FrozenSet[str]]:
    anchor = record.get("previous_tags")
    if isinstance(anchor, list):
        return frozenset(map(str, anchor))
    if after is None or record.get("diff_known") is False:
        return None
    removed = frozenset(map(str, record.get("removed") or []))
    added = frozenset(map(str, record.get("added") or []))
    return (after - added) | removed


def _state_entering(
    record: Record, state: Optional[FrozenSet[str]], previous_sha: Optional[str]
) -> Optional[FrozenSet[str]]:
    anchor = record.get("previous_tags")
    if isinstance(anchor, list):
        return frozenset(map(str, anchor))
    if record.get("previous_sha256") == EMPTY_SHA256 and (state is None or not state):
        return frozenset()
    if state is not None and record.get("previous_sha256") != previous_sha:
        return None
    return state


def _state_leaving(record: Record, before: Optional[FrozenSet[str]]) -> Optional[FrozenSet[str]]:
    snapshot = record.get("tags")
    if isinstance(snapshot, list):
        return frozenset(map(str, snapshot))
    if before is None:
        return None
    removed = frozenset(map(str, record.get("removed") or []))
    added = frozenset(map(str, record.get("added") or []))
    return (before - removed) | added


def _record_time(record: Record) -> float:
    try:
        return parse_time(str(record.get("time")))
    except (ValueError, IndexError):
        return float("-inf")


def _decode(line: bytes) -> Optional[Record]:
    """The record a line holds, or None when it is not one that gip wrote (nor could have)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not _well_formed(record):
        return None
    return record


# The fields gip reads of a record, by the type it wrote them with; a record that has one of
# another type was not written by gip (an edit by hand, a disk fault) and is not read as one.
_TEXT_FIELDS = ("previous_sha256", "time", "account", "command", "previous_text", "migrated_from", "exported")
_TAG_LIST_FIELDS = ("added", "removed", "previous_tags")
_WORD = re.compile(r"[!-~]+")


def _well_formed(record: Record) -> bool:
    if not isinstance(record.get("sha256"), str):
        return False
    if any(not isinstance(record.get(name, ""), str) for name in _TEXT_FIELDS):
        return False
    if any(not _is_tag_list(record.get(name, [])) for name in _TAG_LIST_FIELDS):
        return False
    if not isinstance(record.get("changed", True), bool) or not isinstance(record.get("identity") or "", str):
        return False
    validation = record.get("validation", {})
    if not isinstance(validation, dict) or not _is_tag_list(validation.get("tags", [])):
        return False
    try:  # JSON's \ud800 escapes give strings that no file or terminal can take
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def _is_tag_list(value: Any) -> bool:
    """A list of what gip records as tags: printable ASCII words (tags, or tokens it refused)."""
    return isinstance(value, list) and all(isinstance(item, str) and _WORD.fullmatch(item) for item in value)


def _last_line(fd: int) -> bytes:
    """The last newline-terminated line of the file open at ``fd`` (b"" when there is none)."""
    position = os.fstat(fd).st_size
    buffer = b""
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        buffer = os.pread(fd, step, position) + buffer
        end = buffer.rfind(b"\n")
        if end < 0:
            continue
        start = buffer.rfind(b"\n", 0, end)
        if start >= 0 or position == 0:
            return buffer[start + 1:end]
    return b""


def _open_for_append(path: Path, mode: int, uid: int, gid: int) -> int:
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = os.open(path, flags)
    else:
        _give(fd, mode, uid, gid)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise GipError(f"refusing to write {path}: not a regular file with a single name (a planted link?)")
    return fd


def _give(fd: int, mode: int, uid: int, gid: int) -> None:
    os.fchmod(fd, mode)
    try:
        os.fchown(fd, uid, gid)
    except PermissionError:
        # Not in the folder's group: the file keeps our group, which still lets us append.
        if uid != -1:
            os.fchown(fd, uid, -1)


def _cut_torn_tail(fd: int) -> int:
    """Cuts a last line that has no newline (a crash, or a reservation never filled); returns the end."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    position = size
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        newline = os.pread(fd, step, position).rfind(b"\n")
        if newline >= 0:
            position += newline + 1
            break
    os.ftruncate(fd, position)
    return position
