"""What every gip program does the same way.

Logging to stderr at ``WARNING - 10 * verbosity``, the common options
(``--version``, ``-v``, ``-q``), the exit-code table in ``--help``, and the one
place where gip's typed errors become a message and an exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, NoReturn

from gip import __version__
from gip.errors import EXIT_FAILED, GipError, UsageError, exit_code_table

log = logging.getLogger("gip")


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors go through run()."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def new_parser(prog: str, description: str) -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        description=description,
        epilog=exit_code_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more on stderr (repeatable)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="say less on stderr (repeatable)")
    return parser


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a message comes, not when logging was set up."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure_logging(prog: str, verbosity: int, timestamps: bool = False) -> None:
    """Messages go to stderr: for the provider that is the BDII's log, read by people."""
    level = max(logging.DEBUG, min(logging.CRITICAL, logging.WARNING - 10 * verbosity))
    stamp = "%(asctime)s " if timestamps else ""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(f"{stamp}{prog}: %(levelname)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("gip")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def run(prog: str, body: Callable[[], int]) -> int:
    """Runs a program's body; gip's errors become their exit code and one line on stderr.

    Logging is set up at the default level first, so that a usage error found
    before the body has read -v/-q is still reported in the program's voice.
    """
    configure_logging(prog, 0)
    try:
        return body()
    except GipError as error:
        log.error("%s", error)
        log.debug("details", exc_info=True)
        return error.exit_code
    except BrokenPipeError:
        # A reader such as `head` went away: nothing more to say to it.
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def verbosity(args: argparse.Namespace) -> int:
    return int(args.verbose) - int(args.quiet)

