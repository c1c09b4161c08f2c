"""Reading site-info.def, the site admin's YAIM-style configuration, without running it.

site-info.def is a bash script that YAIM sources. gip reads the subset of
bash (the POSIX shell command language, as bash implements it) that these
files use and refuses everything else, so that no line of it ever runs:

* blank lines, leading blanks, ``#`` comments (a ``#`` starts a comment only
  where it starts a word, as in bash: ``A=x#y`` sets ``x#y``);
* assignments ``KEY=value``, several on one line, and ``export`` of names and
  assignments (exporting means nothing here);
* values made of unquoted text with backslash escapes, ``'single'`` quotes
  (literal), ``"double"`` quotes (``\\"``, ``\\\\``, ``\\$``, ``\\```` escapes
  and expansion) and concatenations of these; quotes and backslash-newline may
  span lines;
* ``$KEY`` and ``${KEY}`` expanded from keys set earlier in the file. A key
  that is not set is an error, never an empty string: the environment is not
  read, so the result does not depend on who runs gip.

As in bash, an assignment's value is neither split into words nor
glob-expanded: ``VOS="atlas cms"`` is one string. CRLF line ends are read as
LF and a leading UTF-8 byte-order mark is ignored (files edited elsewhere
carry them; YAIM itself would fail on them).

Everything else — command substitution, arithmetic, parameter expansions
other than ``${KEY}``, tilde expansion, ``$'...'``, control operators,
redirections, functions, compound commands, ``source`` and any command — is a
ConfigInputError naming the file and line.
"""

from __future__ import annotations

import bisect
import os
import re
from pathlib import Path

from gip.errors import ConfigError, ConfigInputError
from gip.files import read_regular_file

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, NamedTuple, Optional, Pattern, Tuple, Union

    _PathLike = Union[str, "os.PathLike[str]"]
else:
    from gip._records import NamedTuple

DEFAULT_SITE_INFO = "/etc/gip/site-info.def"
SITE_INFO_VARIABLE = "GIP_SITE_INFO"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BLANKS = re.compile(r"(?:[ \t]|\\\n)*")
_COMMENT = re.compile(r"#[^\n]*")
_UNQUOTED_RUN = re.compile(r"[^ \t\n|&;<>()'\"\\$`]+")
_DOUBLE_QUOTED_RUN = re.compile(r"[^\"\\$`]+")
_RAW_WORD = re.compile(r"[^ \t\n]{1,40}")
_WORD_END = " \t\n"
_METACHARS = "|&;<>()"
_OPERATORS = ("&&", "||", ";;", ">>", "<<", "&>", ">&", "<&", "|&", "<(", ">(")
# $@ $* $# $? $- $$ $! and positional parameters: nothing a config file can mean.
_SPECIAL_PARAMETERS = "@*#?-$!0123456789"
_DOUBLE_QUOTE_ESCAPES = '$`"\\'
_NOT_ASSIGNMENT = "not a KEY=value assignment"
# The line shapes nearly all of a site-info.def is made of, each read with one
# match: a blank line, a comment line, or ``[export ]KEY=value`` where the value
# is one plain unquoted word, one "double-quoted" or one 'single-quoted' string
# with nothing to expand or unescape, optionally followed by blanks and a
# comment. A line holding anything else (``$``, a backslash, ``~``, a second
# word, an operator, a concatenation such as "x"y) does not match, and _Parser
# reads that statement character by character instead. What does match is read
# as the character-level parser reads it:
# * the unquoted word takes every character that may continue it (``#``
#   included), and after the value only a blank, a newline or the end may
#   come, so a value is never cut short: ``A=#y`` is "#y", not a comment;
# * a comment after the value needs a blank first, where bash starts a word.
# Quoted text that spans lines is left to _Parser too: one match, one line, and
# so is an unquoted '{', which bash brace-expands in an export's words.
_FAST_LINE = re.compile(
    r"[ \t]*"
    r"(?:"
    r"(?:export[ \t]+)?"
    r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)="
    r"(?P<value>\"[^\"\\$`\n]*\"|'[^'\n]*'|[^ \t\n|&;<>()'\"\\$`~{]*)"
    r"(?:[ \t]+(?:#[^\n]*)?)?"
    r"|(?:#[^\n]*)?"
    r")"
    r"(?:\n|\Z)"
)
_TILDE = "tilde expansion; quote it: '~'"
# Variables bash sets itself or will not let a script set: an assignment to one is
# ignored or fails in bash, so a value read from the file would not be bash's.
_BASH_OWN = frozenset(
    "_ BASHOPTS BASHPID BASH_ARGC BASH_ARGV BASH_ARGV0 BASH_COMMAND BASH_LINENO BASH_REMATCH BASH_SOURCE "
    "BASH_SUBSHELL BASH_VERSINFO DIRSTACK EPOCHREALTIME EPOCHSECONDS EUID FUNCNAME GROUPS HISTCMD LINENO "
    "OPTIND PIPESTATUS PPID RANDOM SECONDS SHELLOPTS SRANDOM UID".split()
)


