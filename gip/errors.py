"""gip's exit codes and the typed errors that carry them.

Core code raises these; only the command-line programs turn them into an exit
code and a message on stderr.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Optional

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3

# The one table shown by every program's --help and kept equal to README.md by a test.
EXIT_CODES = (
    (EXIT_OK, "done, a no-op included; gip-provider skipped nothing"),
    (EXIT_FAILED, "refused or failed, nothing changed; gip-provider skipped something but printed all that was valid"),
    (EXIT_USAGE, "usage: an unknown option or a missing argument"),
    (EXIT_CONFIG, "configuration: site-info.def, a path or a setting is wrong"),
)


def exit_code_table() -> str:
    """The exit-code table as plain text, for --help epilogues."""
    rows = [f"  {code}  {meaning}" for code, meaning in EXIT_CODES]
    return "exit codes:\n" + "\n".join(rows)


class GipError(Exception):
    """An error a user can act on: its message is shown as is, without a traceback."""

    exit_code = EXIT_FAILED


class UsageError(GipError):
    exit_code = EXIT_USAGE


class ConfigError(GipError):
    exit_code = EXIT_CONFIG


class InputError(GipError):
    """A problem in an input file, located by path and (where known) line."""

    def __init__(self, path: str, line: Optional[int], message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(located(path, line, message))


class ConfigInputError(InputError):
    """A problem in a configuration file such as site-info.def: exit code 3."""

    exit_code = EXIT_CONFIG


def located(path: str, line: Optional[int], message: str) -> str:
    """'path:line: message', the shape compilers use, so editors can jump to it.

    A path that is not printable (a folder named with a line break) is escaped,
    so that one message stays one line of the log.
    """
    if not path.isprintable():
        path = ascii(path)[1:-1]
    if line is None:
        return f"{path}: {message}"
    return f"{path}:{line}: {message}"
