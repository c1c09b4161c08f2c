"""When two DNs name the same entry, as bdii-update decides it.

bdii-update matches DNs as text (DESIGN.md §3): lower-cased, spaces around
``,`` and ``=`` removed, and some hex escapes (``\\2c``) read as the escaped
character. gip must match DNs exactly as the BDII will, so that a block it
prints lands on the entry it means and never on a second copy.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import List, Optional, Sequence

_SPACE = re.compile(r"\s")
_AROUND_COMMA = re.compile(r"\s*,\s*")
_AROUND_EQUALS = re.compile(r"\s*=\s*")
_HEX_ESCAPES = (
    ("\\5c", "\\\\"),
    ("\\2c", "\\,"),
    ("\\3d", "\\="),
    ("\\2b", "\\+"),
    ("\\3b", "\\;"),
    ("\\22", '\\"'),
    ("\\3e", "\\>"),
    ("\\3c", "\\<"),
)


def dn_key(dn: str) -> str:
    """The form under which bdii-update files an entry: equal keys are one entry."""
    # No strip(): bdii-update keeps spaces at either end of a DN, so "o=grid "
    # and "o=grid" are two entries to it.
    key = dn.lower()
    if _SPACE.search(key) is not None:
        key = _AROUND_EQUALS.sub("=", _AROUND_COMMA.sub(",", key))
    if "\\" in key:
        for escaped, plain in _HEX_ESCAPES:
            key = key.replace(escaped, plain)
    return key


# The ASCII characters for which dn_key() does more to a DN than lower-case it: whitespace (but the
# line end that joins DNs in lower_cased_keys) and the backslash of an escape.
_NOT_LOWER_CASE_ONLY = tuple(character for character in map(chr, range(128))
                             if character.isspace() and character != "\n") + ("\\",)


def dn_keys(dns: Sequence[str]) -> List[str]:
    """dn_key() of each DN: at once, where that is all it does to any of them."""
    keys = lower_cased_keys(dns)
    return [dn_key(dn) for dn in dns] if keys is None else keys


def lower_cased_keys(dns: Sequence[str]) -> Optional[List[str]]:
    """Each DN lower-cased, all at once, where that is all dn_key() does to every one of them:
    ASCII, without whitespace, escapes or line ends; else None."""
    joined = "\n".join(dns)
    if not dns or not joined.isascii() or joined.count("\n") != len(dns) - 1:
        return None
    if any(character in joined for character in _NOT_LOWER_CASE_ONLY):
        return None
    return joined.lower().split("\n")
