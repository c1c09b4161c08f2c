"""The one rule for every DN and value gip prints as LDIF.

RFC 2849 allows any value, base64-encoded where it is not a SAFE-STRING. The
BDII is stricter than the RFC (DESIGN.md §3): bdii-update splits its input at
every ``dn:``, even inside a value or after decoding base64; the GLUE 1
attributes are IA5String, so a non-ASCII value gets its whole entry rejected;
and bdii-update strips the spaces around values. So gip prints only values
that are printable ASCII, hold no ``dn:`` and have no leading or trailing
space. Of those, only a value starting with ``:`` or ``<`` needs base64.
"""

from __future__ import annotations

import re
from binascii import b2a_base64

from gip.errors import GipError

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple

_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*")
_ATTRIBUTES = re.compile(r"[A-Za-z][A-Za-z0-9-]*(?:;[A-Za-z0-9-]+)*(?:\n[A-Za-z][A-Za-z0-9-]*(?:;[A-Za-z0-9-]+)*)*")
_PRINTABLE = bytes(range(0x20, 0x7F))
_PRINTABLE_OR_NEWLINE = _PRINTABLE + b"\n"
_TAG_CHARACTERS_OR_NEWLINE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-\n"
# Lines 'name: value' whose value starts as RFC 2849 lets a value start unencoded.
_PLAIN_LINES = re.compile(r"[A-Za-z][A-Za-z0-9-]*: [^ :<\n][^\n]*(?:\n[A-Za-z][A-Za-z0-9-]*: [^ :<\n][^\n]*)*")
# The start of a line that is neither blank nor a plain 'name: value' line, as _PLAIN_LINES reads one.
_NOT_PLAIN_LINE = re.compile(r"\n(?![A-Za-z][A-Za-z0-9-]*: [^ :<\n]|\n|\Z)")
# In a newline-framed block of values: an empty value, one that starts with a
# space, ':' or '<' (base64 or refused), or one that ends with a space.
_EDGE = re.compile(r"\n[ :<\n]| \n")


class UnsafeValue(GipError):
    """A value or DN that would corrupt the BDII if printed."""

    def __init__(self, value: str, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"{reason}: {ascii(value[:80])}")


def value_problem(value: str) -> Optional[str]:
    """Why ``value`` must not be printed, or None when it is safe."""
    if not value:
        return "empty"
    if _NOT_PRINTABLE.search(value):
        return "not printable ASCII (a line break, a control or a non-ASCII character)"
    if "dn:" in value:
        return "holds 'dn:', which bdii-update takes for the start of an entry"
    if value[0] == " " or value[-1] == " ":
        return "has a leading or trailing space"
    return None


def plainly_printable(values: Sequence[str]) -> bool:
    """True when every one of ``values`` passes value_problem() and holds no blank (space, tab)
    and no backslash; False also where one needs a closer look. One look at all of them, for
    the thousands of DNs of a static file."""
    if not values or "" in values:
        return not values
    joined = "\n".join(values)
    if not joined.isascii() or "dn:" in joined or " " in joined or "\\" in joined:
        return False
    # What is left once the printable characters are gone: the newlines that join the values.
    return joined.encode("ascii").translate(None, _PRINTABLE) == b"\n" * (len(values) - 1)


def attribute_problem(attribute: str) -> Optional[str]:
    """Why ``attribute`` must not name a line of an entry, or None when it may."""
    if _ATTRIBUTE.fullmatch(attribute) is None:
        return "attribute name is not an LDAP attribute description"
    if attribute.lower() == "dn":
        return "attribute named 'dn' inside an entry: the BDII would take it for another entry or refuse it"
    if attribute.endswith("dn"):
        return "attribute name ends in 'dn', which with its colon bdii-update takes for the start of an entry"
    return None


def attribute_line(attribute: str, value: str) -> str:
    """``attribute: value`` and a newline, base64 where RFC 2849 needs it; raises UnsafeValue."""
    _check_attribute(attribute)
    return _line(attribute, value)


def _line(attribute: str, value: str) -> str:
    problem = value_problem(value)
    if problem is not None:
        raise UnsafeValue(value, f"{attribute}: {problem}")
    if value[0] in ":<":
        # binascii, not base64: the module the provider runs with every cycle costs less to import.
        encoded = b2a_base64(value.encode("ascii"), newline=False).decode("ascii")
        return f"{attribute}:: {encoded}\n"
    return f"{attribute}: {value}\n"


def attribute_lines(attribute: str, values: Sequence[str]) -> str:
    """One line per value; checks the whole block at once, as tag lists are long."""
    if not values:
        return ""
    if len(values) == 1:
        return attribute_line(attribute, values[0])
    _check_attribute(attribute)
    joined = "\n".join(values)
    # A value holding a line break would pass for two values in the joined block.
    if joined.count("\n") != len(values) - 1 or _block_suspect("\n" + joined + "\n"):
        return "".join(attribute_line(attribute, value) for value in values)
    prefix = attribute + ": "
    return prefix + joined.replace("\n", "\n" + prefix) + "\n"


