"""What a valid software tag, VO name and SubCluster ID are.

This is the one definition that the provider and the ESM commands share. A tag
is ``VO-<vo>-<rest>``: ``<vo>`` is the VO whose folder holds it, ``<rest>``
starts with an ASCII letter or digit and holds only ASCII letters, digits and
``._-``; the whole tag is at most 255 characters. Those characters can never
form ``dn:``, a line break or a leading space, so a valid tag is always safe to
print in LDIF (see DESIGN.md §3: bdii-update splits its input at every ``dn:``).

Tags are compared ignoring case, as the BDII's LDAP server does: two spellings
of one tag in one entry get the whole entry rejected.
"""

from __future__ import annotations

import re
from bisect import bisect_left

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Dict, Iterable, Iterator, List, Optional, Pattern, Sequence, Tuple

MAX_TAG_LENGTH = 255
RUNTIME_ENVIRONMENT = "GlueHostApplicationSoftwareRunTimeEnvironment"

_VO_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SUBCLUSTER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_BAD_CHAR = re.compile(r"[^A-Za-z0-9._-]")
_OTHER_VO = re.compile(r"VO-([a-z0-9][a-z0-9._-]*?)-")
_MAX_NAME = 255
# The longest name gip keeps beside a tag file, '.<vo>.ldif.tmp-' and 16 hex digits, must fit
# in a file name (255 bytes); real VO names are a few tens of characters.
_MAX_VO_NAME = 200


class ValidTags(list[str]):  # not typing's List[str]: see gip._records
    """A list of tags that a TagRule found valid. The model keeps the tags it takes from tag
    files in such lists, so that printing them (gip.ldifvalue.plain_value_lines) needs no
    second look at 100,000 values: a valid tag is always safe to print."""

    __slots__ = ()


def vo_name_problem(vo: str) -> Optional[str]:
    """Why ``vo`` is not a usable VO name (lower case, may hold dots), or None."""
    if not vo:
        return "a VO name is empty"
    if len(vo) > _MAX_VO_NAME:
        return f"a VO name is at most {_MAX_VO_NAME} characters"
    if not _VO_NAME.fullmatch(vo) or vo in (".", ".."):
        return "a VO name is lower-case ASCII letters, digits and ._- and starts with a letter or digit"
    return None


def subcluster_id_problem(subcluster: str) -> Optional[str]:
    """Why ``subcluster`` is not a usable SubCluster ID, or None."""
    if not subcluster:
        return "a SubCluster ID is empty"
    if len(subcluster) > _MAX_NAME or not _SUBCLUSTER_ID.fullmatch(subcluster):
        return "a SubCluster ID is ASCII letters, digits and ._- and starts with a letter or digit"
    return None


