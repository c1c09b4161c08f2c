"""Reading an input file whole, refusing what is not a regular file.

site-info.def, the static LDIF files and the tag files are read every BDII
cycle. A FIFO put in the place of one would make the read wait for a writer
that never comes, until the BDII kills the run and throws away all it would
have printed; a device may never end. Such a file is refused before a byte of
it is read: it costs what it would have held, as an unreadable file does.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Union

    _PathLike = Union[str, "os.PathLike[str]"]

NOT_REGULAR = "not a regular file (a FIFO, a socket or a device)"


def read_regular_file(path: _PathLike) -> bytes:
    """The bytes of the file at ``path`` (links followed); OSError for anything else than a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as stream:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, NOT_REGULAR, os.fspath(path))
        return stream.read()
