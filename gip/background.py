"""Work done in a forked child process while the program goes on with other work.

The provider's run is mostly reading: the static LDIF on one side, the tag
files on the other, neither needing the other until the model is built. On a
machine with more than one CPU the static files are parsed in a child while
the tag files are read, and the child sends back only what the parent cannot
get cheaply: where each entry is in the file's text. See staticldif.

The child is a fork: it has the parent's memory as it was, so the parent
hands it the bytes it has read already (the child never opens a file the
parent could then read differently). It sends its answer through a pipe and
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


def in_background(work: Callable[[], bytes]) -> Optional[Callable[[], Optional[bytes]]]:
    """Runs ``work`` in a forked child at once, or returns None where no child can be started.

    The returned function waits for the child and gives what ``work``
    returned, or None where the child did not finish well (the child's
    exception is its own: the caller is told only that there is no answer).
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

    def result() -> Optional[bytes]:
        with os.fdopen(read_end, "rb") as stream:
            data = stream.read()
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            # SIGCHLD ignored (a disposition a parent program can hand down): the child was reaped
            # unseen. It writes only once its work is done, so an answer is there or it is not.
            status = 0 if data else 1
        return data if status == 0 else None

    return result


def _child(work: Callable[[], bytes], read_end: int, write_end: int) -> None:
    """The child's whole life: the work, its answer written, and the end, whatever happens."""
    status = 1
    try:
        os.close(read_end)
        data = memoryview(work())
        while data:
            data = data[os.write(write_end, data):]
        status = 0
    finally:
        os._exit(status)