class SiteInfo(NamedTuple):
    """The keys of one site-info.def; ``lines`` tells where each was last set."""

    path: str
    values: Dict[str, str]
    lines: Dict[str, int]

    def where(self, key: str) -> Optional[int]:
        return self.lines.get(key)


def site_info_path(option: Optional[str], environ: Mapping[str, str]) -> Path:
    """The file to read: the command-line option, else $GIP_SITE_INFO, else the default.

    An empty option or variable counts as unset, as a blank line in a unit file does.
    """
    return Path(option or environ.get(SITE_INFO_VARIABLE) or DEFAULT_SITE_INFO)


def read_site_info(path: _PathLike) -> SiteInfo:
    """Reads and parses site-info.def; an unreadable file is a ConfigError naming it."""
    name = os.fspath(path)
    try:
        data = read_regular_file(path)
    except OSError as error:
        raise ConfigError(f"{name}: cannot read site-info.def: {error.strerror or error}") from error
    return parse_site_info(_decode(data, name), name)


def parse_site_info(text: str, path: str) -> SiteInfo:
    """Parses the text of site-info.def; ``path`` names it in errors."""
    return _Parser(_checked(_normalized(text), path), path).parse()


def _parse_site_info_slowly(text: str, path: str) -> SiteInfo:
    """parse_site_info without the fast path: the reference the tests hold it to."""
    return _Parser(_checked(_normalized(text), path), path).parse(fast=False)


def _checked(text: str, path: str) -> str:
    """The text, if bash would read each of its characters as gip does: bash drops NUL bytes."""
    nul = text.find("\x00")
    if nul >= 0:
        raise ConfigInputError(path, text.count("\n", 0, nul) + 1, "a NUL byte, which bash would drop")
    return text


