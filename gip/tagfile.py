"""Reading and writing one tag file: ``<vo>.ldif`` or the legacy ``<vo>.list``.

These files are not LDIF, whatever their name says. As found in the wild
(DESIGN.md §2) they hold tags separated by ASCII whitespace or commas, ``#``
comment lines, blank lines, CRLF endings, a UTF-8 byte-order mark, and lines
that start with ``GlueHostApplicationSoftwareRunTimeEnvironment:`` (any case).
A line that starts with a space is not a continuation. A ``#`` that starts a
token starts a comment running to the end of its line (``#`` is never part of
a valid tag, so no valid tag is lost to it).

Reading never fails on content: every token that is not a valid tag of the
file's VO is returned as a Problem with its line, and undecodable bytes cost
only the tokens that hold them. Within a file the first spelling of a tag wins;
a later spelling that differs only in case is a Problem, because the BDII would
reject the SubCluster holding both.

gip writes these files in one form only: one tag per line, LF endings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

from gip.report import Problem
from gip.tags import TagRule

_BOM = b"\xef\xbb\xbf"
_PREFIX = b"gluehostapplicationsoftwareruntimeenvironment:"
_SEPARATORS = re.compile(rb"[ \t\n\r\x0b\x0c,]+")
# The bytes of a file that the whole-file reading can take: tag characters,
# ASCII whitespace and commas. Anything else (comments, prefixes, control
# characters that str.split would take for separators, non-ASCII bytes)
# needs the line-by-line reading.
_PLAIN_BYTES = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._- \t\n\r\x0b\x0c,"


class TagFile:
    """The valid tags of one file, in file order without duplicates, and what was skipped."""

    def __init__(
        self, path: str, vo: str, tags: List[str], problems: Optional[List[Problem]] = None, data: bytes = b""
    ) -> None:
        self.path = path
        self.vo = vo
        self.tags = tags
        self.problems: List[Problem] = [] if problems is None else problems
        self.data = data

    def __repr__(self) -> str:
        return f"TagFile({self.path!r}, {self.vo!r}, {len(self.tags)} tags, {len(self.problems)} problems)"

    def line_of(self, tag: str) -> Optional[int]:
        """The first line holding ``tag`` (ignoring case), for reports made after reading."""
        wanted = tag.lower()
        for number, token in _tokens(self.data):
            if isinstance(token, str) and token.lower() == wanted:
                return number
        return None


def parse_tags(data: bytes, vo: str, path: str) -> TagFile:
    """Reads the content of a tag file of VO ``vo``; ``path`` names it in problems."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    rule = TagRule(vo)
    fast = None if data.translate(None, _PLAIN_BYTES) else _read_plain(data, rule)
    if fast is not None:
        return TagFile(path, vo, fast, [], data)
    tags, problems = _read_lines(data, rule, path)
    return TagFile(path, vo, tags, problems, data)


def read_tag_file(path: Path, vo: str) -> TagFile:
    """Reads a tag file; OSError (missing, unreadable) is the caller's to report."""
    with open(path, "rb") as stream:
        data = stream.read()
    return parse_tags(data, vo, str(path))


def render_tag_file(tags: Iterable[str]) -> bytes:
    """The one form gip writes: a tag per line, LF endings, nothing else."""
    tags = list(tags)
    return ("\n".join(tags) + "\n").encode("ascii") if tags else b""


def _read_plain(data: bytes, rule: TagRule) -> Optional[List[str]]:
    """The common file (ASCII tags, no comments): whole-file operations in C, or None."""
    text = data.decode("ascii").replace(",", " ")
    tokens = text.split()
    if not rule.all_valid(tokens):
        return None
    keys = len(set(text.lower().split()))
    if keys == len(tokens):
        return tokens
    if keys != len(set(tokens)):
        return None  # spellings that differ only in case: reported line by line
    return list(dict.fromkeys(tokens))


def _read_lines(data: bytes, rule: TagRule, path: str) -> Tuple[List[str], List[Problem]]:
    kept: Dict[str, Tuple[str, int]] = {}
    problems: List[Problem] = []
    for number, token in _tokens(data):
        if isinstance(token, bytes):
            shown = token.decode("utf-8", "backslashreplace")
            problems.append(Problem(path, number, "not ASCII", shown))
            continue
        reason = rule.problem(token)
        if reason is not None:
            problems.append(Problem(path, number, reason, token))
            continue
        held = kept.setdefault(token.lower(), (token, number))
        if held[0] != token:
            reason = f"differs only in case from {held[0]!r} (line {held[1]}), which is kept"
            problems.append(Problem(path, number, reason, token))
    return [tag for tag, _ in kept.values()], problems


def _tokens(data: bytes) -> Iterator[Tuple[int, Union[str, bytes]]]:
    """(line number, token) for every token; a token that is not ASCII stays bytes."""
    for number, line in enumerate(data.split(b"\n"), 1):
        body = line.lstrip(b" \t\r\x0b\x0c")
        if body[:len(_PREFIX)].lower() == _PREFIX:
            body = body[len(_PREFIX):]
        for raw in _SEPARATORS.split(body):
            if not raw:
                continue
            if raw.startswith(b"#"):
                break
            yield number, (raw.decode("ascii") if raw.isascii() else raw)
