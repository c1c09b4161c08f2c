"""Work done in a forked child process while the program goes on with other work.

The provider's run is mostly reading: the static LDIF on one side, the tag
files on the other, neither needing the other until the model is built. On a
machine with more than one CPU the static files are parsed in a child while
the tag files are read, and the child sends back only what the parent cannot
get cheaply: where each entry is in the file's text, the answers the parent
would ask of each entry, and for merged output whether half of each file
prints as written (the parent looks at the other half). See staticldif.

The child is a fork: it has the parent's memory as it was, so the parent
hands it the bytes it has read already (the child never opens a file the
parent could then read differently). It sends its answers through a pipe and
ends with os._exit, so nothing of the parent (buffered output, exit handlers)
runs twice. A child that fails, dies or sends nothing costs only time: the
caller does the work itself.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Callable, Optional

_MIN_CPUS = 2  # the parent's and the child's


def available() -> bool:
    """True where work can go to a child and run beside the parent: fork exists and two CPUs are ours."""
    if not hasattr(os, "fork"):
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return cpus >= _MIN_CPUS


class Child:
    """A child started by in_background(): its answers, read in the order it sent them."""

    def __init__(self, pid: int, read_end: int) -> None:
        self._pid = pid
        self._stream = os.fdopen(read_end, "rb")

    def answer(self) -> Optional[bytes]:
        """The child's next answer, waiting for it; None where the child sent no more (it ended,
        failed or died first)."""
        header = self._stream.read(_HEADER)
        if len(header) < _HEADER:
            return None
        size = int.from_bytes(header, "little")
        data = self._stream.read(size)
        return data if len(data) == size else None

    def close(self) -> None:
        """Stops listening and reaps the child; one still writing an answer ends on the closed pipe."""
        self._stream.close()
        try:
            os.waitpid(self._pid, 0)
        except ChildProcessError:
            pass  # SIGCHLD ignored (a disposition a parent program can hand down): reaped unseen


# An answer goes as its length, then its bytes.
_HEADER = 8


def in_background(work: Callable[[Callable[[bytes], None]], None]) -> Optional[Child]:
    """Runs ``work`` in a forked child at once, or returns None where no child can be started.

    ``work`` is given a function that sends one answer to the parent; it may
    send several, which the parent reads one by one (Child.answer). An
    answer is whole or missing, whatever happens to the child.
    """
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:
        _child(work, read_end, write_end)
    os.close(write_end)
    return Child(pid, read_end)


def _child(work: Callable[[Callable[[bytes], None]], None], read_end: int, write_end: int) -> None:
    """The child's whole life: the work, its answers written, and the end, whatever happens."""
    status = 1
    try:
        os.close(read_end)

        def send(answer: bytes) -> None:
            data = memoryview(len(answer).to_bytes(_HEADER, "little") + answer)
            while data:
                data = data[os.write(write_end, data):]

        work(send)
        status = 0
    finally:
        os._exit(status)