def _normalized(text: str) -> str:
    """The text without a byte-order mark and with LF line ends."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n")


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigInputError(path, line, "not UTF-8 text") from error


class _Parser:
    """One pass over the text; assignments take effect in order, as when bash runs them."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.values: Dict[str, str] = {}
        self.lines: Dict[str, int] = {}
        # Where each line starts, for _line_at; built when first needed.
        self._line_starts: Optional[List[int]] = None

    def parse(self, fast: bool = True) -> SiteInfo:
        if fast:
            self._parse_fast_lines_first()
        else:
            while self._skip_to_statement():
                self._statement()
        return SiteInfo(self.path, self.values, self.lines)

    def _parse_fast_lines_first(self) -> None:
        """Reads each line matching _FAST_LINE at once, and any other statement as parse(fast=False) does.

        Every line start between statements is a point where the character-level
        loop (skip blanks and comments, read a statement) holds no other state than
        its position, so the two readings can take turns there. ``line`` is the
        number of the line that ``pos`` is on; each match reads one whole line.
        """
        text, values, lines = self.text, self.values, self.lines
        match_line = _FAST_LINE.match
        end = len(text)
        pos = 0
        line = 1
        while pos < end:
            found = match_line(text, pos)
            if found is None:
                # This statement (after any blanks or comments before it) is read
                # character by character. It stops at the newline that ends it (the
                # next match reads that as a blank line) or at the end of the text.
                self.pos = pos
                if not self._skip_to_statement():
                    return
                self._statement()
                line += text.count("\n", pos, self.pos)
                pos = self.pos
                continue
            key, value = found.group("key", "value")
            if key in _BASH_OWN:
                self.pos = pos
                self._skip_to_statement()
                self._statement()  # refuses it
            if key is not None:
                if value[:1] in ('"', "'"):
                    value = value[1:-1]
                values[key] = value
                lines[key] = line
            pos = found.end()
            line += 1

    # Statements

    def _skip_to_statement(self) -> bool:
        """Skips blank lines and comments; False at the end of the text."""
        while True:
            self._skip_blanks()
            if self._peek() == "\n":
                self.pos += 1
            elif self._peek() == "#":
                self._take(_COMMENT)
            else:
                return self.pos < len(self.text)

    def _statement(self) -> None:
        exporting = self._keyword("export")
        if exporting and self._at_statement_end():
            raise self._error(self.pos, "unsupported shell syntax 'export' without a name")
        # export's words are all expanded before it assigns any ('export A=1 B=$A' gives B
        # A's earlier value); a line of plain assignments assigns each before it reads the next.
        assigned: List[Tuple[str, str, int]] = []
        while not self._at_statement_end():
            found = self._word(exporting)
            if found is not None and exporting:
                assigned.append(found)
            elif found is not None:
                self._assign(*found)
            self._skip_blanks()
        for found in assigned:
            self._assign(*found)

    def _assign(self, key: str, value: str, line: int) -> None:
        self.values[key] = value
        self.lines[key] = line

    def _word(self, exporting: bool) -> Optional[Tuple[str, str, int]]:
        """Reads one word: an assignment (returned as key, value, line) or, after export, a name."""
        start = self.pos
        assignment = _ASSIGNMENT.match(self.text, start)
        if assignment is not None:
            key = assignment.group(1)
            if key in _BASH_OWN:
                raise self._error(start, f"{key} is a variable that bash sets itself; name it otherwise")
            self.pos = assignment.end()
            return key, self._value(exporting), self._line_at(start)
        if exporting and self._exported_name():
            return None
        raise self._unsupported(start, self._raw_word(start), _NOT_ASSIGNMENT)

    def _exported_name(self) -> bool:
        """``export KEY`` marks KEY for child processes, which gip has none of."""
        name = _NAME.match(self.text, self.pos)
        if name is None or not self._is_word_end(name.end()):
            return False
        self.pos = name.end()
        return True

    def _keyword(self, word: str) -> bool:
        end = self.pos + len(word)
        if self.text.startswith(word, self.pos) and self._is_word_end(end):
            self.pos = end
            self._skip_blanks()
            return True
        return False

    def _at_statement_end(self) -> bool:
        """True at a newline, a comment or the end; raises at a control operator."""
        char = self._peek()
        if char and char in _METACHARS:
            raise self._unsupported(self.pos, self._operator())
        if char == "#":
            self._take(_COMMENT)
            return True
        return char in ("", "\n")

    # Values

    def _value(self, exporting: bool = False) -> str:
        parts: List[str] = []
        start = self.pos
        while not self._is_word_end(self.pos):
            parts.append(self._value_part(start, exporting))
        return "".join(parts)

    def _value_part(self, value_start: int, exporting: bool) -> str:
        char = self.text[self.pos]
        if char == "'":
            return self._single_quoted()
        if char == '"':
            return self._double_quoted()
        if char == "\\":
            return self._unquoted_escape()
        if char == "$":
            return self._dollar(quoted=False)
        if char == "`":
            raise self._unsupported(self.pos, "`")
        return self._unquoted_run(value_start, exporting)

    def _unquoted_run(self, value_start: int, exporting: bool) -> str:
        run = self._take(_UNQUOTED_RUN)
        brace = run.find("{")
        if exporting and brace >= 0:
            # export's words are brace-expanded ('export A=a{1,2}' sets a2): quote it.
            raise self._unsupported(self.pos - len(run) + brace, "{", "a brace in an export's word; quote it: '{'")
        # bash expands an unquoted ~ that starts a value or follows a ':' (HOME, users'
        # folders): that would read the environment of whoever runs gip. It does so once
        # backslash-newlines are gone, and a ':' in quotes before it counts too, to be safe.
        start = self.pos - len(run)
        before = self.text[value_start:start].replace("\\\n", "")
        if run.startswith("~") and (not before or before.endswith(":")):
            raise self._unsupported(start, "~", _TILDE)
        colon = run.find(":~")
        if colon >= 0:
            raise self._unsupported(start + colon + 1, "~", _TILDE)
        return run

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.pos + 1)
        if end < 0:
            raise self._error(self.pos, "unterminated single quote (')")
        value = self.text[self.pos + 1:end]
        self.pos = end + 1
        return value

    def _double_quoted(self) -> str:
        opening = self.pos
        self.pos += 1
        parts: List[str] = []
        while self._peek() != '"':
            if not self._peek():
                raise self._error(opening, 'unterminated double quote (")')
            parts.append(self._double_quoted_part())
        self.pos += 1
        return "".join(parts)

    def _double_quoted_part(self) -> str:
        char = self.text[self.pos]
        if char == "\\":
            return self._quoted_escape()
        if char == "$":
            return self._dollar(quoted=True)
        if char == "`":
            raise self._unsupported(self.pos, "`")
        return self._take(_DOUBLE_QUOTED_RUN)

    def _quoted_escape(self) -> str:
        following = self.text[self.pos + 1:self.pos + 2]
        if following == "\n":
            self.pos += 2
            return ""
        if following and following in _DOUBLE_QUOTE_ESCAPES:
            self.pos += 2
            return following
        # Before any other character the backslash stays and the character is read as usual.
        self.pos += 1
        return "\\"

    def _unquoted_escape(self) -> str:
        following = self.text[self.pos + 1:self.pos + 2]
        self.pos += 1 + len(following)
        if following == "\n":
            return ""
        # A backslash that ends the file stays, as bash keeps it.
        return following or "\\"

    def _dollar(self, quoted: bool) -> str:
        following = self.text[self.pos + 1:self.pos + 2]
        if self.text.startswith("\\\n", self.pos + 1):
            # bash drops a backslash-newline before it reads '$': '$\<newline>(id)' runs id.
            raise self._unsupported(self.pos, "$\\", "a line continuation after '$'")
        if following == "{":
            return self._braced()
        name = _NAME.match(self.text, self.pos + 1)
        if name is not None:
            after = name.end()
            while self.text.startswith("\\\n", after):
                after += 2
            if after > name.end() and _NAME_CHAR.match(self.text, after):
                # The same: '$A\<newline>B' (with any number of them) is $AB to bash.
                shown = self.text[self.pos:name.end()] + "\\"
                raise self._unsupported(self.pos, shown, "a name continued on the next line")
            return self._expand(name.group(), self.pos, name.end())
        if following in ("(", "[") or (following and following in _SPECIAL_PARAMETERS):
            shown = "$((" if self.text.startswith("$((", self.pos) else "$" + following
            raise self._unsupported(self.pos, shown)
        if not quoted and following in ("'", '"') and following:
            raise self._unsupported(self.pos, "$" + following)
        # A '$' that starts no expansion is literal, as in bash.
        self.pos += 1
        return "$"

    def _braced(self) -> str:
        braced = _BRACED.match(self.text, self.pos)
        if braced is None:
            close = self.text.find("}", self.pos, self.pos + 40)
            shown = self.text[self.pos:close + 1] if close >= 0 else "${"
            raise self._unsupported(self.pos, shown, "only ${KEY} is expanded")
        return self._expand(braced.group(1), self.pos, braced.end())

    def _expand(self, name: str, start: int, end: int) -> str:
        value = self.values.get(name)
        if value is None:
            raise self._error(start, f"{self.text[start:end]}: {name} is not set earlier in this file")
        self.pos = end
        return value

    # Positions and errors

    def _peek(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def _is_word_end(self, pos: int) -> bool:
        char = self.text[pos:pos + 1]
        return not char or char in _WORD_END or char in _METACHARS

    def _skip_blanks(self) -> None:
        self._take(_BLANKS)

    def _take(self, pattern: Pattern[str]) -> str:
        """Consumes what ``pattern`` matches here; every caller's pattern matches here."""
        found = pattern.match(self.text, self.pos)
        assert found is not None
        self.pos = found.end()
        return found.group()

    def _operator(self) -> str:
        pair = self.text[self.pos:self.pos + 2]
        return pair if pair in _OPERATORS else pair[:1]

    def _raw_word(self, pos: int) -> str:
        word = _RAW_WORD.match(self.text, pos)
        return word.group() if word else self.text[pos:pos + 1]

    def _line_at(self, pos: int) -> int:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        return bisect.bisect_right(self._line_starts, pos)

    def _error(self, pos: int, message: str) -> ConfigInputError:
        return ConfigInputError(self.path, self._line_at(pos), message)

    def _unsupported(self, pos: int, syntax: str, why: str = "") -> ConfigInputError:
        detail = f" ({why})" if why else ""
        return self._error(pos, f"unsupported shell syntax {syntax!r}{detail}")
