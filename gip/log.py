"""Messages on stderr, at the level a program's ``-v`` and ``-q`` set.

Every gip program says what it skipped or did in lines such as
``gip-provider: WARNING: <file>:<line>: <reason>``, written to whatever
``sys.stderr`` is at that moment (for the provider, the BDII's log). That is
all gip asks of a logging system; the standard library's costs each run
about 7 ms to import (a tenth of a small site's run), so gip has this one.

Until a program calls configure(), warnings and errors are written with the
prefix ``gip`` and anything less is not.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Dict, Tuple

    Saved = Tuple[str, int, bool]

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
_NOTHING = 50  # -q -q: not even errors

_LEVEL_NAMES: Dict[int, str] = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}


class _Settings:
    """What configure() set: one per process, read when a message is written."""

    prog = "gip"
    level = WARNING
    timestamps = False


_settings = _Settings()


def configure(prog: str, verbosity: int, timestamps: bool = False) -> None:
    """Messages at ``WARNING - 10 * verbosity`` and above, as ``[time ]prog: LEVEL: message``."""
    _settings.prog = prog
    _settings.level = max(DEBUG, min(_NOTHING, WARNING - 10 * verbosity))
    _settings.timestamps = timestamps


def settings() -> Saved:
    """What configure() set, for a caller that must put it back, such as a test."""
    return _settings.prog, _settings.level, _settings.timestamps


def restore(saved: Saved) -> None:
    """Puts back what settings() returned."""
    _settings.prog, _settings.level, _settings.timestamps = saved


def log(at: int, message: str, *args: object, exc_info: bool = False) -> None:
    """``message % args`` at level ``at``; with ``exc_info``, the exception being handled follows."""
    if at < _settings.level:
        return
    text = message % args if args else message
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S ") if _settings.timestamps else ""
    line = f"{stamp}{_settings.prog}: {_LEVEL_NAMES.get(at, str(at))}: {text}\n"
    if exc_info and sys.exc_info()[0] is not None:
        import traceback

        line += traceback.format_exc()
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(line)
        stream.flush()
    except (OSError, ValueError):
        pass  # stderr closed or gone: there is no one left to tell


def debug(message: str, *args: object, exc_info: bool = False) -> None:
    log(DEBUG, message, *args, exc_info=exc_info)


def info(message: str, *args: object) -> None:
    log(INFO, message, *args)


def warning(message: str, *args: object) -> None:
    log(WARNING, message, *args)


def error(message: str, *args: object) -> None:
    log(ERROR, message, *args)
