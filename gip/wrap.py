"""Wrapping the batch system's BDII plugin: run it, apply the site's CE state to its output.

The batch-system plugin (lcg-info-dynamic-scheduler, the PBS, Slurm or
HTCondor dynamic plugins) prints ``GlueCEStateStatus: Production`` every
cycle. A second plugin that sets the state races it, because bdii-update runs
plugins in directory-listing order (DESIGN.md §3). So gip runs the plugin
itself and rewrites the state lines of its output: one plugin, one winner.

What the output must look like follows bdii-update's reading of a plugin
(/usr/sbin/bdii-update: read_ldif, get_dns, modify_entry), not RFC 2849 alone:

* the text is decoded as UTF-8 with universal newlines (``\\r\\n`` and a lone
  ``\\r`` end a line), then folded lines are joined (``"\\n "`` removed);
  output that is not UTF-8 makes it drop the plugin's whole output;
* it splits the text at *every* ``dn:``, even inside a value, and of two
  blocks for one DN (matched as gip.dnkey.dn_key does, except that
  bdii-update keeps spaces at the ends of a DN) only the first counts;
* a block with a ``changetype`` line applies its add/replace/delete
  operations, and ``replace`` is ignored where the entry lacks the attribute;
  a block without one ("old style") replaces only attributes the entry has.

The output stays the plugin's, byte for byte, except the state lines gip
changes or inserts; every value gip writes goes through gip.ldifvalue.

Timing: the BDII kills the whole provider group after ``BDII_READ_TIMEOUT``
(300 s by default) and then publishes nothing from it. The timeout given to
run_plugin, plus its grace (STOP_GRACE) and the final drain (under a second),
must stay well under that, or the state blocks printed after a stuck plugin
never reach the BDII.
"""

from __future__ import annotations

import binascii
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping as _Mapping

from gip import log
from gip.dnkey import dn_key, dn_keys, lower_cased_keys
from gip.errors import GipError, UsageError
from gip.ldifvalue import attribute_line

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import (Callable, Dict, FrozenSet, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence,
                        Set, Tuple)
else:
    from gip._records import NamedTuple

BDII_READ_TIMEOUT = 300.0
STOP_GRACE = 2.0
# After SIGKILL only a process that left the group can still hold the pipes.
_DRAIN_AFTER_KILL = 0.5
# Once the plugin has exited, how long a process it left behind may keep its output open, and
# how often a silent plugin is looked at for having exited.
_SETTLE_AFTER_EXIT = 1.0
_EXIT_POLL = 0.1
_STDERR_KEEP = 8192
_STDERR_LINES = 20
_STDERR_LINE_LENGTH = 300
_READ_SIZE = 65536

GLUE1_STATE = "GlueCEStateStatus"
GLUE2_STATE = "GLUE2ComputingShareServingState"

# One physical line and its end, as Python's universal newlines (and so bdii-update) see it.
_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_OPERATIONS = ("add", "replace", "delete")


# -- running the plugin ---------------------------------------------------------


class PluginRun(NamedTuple):
    """What one run of the plugin gave.

    ``output`` is None when the plugin timed out or could not start; it holds
    undecodable bytes as lone surrogates (``surrogateescape``), so encoding it
    back the same way gives the plugin's bytes. ``status`` is the exit status,
    negative for a signal, None when it never started.
    """

    argv: Tuple[str, ...]
    output: Optional[str]
    status: Optional[int]
    timed_out: bool
    error: Optional[str]
    stderr_tail: str
    pid: Optional[int] = None
    # The plugin exited, but a process it left behind held its output open: what it printed
    # until then was taken, and the plugin's process group stopped.
    left_open: bool = False

    @property
    def ok(self) -> bool:
        return self.output is not None and self.status == 0 and not self.timed_out


def run_plugin(argv: Sequence[str], timeout: float, grace: float = STOP_GRACE) -> PluginRun:
    """Runs ``argv`` (no shell) in its own session, with stdout and stderr captured.

    After ``timeout`` seconds the whole process group gets SIGTERM, then
    SIGKILL ``grace`` seconds later, so grandchildren die too; the plugin is
    always reaped. Raises UsageError for an empty argv or a timeout <= 0.
    """
    return start_plugin(argv, timeout).collect(grace)


class StartedPlugin:
    """A plugin that start_plugin() started: it runs while the caller reads its own inputs, and
    collect() takes its output (waiting up to the timeout, counted from the start). A caller that
    fails before collect() calls stop(), which leaves nothing of the plugin behind."""

    def __init__(self, command: Tuple[str, ...], timeout: float, process: Optional[subprocess.Popen[bytes]],
                 error: Optional[str] = None) -> None:
        self.command = command
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self._process = process
        self._error = error

    def collect(self, grace: float = STOP_GRACE) -> PluginRun:
        if self._process is None:
            return PluginRun(self.command, None, None, False, self._error, "")
        return _collect_run(self.command, self._process, self.timeout, self.deadline, grace)

    def stop(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGKILL)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.wait()


