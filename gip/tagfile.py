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

import functools
import operator
import re
from bisect import bisect_left
from itertools import islice
from os.path import commonprefix
from pathlib import Path

from gip.files import read_regular_file
from gip.report import Problem
from gip.tags import TagRule

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

_BOM = b"\xef\xbb\xbf"
_PREFIX = b"gluehostapplicationsoftwareruntimeenvironment:"
_SEPARATORS = re.compile(rb"[ \t\n\r\x0b\x0c,]+")
# Character classes of the whole-file reading (_read_plain). A file of tag characters, ASCII
# whitespace and commas can be read with whole-file operations; anything else (comments, prefixes,
# control characters that str.split would take for separators, non-ASCII bytes) needs the
# line-by-line reading. Capitals are kept apart: spellings that differ only in case are made of them.
_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER_TAG_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz._-"  # the tag characters but capitals
_LOWER_TAG_BYTES_AND_LF = _LOWER_TAG_CHARS.encode("ascii") + b"\n"
_OTHER_SEPARATORS = b" \t\r\x0b\x0c,"
# A tree holds a file per VO, and per VO and SubCluster: each VO's rule is made once.
_rule_of = functools.lru_cache(maxsize=256)(TagRule)


class TagFile:
    """The valid tags of one file, in file order without duplicates, and what was skipped.

    ``stems``, where known, are lower-cased strings such that every tag, lower-cased, starts with
    one of them: two files whose stems together hold none that starts another (see prefix_free)
    share no tag, ignoring case, without a tag being lowered. None where not known.
    """

    def __init__(
        self, path: str, vo: str, tags: List[str], problems: Optional[List[Problem]] = None, data: bytes = b"",
        stems: Optional[Tuple[str, ...]] = None,
    ) -> None:
        self.path = path
        self.vo = vo
        self.tags = tags
        self.problems: List[Problem] = [] if problems is None else problems
        self.data = data
        self.stems = stems

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
    rule = _rule_of(vo)
    stems: List[str] = []
    fast = _read_plain(data, rule, stems)
    if fast is not None:
        return TagFile(path, vo, fast, [], data, tuple(stems) if stems or not fast else None)
    tags, problems = _read_lines(data, rule, path)
    return TagFile(path, vo, tags, problems, data)


def read_tag_file(path: Path, vo: str) -> TagFile:
    """Reads a tag file; OSError (missing, unreadable) is the caller's to report."""
    data = read_regular_file(path)
    return parse_tags(data, vo, str(path))


def render_tag_file(tags: Iterable[str]) -> bytes:
    """The one form gip writes: a tag per line, LF endings, nothing else."""
    tags = list(tags)
    return ("\n".join(tags) + "\n").encode("ascii") if tags else b""


def _read_plain(data: bytes, rule: TagRule, stems: Optional[List[str]] = None) -> Optional[List[str]]:
    """The common file (ASCII tags, no comments) read with whole-file operations in C, or None.

    None sends the file to the line-by-line reading: for any token that is not a valid tag, and for
    spellings that differ only in case, which that reading reports with their lines. Otherwise the
    result is what _read_lines would keep. Where the tags are proven free of case twins by their
    families (_case_twin_free_blocks), their stems (see TagFile) are added to ``stems``.
    """
    # One pass sorts the bytes: what is left after deleting lower-case tag characters and LF is the
    # capitals, the other separators, and whatever a plain file cannot hold. When only letters are
    # left, they are capitals and the file holds nothing but tag characters and LF.
    left = data.translate(None, _LOWER_TAG_BYTES_AND_LF)
    lf_only = not left or left.isalpha()
    if lf_only:
        # gip's own form: one split on LF. Its empty pieces are what follows the last LF, dropped
        # here, and blank lines, dropped below.
        capitals = left
        text = data.decode("ascii")
        tokens = text.split("\n")
        if not tokens[-1]:
            tokens.pop()
    elif not left.translate(None, _UPPER + _OTHER_SEPARATORS):
        capitals = left.translate(None, _OTHER_SEPARATORS)
        text = data.decode("ascii")
        if "," in text:
            text = text.replace(",", " ")
        tokens = text.split()
    else:
        return None
    ascending = _strictly_ascending(tokens)
    if lf_only:
        if not ascending:
            tokens = list(filter(None, tokens))
        elif tokens and not tokens[0]:
            del tokens[0]  # strictly ascending: the only empty piece there can be comes first
    if not tokens:
        return []
    if not rule.all_valid_plain(tokens, ascending):
        return None
    blocks = _case_twin_free_blocks(tokens, capitals, len(rule.prefix)) if ascending else None
    if blocks is not None:
        if stems is not None:
            # The tokens of a block run from its first to its last in sorted order: all start with
            # what those two share.
            stems.extend(commonprefix((tokens[start], tokens[end - 1])).lower() for start, end in blocks)
        return tokens
    keys = len(set(text.lower().split()))
    if keys == len(tokens):
        return tokens
    if keys != len(set(tokens)):
        return None  # spellings that differ only in case: reported line by line
    return list(dict.fromkeys(tokens))