class TagRule:
    """The tag rule for one VO, compiled once: tag files hold many thousands of tags."""

    def __init__(self, vo: str) -> None:
        self.vo = vo
        self.prefix = f"VO-{vo}-"
        self._pattern: Optional[Pattern[str]] = None
        # Bounds for all_valid_plain. In sorted order, the strings that start with the prefix come
        # from the prefix up to (but not including) the prefix with its last character, '-', raised
        # by one. Among strings of tag characters, those with a letter or digit after the prefix are
        # that range less the part below prefix + "0" (nothing, '-' or '.' after the prefix) and less
        # the strings from prefix + "_" up to prefix + "`" ('`' comes right after '_').
        self._lowest = self.prefix + "0"
        self._beyond = self.prefix[:-1] + chr(ord(self.prefix[-1]) + 1)
        self._underscore = self.prefix + "_"
        self._past_underscore = self.prefix + "`"

    def is_valid(self, tag: str) -> bool:
        return len(tag) <= MAX_TAG_LENGTH and self._compiled().fullmatch(tag) is not None

    def all_valid(self, tags: List[str]) -> bool:
        """True when every tag is valid; loops in C, for the common all-good file."""
        if not tags:
            return True
        return max(map(len, tags)) <= MAX_TAG_LENGTH and all(map(self._compiled().fullmatch, tags))

    def _compiled(self) -> Pattern[str]:
        """The rule as an expression, compiled on first use: a site's files mostly never need it."""
        if self._pattern is None:
            self._pattern = re.compile(re.escape(self.prefix) + r"[A-Za-z0-9][A-Za-z0-9._-]*")
        return self._pattern

    def all_valid_plain(self, tags: Sequence[str], ascending: bool = False) -> bool:
        """all_valid for ``tags`` that hold only tag characters (A-Za-z0-9._-), without a regex per tag.

        Such a tag is valid when it lies in a range of strings (see __init__) and is short enough.
        ``ascending`` says ``tags`` are sorted: the range is then checked at the two ends and by one
        binary search, whatever the number of tags.
        """
        if not tags:
            return True
        if ascending:
            lowest, highest = tags[0], tags[-1]
            at = bisect_left(tags, self._underscore)
            underscore = at < len(tags) and tags[at] < self._past_underscore
        else:
            lowest, highest = min(tags), max(tags)
            joined = "\n".join(tags)  # no tag holds LF, so each LF starts a tag
            underscore = joined.startswith(self._underscore) or "\n" + self._underscore in joined
        return (
            lowest >= self._lowest
            and highest < self._beyond
            and not underscore
            and max(map(len, tags)) <= MAX_TAG_LENGTH
        )

    def problem(self, tag: str) -> Optional[str]:
        """Why ``tag`` is not a valid tag of this VO, or None when it is."""
        if self.is_valid(tag):
            return None
        if not tag.isascii():
            return "not ASCII"
        if len(tag) > MAX_TAG_LENGTH:
            return f"longer than {MAX_TAG_LENGTH} characters ({len(tag)})"
        if not tag.startswith(self.prefix):
            return self._prefix_problem(tag)
        rest = tag[len(self.prefix):]
        if not rest:
            return f"nothing follows {self.prefix!r}"
        if not rest[0].isalnum():
            return f"{self.prefix!r} must be followed by a letter or digit"
        bad = _BAD_CHAR.search(rest)
        char = bad.group() if bad else "?"
        return f"holds {char!r}: only ASCII letters, digits and ._- are allowed"

    def _prefix_problem(self, tag: str) -> str:
        start = tag[:len(self.prefix)]
        if start.lower() == self.prefix.lower():
            return f"starts with {start!r}, not {self.prefix!r}: the case differs"
        other = _OTHER_VO.match(tag)
        if other and other.group(1) != self.vo:
            return f"names VO {other.group(1)!r}, not {self.vo!r}"
        return f"does not start with {self.prefix!r}"


def tag_problem(vo: str, tag: str) -> Optional[str]:
    """Why ``tag`` is not a valid tag of VO ``vo``, or None. Prefer TagRule in loops."""
    return TagRule(vo).problem(tag)


class TagSet:
    """Tags in first-seen order, unique ignoring case; the first spelling wins."""

    def __init__(self, tags: Iterable[str] = ()) -> None:
        self._by_key: Dict[str, str] = {}
        for tag in tags:
            self.add(tag)

    def add(self, tag: str) -> Optional[str]:
        """Adds ``tag``; returns the spelling already held when it differs only in case."""
        key = tag.lower()
        held = self._by_key.get(key)
        if held is None:
            self._by_key[key] = tag
            return None
        return held if held != tag else None

    def update(self, tags: Iterable[str]) -> List[Tuple[str, str]]:
        """Adds every tag; returns (refused, held) for each that differs only in case."""
        tags = list(tags)
        new = dict(zip(map(str.lower, tags), tags))
        if len(new) == len(tags) and self._by_key.keys().isdisjoint(new):
            # The common case, a file of distinct new tags: one dict update in C.
            self._by_key.update(new)
            return []
        clashes = []
        for tag in tags:
            held = self.add(tag)
            if held is not None:
                clashes.append((tag, held))
        return clashes

    def find(self, tag: str) -> Optional[str]:
        """The spelling held for ``tag`` ignoring case, or None."""
        return self._by_key.get(tag.lower())

    def discard(self, tag: str) -> Optional[str]:
        """Removes ``tag`` ignoring case; returns the spelling that was held, or None."""
        return self._by_key.pop(tag.lower(), None)

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, str) and tag.lower() in self._by_key

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def as_list(self) -> List[str]:
        return list(self._by_key.values())
