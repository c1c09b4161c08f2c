"""When two DNs name the same entry, as bdii-update decides it.

bdii-update matches DNs as text (DESIGN.md §3): lower-cased, spaces around
``,`` and ``=`` removed, and some hex escapes (``\\2c``) read as the escaped
character. gip must match DNs exactly as the BDII will, so that a block it
prints lands on the entry it means and never on a second copy.
"""

from __future__ import annotations

import re

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