def start_plugin(argv: Sequence[str], timeout: float) -> StartedPlugin:
    """Starts ``argv`` as run_plugin() does, and returns at once; UsageError as run_plugin()'s."""
    command = tuple(argv)
    if not command:
        raise UsageError("no plugin command given")
    if timeout <= 0:
        raise UsageError(f"the plugin timeout must be positive, not {timeout:g} s")
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        return StartedPlugin(command, timeout, None, _start_error(error))
    return StartedPlugin(command, timeout, process)


def _collect_run(command: Tuple[str, ...], process: subprocess.Popen[bytes], timeout: float, deadline: float,
                 grace: float) -> PluginRun:
    pipes = _Pipes(process)
    try:
        finished = pipes.collect(deadline)
        if not finished:
            _stop_group(pipes, grace)
        elif pipes.left_open:
            _signal_group(process.pid, signal.SIGTERM)
    except BaseException:
        _signal_group(process.pid, signal.SIGKILL)  # interrupted: leave nothing of the plugin behind
        raise
    finally:
        pipes.close()
        # Reaped only now: until here the group's ID cannot be reused, so killpg hits only the plugin's.
        status = process.wait()
    timed_out = not finished
    output = None if timed_out else pipes.stdout.decode("utf-8", "surrogateescape")
    error = _run_error(status, timed_out, timeout)
    return PluginRun(command, output, status, timed_out, error, _tail(pipes.stderr), process.pid, pipes.left_open)


class _Pipes:
    """Reads the plugin's stdout whole and the end of its stderr, without blocking on either."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.pid = process.pid
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._streams = {process.stdout.fileno(): self.stdout, process.stderr.fileno(): self.stderr}
        self._files = (process.stdout, process.stderr)
        self._selector = selectors.DefaultSelector()
        for descriptor in self._streams:
            os.set_blocking(descriptor, False)
            self._selector.register(descriptor, selectors.EVENT_READ)
        self.left_open = False
        self._exited_at: Optional[float] = None
        self._last_read = 0.0

    def collect(self, deadline: float) -> bool:
        """Reads until both pipes end and the plugin has exited (True) or the deadline (False).

        Where the plugin has exited but a process it left behind keeps a pipe
        open, reading goes on until the pipes have been silent for
        _SETTLE_AFTER_EXIT seconds; then ``left_open`` is set and what was read
        is the output (True).
        """
        pause = 0.0005  # a plugin mostly exits right after closing its output: look again soon, then less often
        while True:
            open_pipes = bool(self._selector.get_map())
            if not open_pipes and _has_exited(self.pid):
                return True
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                return False
            if open_pipes:
                if self._exited_at is None and _has_exited(self.pid):
                    self._exited_at = now
                if self._exited_at is not None:
                    settled = max(self._exited_at, self._last_read) + _SETTLE_AFTER_EXIT - now
                    if settled <= 0:
                        self.left_open = True
                        return True
                    remaining = min(remaining, settled)
                else:
                    remaining = min(remaining, _EXIT_POLL)
                for key, _ in self._selector.select(remaining):
                    self._read(int(key.fd))
            else:
                time.sleep(min(remaining, pause))
                pause = min(pause * 2, 0.01)

    def _read(self, descriptor: int) -> None:
        try:
            chunk = os.read(descriptor, _READ_SIZE)
        except BlockingIOError:
            return
        if not chunk:
            self._selector.unregister(descriptor)
            return
        if self._exited_at is not None:
            self._last_read = time.monotonic()
        buffer = self._streams[descriptor]
        buffer += chunk
        if buffer is self.stderr and len(buffer) > 2 * _STDERR_KEEP:
            del buffer[:-_STDERR_KEEP]

    def close(self) -> None:
        self._selector.close()
        for stream in self._files:
            stream.close()


def _has_exited(pid: int) -> bool:
    """True once the plugin has exited; WNOWAIT leaves it unreaped, keeping its group ID ours."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _stop_group(pipes: _Pipes, grace: float) -> None:
    _signal_group(pipes.pid, signal.SIGTERM)
    pipes.collect(time.monotonic() + grace)
    _signal_group(pipes.pid, signal.SIGKILL)
    pipes.collect(time.monotonic() + _DRAIN_AFTER_KILL)


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone, or only members we may not signal are left


