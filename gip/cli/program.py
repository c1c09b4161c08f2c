"""What every gip program does the same way.

Logging to stderr at ``WARNING - 10 * verbosity``, the common options
(``--version``, ``-v``, ``-q``), the exit-code table in ``--help``, and the one
place where gip's typed errors become a message and an exit code.
"""

from __future__ import annotations

import argparse
import os
import sys

from gip import __version__, log
from gip.errors import EXIT_FAILED, EXIT_OK, GipError, UsageError, exit_code_table

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Any, Callable, Collection, List, NoReturn, Optional, Sequence, TextIO, Tuple


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, given the width as shutil.get_terminal_size() finds it.

    argparse makes a formatter for every option it adds, and its own asks
    shutil for the width: importing shutil (and the compression modules it
    loads) cost every run more than building and reading the command line.
    """

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: Optional[int] = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _terminal_columns() - 2 if width is None else width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """HelpFormatter that prints descriptions and epilogs as they are written."""


def _terminal_columns() -> int:
    """$COLUMNS, else the width of the terminal on stdout, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    stdout = sys.__stdout__
    if columns <= 0 and stdout is not None:
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors go through run(); HelpFormatter by default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def new_parser(prog: str, description: str) -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        description=description,
        epilog=exit_code_table(),
        formatter_class=RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more on stderr (repeatable)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="say less on stderr (repeatable)")
    return parser


def configure_logging(prog: str, verbosity: int, timestamps: bool = False) -> None:
    """Messages go to stderr: for the provider that is the BDII's log, read by people."""
    log.configure(prog, verbosity, timestamps)


def run(prog: str, body: Callable[[], int]) -> int:
    """Runs a program's body; gip's errors become their exit code and one line on stderr.

    Logging is set up at the default level first, so that a usage error found
    before the body has read -v/-q is still reported in the program's voice.
    """
    configure_logging(prog, 0)
    _open_closed_streams()
    try:
        return body()
    except GipError as error:
        log.error("%s", error)
        log.debug("details", exc_info=True)
        return error.exit_code
    except BrokenPipeError:
        # A reader such as `head` went away: nothing more to say to it.
        return EXIT_FAILED
    except OSError as error:
        # Every expected failure is a GipError; this is the system refusing something else
        # (stdout on a full disk, say): one line, as for the others.
        log.error("%s%s", f"{error.filename}: " if error.filename else "", error.strerror or error)
        log.debug("details", exc_info=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def exit_at_once(code: int) -> NoReturn:
    """Ends the process with ``code`` once stdout and stderr are flushed, skipping the
    interpreter's teardown, which frees every object one by one: for the provider, run every
    cycle over a large site, that is a few milliseconds of each run spent on nothing. Only for
    a program that has nothing left to do: no file open for writing, no child to wait for, no
    exit handler. Output that cannot be flushed any more makes a success a failure."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or EXIT_FAILED
    os._exit(code)


def write_report(stream: TextIO, text: str, changed: bool) -> int:
    """Writes what a command prints; EXIT_OK, or where the stream fails (a full disk), says so and
    whether the change itself was made, and returns EXIT_OK for a change made, else EXIT_FAILED."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        made = "; the change itself was made" if changed else ""
        log.error("cannot write to stdout: %s%s", error.strerror or error, made)
        return EXIT_OK if changed else EXIT_FAILED
    return EXIT_OK


def _open_closed_streams() -> None:
    """A program started with stdin, stdout or stderr closed reads nothing and writes to nowhere there,
    rather than failing where it first uses it."""
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))


def program_words(argv: Sequence[str], value_options: Collection[str] = ()) -> Tuple[List[str], Optional[str]]:
    """The program's options (those before the command word, each of ``value_options`` with its
    value) and the command word; None for the word where there is none, or where ``--`` comes first."""
    options: List[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            return options, word
        options.append(word)
        if word in value_options:
            next(words, None)
    return options, None


def command_word(argv: Sequence[str], commands: Collection[str], value_options: Collection[str] = ()) -> Optional[str]:
    """The command word, found as argparse will find it; None for --help or where unsure. A program
    builds only that command's parser: building every one costs start-up time."""
    if "-h" in argv or "--help" in argv:
        return None
    word = program_words(argv, value_options)[1]
    return word if word in commands else None


def verbosity(args: argparse.Namespace) -> int:
    return int(args.verbose) - int(args.quiet)