def plain_value_lines(attribute: str, values: Sequence[str], valid_tags: bool = False) -> Optional[List[bytes]]:
    """attribute_lines() as ASCII bytes, in parts to print one after the other, where every value
    is ASCII letters, digits and ``._-``; else None.

    Such values (every valid tag) need no check beyond their characters: no
    space, no ':', no line break. Checked and printed in a few operations
    over the whole block, for tag lists of 100,000 values: the parts are not
    copied together, as each copy of tens of megabytes costs as much as the check.
    ``valid_tags``: the values are tags a TagRule found valid (gip.tags.ValidTags),
    which have those characters only and are never empty; they are not looked at again.
    """
    if not values or attribute_problem(attribute) is not None:
        return None
    if valid_tags:
        joined = "\n".join(values).encode("ascii")
    else:
        if "" in values:
            return None
        try:
            joined = "\n".join(values).encode("ascii")
        except UnicodeEncodeError:
            return None
        # Only tag characters, and no line break inside a value (each one here separates two values).
        if joined.translate(None, _TAG_CHARACTERS_OR_NEWLINE) or joined.count(b"\n") != len(values) - 1:
            return None
    prefix = attribute.encode("ascii") + b": "
    return [prefix, joined.replace(b"\n", b"\n" + prefix), b"\n"]


def attributes_block(pairs: Sequence[Tuple[str, Sequence[str]]]) -> str:
    """The lines of several attributes at once, as attribute_lines would print each.

    A static entry has some 40 attributes of one or two short values: one
    check of all its values together costs less than a check per attribute.
    Raises UnsafeValue where some value fails, without saying which:
    callers then go attribute by attribute.
    """
    values = [value for _, listed in pairs for value in listed]
    if not values:
        return ""
    names = "\n".join([name for name, _ in pairs])
    if _ATTRIBUTES.fullmatch(names) is None or _names_dn(names) or "dn\n" in names + "\n":
        raise UnsafeValue(names, "an attribute needs a closer look")
    joined = "\n".join(values)
    block = "\n" + joined + "\n"
    if joined.count("\n") != len(values) - 1 or _not_plain(block) or _EDGE.search(block):
        raise UnsafeValue(joined, "a value needs a closer look")
    return "".join([f"{name}: {value}\n" for name, listed in pairs for value in listed])


def is_plain_block(text: str) -> bool:
    """True when ``text`` is lines ``name: value`` that print as they are.

    That is: each name an attribute description without options, one space
    after its colon, each value passing value_problem() and needing no
    base64. For a static entry's lines, which gip then prints as the file has them.
    """
    return (
        _PLAIN_LINES.fullmatch(text) is not None
        and not _not_plain("\n" + text + "\n")
        and not _names_dn(text)
        and " \n" not in text
        and not text.endswith(" ")
    )


def plain_records(text: str, lowered: str, records: int) -> bool:
    """True when the lines after the dn line of every record of ``text`` pass is_plain_block().

    ``text`` is ASCII, records apart by blank lines, ``records`` of them, each starting with a
    line ``dn:``. ``lowered`` is ``text.lower()``. One look at the whole text, where a static
    file of thousands of entries would take one per entry; False also where some line needs
    that closer look.
    """
    if lowered.count("dn:") != records:  # a 'dn:' beside the dn lines, or a line named dn
        return False
    if " \n" in text or text.rstrip("\n").endswith(" "):
        return False
    if text.encode("ascii").translate(None, _PRINTABLE_OR_NEWLINE):
        return False
    # Every line that is not blank (dn lines too) is a plain 'name: value' line.
    return _NOT_PLAIN_LINE.search("\n" + text) is None


def _not_plain(block: str) -> bool:
    """True when a newline-framed block holds a character no value may hold, or 'dn:'."""
    if not block.isascii() or block.encode("ascii").translate(None, _PRINTABLE_OR_NEWLINE):
        return True
    return "dn:" in block


def _names_dn(lines: str) -> bool:
    """True when a line of ``lines`` (each ``name`` or ``name: value``) is named 'dn', in any case."""
    framed = "\n" + lines.lower() + "\n"
    return "\ndn:" in framed or "\ndn\n" in framed


def _block_suspect(block: str) -> bool:
    """True unless every value of a newline-framed block is plainly safe.

    A few whole-block scans in C instead of a check per value: tag lists hold
    up to 100,000 values. Values with a space, ':' or '<' anywhere (rare in tag
    lists) take the per-value path, which handles base64 and the exact rules.
    """
    return _not_plain(block) or ":" in block or " " in block or "<" in block or "\n\n" in block


def dn_line(dn: str) -> str:
    """The ``dn:`` line of an entry; raises UnsafeValue for a DN that is not safe to print."""
    return _line("dn", dn)


def _check_attribute(attribute: str) -> None:
    problem = attribute_problem(attribute)
    if problem is not None:
        raise UnsafeValue(attribute, problem)