def _start_error(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "not found"
    if isinstance(error, PermissionError):
        return "not executable (permission denied)"
    return f"could not start: {error.strerror or error}"


def _run_error(status: int, timed_out: bool, timeout: float) -> Optional[str]:
    if timed_out:
        return f"still running after {timeout:g} s: stopped its process group (SIGTERM, then SIGKILL)"
    if status < 0:
        return f"killed by signal {-status} ({_signal_name(-status)})"
    if status > 0:
        return f"exited with status {status}"
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _tail(data: bytearray) -> str:
    """The last lines of the plugin's stderr, each cut short, for a log that people read."""
    lines = data.decode("utf-8", "backslashreplace").splitlines()[-_STDERR_LINES:]
    return "\n".join(line[:_STDERR_LINE_LENGTH] for line in lines if line.strip())


# -- rewriting the output --------------------------------------------------------


class Override(NamedTuple):
    """The state to publish for one attribute of one entry.

    ``dn`` as the static LDIF spells it; ``value`` already checked by the
    caller (it goes through gip.ldifvalue again); ``only_if_current`` None to
    replace whatever is there, else a value (``Production``) that alone may be
    replaced, compared ignoring case; ``static_value`` the static entry's value
    of the attribute, None when the static entry lacks it.
    """

    dn: str
    attribute: str
    value: str
    only_if_current: Optional[str] = None
    static_value: Optional[str] = None

    def wanted(self, current: Optional[str]) -> bool:
        """Whether the policy replaces ``current`` (None: the entry publishes no value)."""
        if self.only_if_current is None or current is None:
            return True
        return current.lower() == self.only_if_current.lower()


class Note(NamedTuple):
    """One thing to tell the admin on stderr, with the logging level it deserves."""

    level: int
    text: str

    def __str__(self) -> str:
        return self.text


class Change(NamedTuple):
    """A state gip changed: ``before`` is what the BDII would have published (None: nothing)."""

    dn: str
    attribute: str
    before: Optional[str]
    after: str


class Applied(NamedTuple):
    """The rewritten output; ``handled_dns`` are the dn_key()s of overridden entries it holds."""

    text: str
    handled_dns: FrozenSet[str]
    notes: Tuple[Note, ...] = ()
    changes: Tuple[Change, ...] = ()


class _Line(NamedTuple):
    """A logical line: physical lines [first, end) joined as bdii-update unfolds them."""

    first: int
    end: int
    content: str
    ending: str


if TYPE_CHECKING:
    # A line that gives an attribute, and the value bdii-update reads from it (None: unreadable).
    _Value = Tuple[_Line, Optional[str]]


class _Block(NamedTuple):
    """Where bdii-update starts an entry: a ``dn:`` at ``column`` of logical line ``line``."""

    key: Optional[str]
    line: int
    column: int


class _Span(NamedTuple):
    """An entry's extent in logical lines: its dn: line, and where the next entry starts."""

    start: int
    end: int
    end_column: int


class _Edits:
    """Replacements of whole lines, applied in one pass at the end, and what they noted and changed.

    How a _Line's ``first`` and ``end`` locate it depends on how the text was read: see the subclasses.
    """

    def __init__(self) -> None:
        self.notes: List[Note] = []
        self.changes: List[Change] = []
        self._lines: Dict[Tuple[str, str], str] = {}

    def attribute_line(self, attribute: str, value: str) -> str:
        """gip.ldifvalue.attribute_line(), checked once for each pair within one rewrite."""
        line = self._lines.get((attribute, value))
        if line is None:
            line = self._lines[attribute, value] = attribute_line(attribute, value)
        return line

    def replace(self, line: _Line, text: str) -> None:
        raise NotImplementedError

    def insert_after(self, line: _Line, text: str) -> None:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError


class _LineEdits(_Edits):
    """Edits of lines that are runs of ``physical`` lines: ``first`` and ``end`` are indexes into it."""

    def __init__(self, physical: List[str]) -> None:
        super().__init__()
        self.physical = physical
        self.replaced: Dict[int, str] = {}

    def replace(self, line: _Line, text: str) -> None:
        self.replaced[line.first] = text
        for index in range(line.first + 1, line.end):
            self.replaced[index] = ""

    def insert_after(self, line: _Line, text: str) -> None:
        last = line.end - 1
        self.replaced[last] = self.replaced.get(last, self.physical[last]) + text

    def text(self) -> str:
        if not self.replaced:
            return "".join(self.physical)
        pieces = list(self.physical)
        for index, text in self.replaced.items():
            pieces[index] = text
        return "".join(pieces)


class _TextEdits(_Edits):
    """Edits of single lines of ``output``: ``first`` and ``end`` are the offsets of a line and of its end."""

    def __init__(self, output: str) -> None:
        super().__init__()
        self.output = output
        self.replaced: Dict[int, Tuple[int, str]] = {}

    def replace(self, line: _Line, text: str) -> None:
        self.replaced[line.first] = (line.end, text)

    def insert_after(self, line: _Line, text: str) -> None:
        _, before = self.replaced.get(line.first, (line.end, self.output[line.first:line.end]))
        self.replaced[line.first] = (line.end, before + text)

    def text(self) -> str:
        pieces: List[str] = []
        done = 0
        for start in sorted(self.replaced):
            end, text = self.replaced[start]
            pieces += (self.output[done:start], text)
            done = end
        pieces.append(self.output[done:])
        return "".join(pieces)


def apply_overrides(output: str, overrides: Sequence[Override]) -> Applied:
    """The plugin's output with the state of each overridden entry applied as bdii-update reads it.

    Raises gip.ldifvalue.UnsafeValue for an override value that must not be printed.
    """
    return _rewrite(output, overrides, ())


def _rewrite(output: str, overrides: Sequence[Override], watched: Iterable[str],
             by_key: Optional[Dict[str, List[Override]]] = None) -> Applied:
    """apply_overrides(), also reporting in ``handled_dns`` which ``watched`` DN keys the output holds."""
    by_key = _by_key(overrides) if by_key is None else by_key
    wanted = set(by_key).union(watched)
    applied = _plain_rewrite(output, by_key, wanted)
    return _general_rewrite(output, by_key, wanted) if applied is None else applied


def _general_rewrite(output: str, by_key: Mapping[str, Sequence[Override]], wanted: Set[str]) -> Applied:
    """_rewrite() of any output, line by line as bdii-update reads it."""
    physical = _PHYSICAL_LINE.findall(output)
    # No line starts with a space after a line end: no line is folded.
    lines = _logical_lines(physical) if "\n " in output or "\r " in output else _unfolded_lines(physical)
    blocks = _blocks(lines)
    edits = _LineEdits(physical)
    if not blocks:
        edits.notes.extend(_not_ldif_notes(output))
    first = _first_blocks(blocks, wanted)
    for key, index in first.items():
        span = _span(blocks, index, len(lines))
        for override in by_key.get(key, ()):
            _apply_one(lines, span, override, edits)
    return Applied(edits.text(), frozenset(first), tuple(edits.notes), tuple(edits.changes))


def _by_key(overrides: Sequence[Override]) -> Dict[str, List[Override]]:
    grouped: Dict[str, List[Override]] = {}
    checked: Set[Tuple[str, str]] = set()
    for override, key in zip(overrides, dn_keys([override.dn for override in overrides])):
        if (override.attribute, override.value) not in checked:
            attribute_line(override.attribute, override.value)
            checked.add((override.attribute, override.value))
        same = grouped.setdefault(key, [])
        if any(other.attribute.lower() == override.attribute.lower() for other in same):
            raise GipError(f"two state overrides for {override.attribute} of {override.dn}")
        same.append(override)
    return grouped


def _logical_lines(physical: Sequence[str]) -> List[_Line]:
    """Joins each line with the lines after it that start with a space (bdii-update's unfolding)."""
    lines: List[_Line] = []
    first = 0
    for index in range(1, len(physical) + 1):
        if index < len(physical) and physical[index].startswith(" "):
            continue
        lines.append(_joined(physical, first, index))
        first = index
    return lines


def _unfolded_lines(physical: Sequence[str]) -> List[_Line]:
    """_logical_lines() of lines none of which continues another: each line is one."""
    bodies = [line.rstrip("\r\n") for line in physical]
    return [_Line(index, index + 1, body, line[len(body):])
            for index, (line, body) in enumerate(zip(physical, bodies))]


def _joined(physical: Sequence[str], first: int, end: int) -> _Line:
    last = physical[end - 1]
    body = last.rstrip("\r\n")
    ending = last[len(body):]
    if end - first == 1:
        return _Line(first, end, body, ending)
    parts = [physical[first].rstrip("\r\n")]
    parts.extend(line.rstrip("\r\n")[1:] for line in physical[first + 1:end])
    return _Line(first, end, "".join(parts), ending)


def _blocks(lines: Sequence[_Line]) -> List[_Block]:
    """Every ``dn:`` in the unfolded text: bdii-update starts an entry at each, even inside a value."""
    blocks = []
    for index, line in enumerate(lines):
        column = line.content.find("dn:")
        while column >= 0:
            following = line.content.find("dn:", column + 3)
            blocks.append(_Block(_bdii_key(line, column, following), index, column))
            column = following
    return blocks


def _bdii_key(line: _Line, column: int, following: int) -> Optional[str]:
    """The DN bdii-update files this entry under; None where it reads garbage that matches nothing.

    bdii-update takes the text from four characters after ``dn:`` to the end of
    the line, searching for that end only before the next ``dn:``; when it finds
    none (a second ``dn:`` on the line, or no line end at all) it reads up to
    the last character but one of its whole input. Unlike dn_key it does not
    strip the DN.
    """
    if following >= 0:
        return None
    text = line.content[column + 4:]
    if not line.ending:
        text = text[:-1]
    return _dn_text_key(text)


def _dn_text_key(text: str) -> Optional[str]:
    if text != text.strip():
        # bdii-update keeps spaces at the ends of a DN, so this entry matches no static one.
        return None
    return dn_key(text)


def _first_blocks(blocks: Sequence[_Block], wanted: Set[str]) -> Dict[str, int]:
    """For each wanted DN key, the index of its first block: the only one bdii-update reads."""
    first: Dict[str, int] = {}
    for index, block in enumerate(blocks):
        if block.key is not None and block.key in wanted and block.key not in first:
            first[block.key] = index
    return first


def _span(blocks: Sequence[_Block], index: int, line_count: int) -> _Span:
    start = blocks[index].line
    if index + 1 < len(blocks):
        following = blocks[index + 1]
        return _Span(start, following.line, following.column)
    return _Span(start, line_count, 0)


def _not_ldif_notes(output: str) -> List[Note]:
    if not output.strip():
        return [Note(log.WARNING, "the plugin printed nothing")]
    return [Note(log.WARNING, "the plugin's output holds no 'dn:' line: passed through unchanged")]


# -- plain output, read over the whole text ------------------------------------------
#
# Most plugins print only entries of plain lines: a 'dn:' line, then 'name: value'
# lines. Such output is read with a few searches of the whole text rather than
# line by line, with the same result: _plain_rewrite() gives what
# _general_rewrite() gives, or None where the output is not plain.

# What no line of plain output starts with (searched in "\n" + the output lower-cased): a space (a folded
# line, or one that bdii-update would read as folded were it not the first), a comment, a changetype or an
# operation.
_NOT_PLAIN_LINE = re.compile(r"\n(?:[ #]|changetype:|add:|replace:|delete:)")
# A dn: line, and what bdii-update takes for its DN: the text from four characters after 'dn:'.
_DN_LINE = re.compile(r"dn:.?(.*)\n")


def _plain_rewrite(output: str, by_key: Mapping[str, Sequence[Override]], wanted: Set[str]) -> Optional[Applied]:
    """_general_rewrite() of plain output; None for output that is not plain.

    Plain: ASCII, each line ended by a LF, none starting with a space (none
    folded), every ``dn:`` at the start of a line, no comment, changetype or
    operation line (add:, replace:, delete:). Each entry is then old style,
    its lines read alone. In ASCII, lower-casing keeps every character where
    it was, so an offset into the lower-cased text is one into the output.
    """
    lowered = _plain_lowered(output)
    if lowered is None:
        return None
    dn_lines = list(_DN_LINE.finditer(output))
    if not dn_lines:
        return None
    first: Dict[str, int] = {}
    for index, key in enumerate(_plain_keys([dn_line.group(1) for dn_line in dn_lines])):
        if key is not None and key in wanted and key not in first:
            first[key] = index
    edits = _TextEdits(output)
    for key, index in first.items():
        start, body = dn_lines[index].span()
        end = dn_lines[index + 1].start() if index + 1 < len(dn_lines) else len(output)
        for override in by_key.get(key, ()):
            values = _plain_values(output, lowered, body, end, override.attribute.lower())
            if values and override.static_value is not None:
                # What _apply_read() does to an old-style entry that gives the attribute.
                _replace_values(values, override, edits)
            else:
                dn_line = _Line(start, body, output[start:body - 1], "\n")
                _apply_read(dn_line, _plain_entry(output, body, end, values), override, edits)
    return Applied(edits.text(), frozenset(first), tuple(edits.notes), tuple(edits.changes))


def _plain_lowered(output: str) -> Optional[str]:
    """``"\\n"`` and the output lower-cased, for plain output (see _plain_rewrite); else None."""
    if not output.endswith("\n") or not output.isascii() or "\r" in output:
        return None
    if output.count("dn:") != output.count("\ndn:") + output.startswith("dn:"):
        return None
    lowered = "\n" + output.lower()
    return None if _NOT_PLAIN_LINE.search(lowered) else lowered


def _plain_keys(texts: List[str]) -> Sequence[Optional[str]]:
    """_dn_text_key() of each text."""
    keys = lower_cased_keys(texts)
    return [_dn_text_key(text) for text in texts] if keys is None else keys


def _plain_values(output: str, lowered: str, start: int, end: int, attribute: str) -> List[_Value]:
    """The lines of plain ``output`` from offset ``start`` to ``end`` that give ``attribute``
    (lower-cased), with the value each gives, as _read_line() reads them.

    In ``lowered`` a line of the output at offset ``i`` follows the line end at ``i``.
    """
    values = []
    needle = "\n" + attribute + ":"
    at = lowered.find(needle, start, end + 1)
    while at >= 0:
        line_end = output.index("\n", at)
        content = output[at:line_end]
        values.append((_Line(at, line_end + 1, content, "\n"), _current_value(content[len(needle) - 1:])))
        at = lowered.find(needle, line_end + 1, end + 1)
    return values


def _plain_entry(output: str, start: int, end: int, values: List[_Value]) -> _Entry:
    """The _Entry that _read_entry() reads from the lines of plain ``output`` from offset ``start`` to ``end``,
    which give the attribute in ``values``: old style, so ``closed`` does not matter."""
    entry = _Entry()
    entry.values = values
    last = start + len(output[start:end].rstrip()) - 1
    if last >= start:
        line_start = max(output.rfind("\n", start, last) + 1, start)
        line_end = output.index("\n", last)
        entry.last_content = _Line(line_start, line_end + 1, output[line_start:line_end], "\n")
    return entry


# -- one override on one entry ----------------------------------------------------


class _Entry:
    """What an entry's lines say about one attribute, as bdii-update's modify_entry reads them.

    ``closed``: the last line needs no ``-`` before a new operation follows it;
    ``stuck``: the attribute is on the line where the next entry starts.
    """

    def __init__(self) -> None:
        self.modify = False
        self.values: List[_Value] = []
        self.operation_lines: List[Tuple[_Line, str]] = []
        self.last_content: Optional[_Line] = None
        self.closed = True
        self.stuck = False

    @property
    def operations(self) -> Set[str]:
        """The operations (add, replace, delete) the entry's lines give the attribute."""
        return {operation for _, operation in self.operation_lines}


def _apply_one(lines: Sequence[_Line], span: _Span, override: Override, edits: _Edits) -> None:
    entry = _read_entry(lines, span, override.attribute.lower())
    _apply_read(lines[span.start], entry, override, edits)


def _apply_read(dn_line: _Line, entry: _Entry, override: Override, edits: _Edits) -> None:
    """Applies ``override`` to the entry whose dn: line is ``dn_line``, as its lines were read."""
    problem = _entry_problem(entry, override)
    if not dn_line.ending:
        # The output ends on this entry's dn line, whose last character bdii-update cuts off; a
        # line added after it would end that line, and bdii-update would read another DN.
        problem = "the plugin's output ends on this entry's 'dn:' line, without a line end; left as it is"
    if problem is not None:
        edits.notes.append(Note(log.WARNING, f"{override.dn}: {problem}"))
    elif entry.values:
        _replace_values(entry.values, override, edits)
        _fit_operations(entry, override, edits)
    else:
        _insert_value(dn_line, entry, override, edits)


def _read_entry(lines: Sequence[_Line], span: _Span, attribute: str) -> _Entry:
    entry = _Entry()
    for line in lines[span.start + 1:span.end]:
        _read_line(entry, line, line.content, attribute)
    if span.end_column > 0:
        # The next entry starts inside this line: its head is ours, but cannot be edited alone.
        head = lines[span.end].content[:span.end_column]
        partial = _Entry()
        _read_line(partial, lines[span.end], head, attribute)
        entry.modify = entry.modify or partial.modify
        entry.stuck = bool(partial.values or partial.operations)
    return entry


def _read_line(entry: _Entry, line: _Line, content: str, attribute: str) -> None:
    """Notes what one line says about ``attribute`` (lower-cased), as bdii-update reads it.

    bdii-update merges all lines of a block before it applies any operation, so
    which operation a value line follows does not matter to it.
    """
    stripped = content.strip()
    if not stripped or content.startswith("#"):
        return
    entry.last_content = line
    entry.closed = stripped == "-" or content.lower().startswith("changetype:")
    name, value = _field(content)
    if name is None:
        return
    lowered = name.lower()
    if lowered == "changetype":
        entry.modify = True
    elif lowered in _OPERATIONS and value.strip().lower() == attribute:
        entry.operation_lines.append((line, lowered))
    elif lowered == attribute:
        entry.values.append((line, _current_value(value)))


def _field(content: str) -> Tuple[Optional[str], str]:
    """The attribute name (as bdii-update reads it: up to the first ':') and what follows."""
    colon = content.find(":")
    if colon < 0:
        return None, ""
    return content[:colon], content[colon + 1:]


def _current_value(raw: str) -> Optional[str]:
    """The value bdii-update reads from the text after the attribute's colon; None if unreadable."""
    if not raw.startswith(":"):
        return raw.strip()
    import base64  # here: few plugins print a value in base64, and the module costs every run its import

    try:
        return base64.b64decode(raw[1:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _entry_problem(entry: _Entry, override: Override) -> Optional[str]:
    attribute = override.attribute
    if entry.stuck:
        return (f"the plugin's {attribute} shares a line with the next entry's 'dn:'; "
                "left as the plugin printed it")
    if not entry.modify:
        if override.static_value is not None:
            return None
        return (f"the static entry has no {attribute} and the plugin's entry, having no changetype "
                f"line, cannot add one: {override.value} is not published")
    if "delete" in entry.operations:
        return f"the plugin's changetype block deletes {attribute}; left as the plugin printed it"
    if entry.operations and not entry.values:
        return f"the plugin's changetype block has an operation on {attribute} with no value; left as it is"
    if entry.values and not entry.operations:
        return (f"the plugin's changetype block gives {attribute} without a replace: or add: line for it, "
                "so bdii-update ignores the value; left as it is")
    return None


def _replace_values(values: Sequence[_Value], override: Override, edits: _Edits) -> None:
    for line, current in values:
        if not override.wanted(current):
            continue
        name = line.content[:line.content.find(":")]
        text = edits.attribute_line(name, override.value)
        edits.replace(line, text[:-1] + line.ending)
        if current != override.value:
            edits.changes.append(Change(override.dn, override.attribute, current, override.value))


def _fit_operations(entry: _Entry, override: Override, edits: _Edits) -> None:
    """Makes the plugin's add: or replace: of the state the one that sets it, as modify_entry applies them,
    whether gip's state or the plugin's is published: the state's operation is the state's.

    bdii-update's replace changes only an attribute the static entry has, and
    its add keeps the static value beside the new one: two states.
    """
    wanted = "add" if override.static_value is None else "replace"
    for line, operation in entry.operation_lines:
        if operation != wanted and operation in ("add", "replace"):
            name = line.content.split(":", 1)[1].strip()
            edits.replace(line, f"{wanted}: {name}{line.ending}")


def _insert_value(dn_line: _Line, entry: _Entry, override: Override, edits: _Edits) -> None:
    """Adds the state to an entry that does not mention it, where the policy wants it there."""
    if not override.wanted(override.static_value):
        return
    after = entry.last_content or dn_line
    ending = after.ending or dn_line.ending or "\n"
    text = edits.attribute_line(override.attribute, override.value)
    if entry.modify:
        operation = "add" if override.static_value is None else "replace"
        text = edits.attribute_line(operation, override.attribute) + text + "-\n"
        if not entry.closed:
            text = "-\n" + text
    text = text.replace("\n", ending)
    edits.insert_after(after, text if after.ending else ending + text)
    if override.static_value != override.value:
        edits.changes.append(Change(override.dn, override.attribute, override.static_value, override.value))


# -- the whole wrap -----------------------------------------------------------------


class WrapResult(NamedTuple):
    """What to print (``text``), what to log (``notes``), and whether everything went as meant."""

    text: str
    notes: Tuple[Note, ...]
    ok: bool
    changes: Tuple[Change, ...] = ()
    # The watched DN keys (see wrap()) that the plugin's output holds, read as bdii-update reads them.
    present: FrozenSet[str] = frozenset()

    def data(self) -> bytes:
        """The bytes to write to stdout: UTF-8 whatever the locale, since bdii-update reads UTF-8."""
        return self.text.encode("utf-8", "surrogateescape")


def wrap(argv: Sequence[str], timeout: float, overrides: Sequence[Override],
         fallbacks: Mapping[str, str], grace: float = STOP_GRACE, watched: Iterable[str] = (),
         started: Optional[StartedPlugin] = None) -> WrapResult:
    """Runs the plugin and returns its output with the overrides applied and fallbacks appended.

    ``fallbacks`` maps dn_key(dn) to a complete LDIF block that sets an entry's
    state alone (rendered by the caller where the state changes); a block is
    appended for each such entry the plugin did not print, and the blocks are
    all that is printed when the plugin failed, timed out or printed what
    bdii-update cannot read. ``ok`` is False then, and where a state could not
    be applied. ``present`` says which of the ``watched`` DN keys (and of the
    overrides' and fallbacks') the plugin printed. ``started``: the plugin,
    started already (start_plugin with ``argv`` and ``timeout``).

    Before the plugin runs, the overrides are checked: UnsafeValue for a value
    that must not be printed, GipError for two of one attribute of an entry (a
    ``started`` plugin is stopped then). Only the blocks to print are looked
    up, once the plugin has run, so that a caller may make them on demand
    (BlocksOnDemand); GipError for one that is not one entry for its DN.
    """
    try:
        by_key = _by_key(overrides)
    except BaseException:
        if started is not None:
            started.stop()
        raise
    run = (started or start_plugin(argv, timeout)).collect(grace)
    # The keys of the blocks, those of the overridden entries first (in by_key's order).
    order = [key for key in dict.fromkeys([*by_key, *fallbacks]) if key in fallbacks]
    notes = _run_notes(run)
    unusable = _unusable(run)
    if unusable is not None:
        notes.append(unusable)
        return WrapResult(_appended("", _checked_fallbacks(fallbacks, order).values()), tuple(notes), False)
    assert run.output is not None
    applied = _rewrite(_terminated(run.output), overrides, set(order).union(watched), by_key)
    missing = _checked_fallbacks(fallbacks, [key for key in order if key not in applied.handled_dns])
    presence = _presence_notes(by_key, applied.handled_dns, order, missing)
    notes.extend(applied.notes)
    notes.extend(presence)
    ok = not applied.notes and all(note.level < log.WARNING for note in presence)
    return WrapResult(_appended(applied.text, missing.values()), tuple(notes), ok, applied.changes,
                      applied.handled_dns)


class BlocksOnDemand(_Mapping[str, str]):
    """Fallback blocks for wrap() that are made when the first is looked up, all at once, by
    ``make`` (a dict of dn_key(dn) to block, of ``keys`` or fewer). The plugin mostly prints
    every entry itself, and then none is made."""

    def __init__(self, keys: Sequence[str], make: Callable[[], Dict[str, str]]) -> None:
        self._keys = list(keys)
        self._known = set(self._keys)
        self._make: Optional[Callable[[], Dict[str, str]]] = make
        self._blocks: Dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        if self._make is not None:
            self._blocks, self._make = self._make(), None
        return self._blocks[key]

    def __contains__(self, key: object) -> bool:
        return key in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _checked_fallbacks(fallbacks: Mapping[str, str], keys: Sequence[str]) -> Dict[str, str]:
    """The fallback blocks of ``keys``, in that order, each proven to be one entry for its own DN."""
    blocks = {key: block for key, block in ((key, fallbacks.get(key)) for key in keys) if block is not None}
    if not _all_plainly_one_entry(blocks):
        for key, block in blocks.items():
            _check_fallback(key, block)
    return blocks


def _check_fallback(key: str, block: str) -> None:
    if _plainly_one_entry(block, key):
        return
    blocks = _blocks(_logical_lines(_PHYSICAL_LINE.findall(block)))
    if len(blocks) != 1 or (blocks[0].line, blocks[0].column) != (0, 0) or blocks[0].key != key:
        raise GipError(f"the state block for {key} is not one LDIF entry for that DN")


def _plainly_one_entry(block: str, key: str) -> bool:
    """True for a block that is one entry for ``key`` at a glance, as gip's own blocks are:
    one 'dn:', first, on a line of its own with a line end, nothing folded or CR-ended."""
    first, newline, _ = block.partition("\n")
    dn = first[4:]
    return (block.startswith("dn: ") and bool(newline) and block.count("dn:") == 1 and "\n " not in block
            and "\r" not in block and dn == dn.strip() and dn_key(dn) == key)


def _all_plainly_one_entry(fallbacks: Mapping[str, str]) -> bool:
    """True only where _plainly_one_entry() is for every block and its key, as gip's own blocks are:
    checked over all blocks at once, for the thousands of CEs of a large site."""
    blocks = list(fallbacks.values())
    joined = "".join(blocks)
    # Where every block starts with 'dn: ', no 'dn:' and no folded line spans two blocks.
    if not joined.isascii() or "\r" in joined or "\n " in joined or joined.count("dn:") != len(blocks):
        return False
    dns = []
    for block in blocks:
        first, newline, _ = block.partition("\n")
        if not newline or not first.startswith("dn: "):
            return False
        dns.append(first[4:])
    return list(_plain_keys(dns)) == list(fallbacks)


def _run_notes(run: PluginRun) -> List[Note]:
    notes = []
    name = run.argv[0]
    if run.error is not None:
        notes.append(Note(log.WARNING, f"{name}: {run.error}"))
    if run.left_open:
        notes.append(Note(log.WARNING, f"{name}: exited, but a process it started kept its output open; "
                          f"took what it printed before {_SETTLE_AFTER_EXIT:g} s had passed"))
    for line in run.stderr_tail.splitlines():
        notes.append(Note(log.WARNING, f"{name} (stderr): {line}"))
    return notes


def _unusable(run: PluginRun) -> Optional[Note]:
    """Why the plugin's output must not be printed at all, or None when it may."""
    if not run.ok or run.output is None:
        return Note(log.WARNING, "printing only the state blocks: the plugin did not complete")
    bad = _undecodable(run.output)
    if bad is None:
        return None
    line = _universal(run.output[:bad.start()]).count("\n") + 1
    byte = ord(bad.group()) - 0xDC00
    return Note(log.WARNING, f"printing only the state blocks: the plugin's output line {line} "
                f"holds byte 0x{byte:02x}, which is not UTF-8, and bdii-update drops such output whole")


def _undecodable(output: str) -> Optional[re.Match[str]]:
    """Where the first byte that is not UTF-8 lies in the decoded output, or None."""
    # Scanning with the regular expression costs far more than checking first that
    # there is something to find: a lone surrogate is neither ASCII nor encodable.
    if output.isascii():
        return None
    try:
        output.encode("utf-8")
    except UnicodeEncodeError:
        return _UNDECODABLE.search(output)
    return None


def _presence_notes(by_key: Mapping[str, Sequence[Override]], present: FrozenSet[str],
                    fallbacks: Iterable[str], appended: Mapping[str, str]) -> List[Note]:
    """What became of entries the plugin did not print, or printed where gip only had a block
    (``fallbacks``: the keys of the blocks; ``appended``: those appended)."""
    notes = []
    # The DN as the last override of each entry spells it.
    overridden = {key: same[-1].dn for key, same in by_key.items()}
    for key, dn in overridden.items():
        if key in present:
            continue
        if key in appended:
            notes.append(Note(log.INFO, f"{dn}: not in the plugin's output; its state block is appended"))
        else:
            notes.append(Note(log.INFO, f"{dn}: not in the plugin's output, and its state is unchanged"))
    for key in fallbacks:
        if key in present and key not in overridden:
            notes.append(Note(log.WARNING, f"{key}: the plugin prints this entry, for which there is a "
                              "state block but no override: bdii-update reads only the plugin's"))
    return notes


def _terminated(output: str) -> str:
    """The output with its last line ended, as it will be once blocks follow it.

    bdii-update reads a last ``dn:`` line that has no end without its last
    character; once gip appends a block after it, it reads the whole DN. Ending
    the line first makes the entries gip sees the ones the BDII will see.
    """
    if not output or output.endswith(("\n", "\r")):
        return output
    return output + "\n"


def _appended(text: str, blocks: Iterable[str]) -> str:
    """``text`` and the blocks after it, each entry separated from the next by a blank line."""
    bodies = [block.rstrip("\r\n") for block in blocks]
    if not bodies:
        return text
    return text + separator(text) + "\n\n".join(bodies) + "\n"


def separator(text: str) -> str:
    """What ``text`` needs after it for an entry to follow: the shortest that ends it with a blank
    line both where a lone CR ends a line (bdii-update reads universal newlines) and where only LF
    does (python-ldap's parser): a LF after a lone CR would make one CRLF line end, not two."""
    if not text:
        return ""
    tail = text[-4:].replace("\r\n", "\n")
    if tail.endswith("\n\n"):
        return ""
    return "\n" if tail.endswith("\n") else "\n\n"


def _universal(text: str) -> str:
    """``text`` with its line ends read as universal newlines (so bdii-update) read them."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