def _strictly_ascending(tokens: List[str]) -> bool:
    """True when every token sorts after the one before it: sorted, and no two are equal."""
    return all(map(operator.lt, tokens, islice(tokens, 1, None)))


def _no_case_twins(tokens: List[str], capitals: bytes, shared: int) -> bool:
    """True when no two of ``tokens`` differ only in case, proven without lowering every token."""
    return _case_twin_free_blocks(tokens, capitals, shared) is not None


def _case_twin_free_blocks(tokens: List[str], capitals: bytes, shared: int) -> Optional[List[Tuple[int, int]]]:
    """The blocks (start, end) of a proof that no two of ``tokens`` differ only in case; None where
    there is no such proof.

    ``tokens`` are strictly ascending and made of tag characters, and all start with the same
    ``shared`` characters (the VO prefix); ``capitals`` are their upper-case letters in order. The
    proof takes the tokens in blocks, found by binary search: the tokens that start with a head,
    which is the block's first token up to its last capital, and at least one character past the
    shared start.

    - Every token holds the capitals of its head, so when the heads account for all ``capitals``,
      no token has a capital after its head. Two tokens of one block then differ in a part without
      capitals, which lowering leaves as it is: they stay different.
    - Two tokens of different blocks start with their lowered heads. When no lowered head starts
      another, those differ, and so do the lowered tokens.

    A file of a few families of tags (``VO-cms-CMSSW_...``, ``VO-cms-slc6-...``) is a few blocks.
    None means not proven: capitals after a head, heads alike but for case, or too much work.
    """
    steps = 16 + len(tokens) // 64  # beyond these, lowering every token is the cheaper proof
    scanned = 0
    in_heads = 0  # how many of the capitals the heads of the blocks so far account for
    heads: List[str] = []
    blocks: List[Tuple[int, int]] = []
    start = 0
    while start < len(tokens):
        first = tokens[start]
        length = max(len(first.rstrip(_LOWER_TAG_CHARS)), shared + 1)
        while True:
            steps -= 1
            if steps < 0 or scanned > 4 * len(capitals):
                return None
            head = first[:length]
            if length > len(first):
                end = start + 1
            else:
                # The tokens that start with the head sort below the head with its last character
                # raised by one.
                end = bisect_left(tokens, head[:-1] + chr(ord(head[-1]) + 1), start)
            expected = head.encode("ascii").translate(None, _LOWER_TAG_BYTES_AND_LF)
            size = len(expected) * (end - start)
            # Not part of the proof, only a guide to the blocks: when this block's capitals are not
            # its head's once per token, a longer head makes a smaller block that may do better.
            if end - start == 1 or not expected or capitals.count(expected, in_heads, in_heads + size) == end - start:
                break
            scanned += size
            length += 1
        heads.append(head.lower())
        blocks.append((start, end))
        in_heads += size
        start = end
    if in_heads != len(capitals) or not prefix_free(heads):
        return None
    return blocks


def prefix_free(strings: Iterable[str]) -> bool:
    """True when none of ``strings`` starts another (or equals it)."""
    ordered = sorted(strings)
    # In sorted order, a string that starts another also starts the one right after it.
    return not any(map(str.startswith, islice(ordered, 1, None), ordered))


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
