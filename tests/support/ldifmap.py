"""LDIF in a normal form, so golden files are compared by meaning, not by bytes.

Entries become DN key -> attribute (lower case) -> values in order; change
records (RFC 2849 ``changetype: modify``) become DN key -> list of operations.
The DN key is gip.dnkey.dn_key: two DNs are one entry exactly when
bdii-update treats them as one. Values are parsed by python-ldap's ``ldif``
module, one record at a time (its change-record parser stops with EOFError on
a record that is not ``changetype: modify``).
"""

from __future__ import annotations

import base64
import io
import re
from typing import Dict, List, Mapping, Tuple

import ldap
import ldif

from gip.dnkey import dn_key

EntryMap = Dict[str, Dict[str, List[str]]]
ModifyOp = Tuple[str, str, List[str]]
ModList = List[Tuple[int, str, List[bytes]]]

_OP_NAMES = {ldap.MOD_ADD: "add", ldap.MOD_DELETE: "delete", ldap.MOD_REPLACE: "replace"}
_DN_LINE = re.compile(r"^dn::? ", re.IGNORECASE)
_CHANGETYPE = re.compile(r"^changetype:[ ]*(\w+)[ ]*$", re.IGNORECASE | re.MULTILINE)
_MOD_OP = re.compile(r"^(add|delete|replace|increment):", re.IGNORECASE | re.MULTILINE)


# -- records -------------------------------------------------------------------


def ldif_records(text: str) -> List[str]:
    """LDIF text cut into records at empty lines (RFC 2849 separates records by them).

    A leading ``version:`` line and records made only of comments are dropped.
    """
    records: List[str] = []
    current: List[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "":
            _close_record(records, current)
            current = []
        elif records or current or not line.startswith("version:"):
            current.append(line)
    _close_record(records, current)
    return records


def _close_record(records: List[str], lines: List[str]) -> None:
    if any(not line.startswith("#") for line in lines):
        records.append("\n".join(lines) + "\n")


def record_changetype(record: str) -> str:
    """The record's changetype in lower case; "add" where it has none (``ldapadd``'s reading)."""
    match = _CHANGETYPE.search(record)
    return "add" if match is None else match.group(1).lower()


def record_dn(record: str) -> str:
    """The DN on a record's first line, even when the rest of the record does not parse."""
    first = next((line for line in record.split("\n") if line and not line.startswith("#")), "")
    if first[:4].lower() == "dn::":
        try:
            return base64.b64decode(first[4:].strip(), validate=True).decode("utf-8", errors="replace")
        except ValueError:
            return first
    return first.split(":", 1)[1].strip() if ":" in first else first


def parse_entry(record: str) -> Tuple[str, Dict[str, List[bytes]]]:
    """One entry record (a ``changetype: add`` line is allowed and dropped); ValueError if it does not parse."""
    parser = _parser(record)
    parser.parse()
    if len(parser.all_records) != 1:
        raise ValueError(f"expected one entry, found {len(parser.all_records)}")
    dn, entry = parser.all_records[0]
    return str(dn), {name: values for name, values in entry.items() if name.lower() != "changetype"}


def parse_modify(record: str) -> Tuple[str, ModList]:
    """One ``changetype: modify`` record as python-ldap's modlist; ValueError if it does not parse.

    ldapmodify reads ``changetype: Modify`` and ``Replace:`` in any case (bdii-update
    writes the former); python-ldap wants lower case, so both are lowered first.
    """
    normal = _CHANGETYPE.sub("changetype: modify", record)
    normal = _MOD_OP.sub(lambda match: match.group(1).lower() + ":", normal)
    parser = _parser(normal)
    parser.parse_change_records()
    if len(parser.all_modify_changes) != 1:
        raise ValueError("expected one modify record with at least one operation")
    dn, modops, _controls = parser.all_modify_changes[0]
    return str(dn), list(modops)


def _parser(record: str) -> ldif.LDIFRecordList:
    # The closing empty line spares python-ldap an EOFError on an entry with no attributes.
    return ldif.LDIFRecordList(io.StringIO(record + "\n"))


# -- normal forms ----------------------------------------------------------------


def ldif_map(text: str) -> EntryMap:
    """Entries of an LDIF text by DN key; ValueError on a parse error, a change record or a DN seen twice."""
    result: EntryMap = {}
    for record in ldif_records(text):
        if record_changetype(record) != "add":
            raise ValueError(f"not an entry: changetype {record_changetype(record)} for {record_dn(record)}")
        dn, entry = parse_entry(record)
        result[_new_key(result, dn)] = _attributes(entry)
    return result


def modify_map(text: str) -> Dict[str, List[ModifyOp]]:
    """``changetype: modify`` records by DN key: (op, attribute lower-cased, values) in order.

    Another kind of record, or a second record for one DN, is a ValueError:
    gip prints one modify block per DN (DESIGN.md §5).
    """
    result: Dict[str, List[ModifyOp]] = {}
    for record in ldif_records(text):
        if record_changetype(record) != "modify":
            raise ValueError(f"not changetype: modify: {record_dn(record)}")
        dn, modops = parse_modify(record)
        result[_new_key(result, dn)] = [
            (_OP_NAMES[op], name.lower(), _decoded(values or [])) for op, name, values in modops
        ]
    return result


def _new_key(seen: Mapping[str, object], dn: str) -> str:
    key = dn_key(dn)
    if key in seen:
        raise ValueError(f"DN appears twice: {dn}")
    return key


def _attributes(entry: Mapping[str, List[bytes]]) -> Dict[str, List[str]]:
    attributes: Dict[str, List[str]] = {}
    for name, values in entry.items():
        attributes.setdefault(name.lower(), []).extend(_decoded(values))
    return attributes


def _decoded(values: List[bytes]) -> List[str]:
    return [value.decode("utf-8") for value in values]


# -- bdii-update's output and LDAP search results ----------------------------------


def split_bdii_output(text: str) -> List[str]:
    """bdii-update's non-daemon output cut into entries: only the next ``dn:`` line ends one."""
    entries: List[str] = []
    for line in text.splitlines():
        if _DN_LINE.match(line) or not entries:
            entries.append("")
        if line.strip():
            entries[-1] += line + "\n"
    return [entry for entry in entries if entry]


def bdii_map(text: str) -> EntryMap:
    """ldif_map of bdii-update's non-daemon output."""
    return ldif_map("\n".join(split_bdii_output(text)))


def by_dn_key(result: Mapping[str, Mapping[str, List[str]]]) -> EntryMap:
    """A search result (DN as the server spells it -> attributes) keyed like ldif_map."""
    keyed: EntryMap = {}
    for dn, attributes in result.items():
        keyed[_new_key(keyed, dn)] = {name.lower(): list(values) for name, values in attributes.items()}
    return keyed
