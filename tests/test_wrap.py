"""gip.wrap: running the batch-system plugin and applying the CE state to its output.

The rewriting is checked three ways: tables of cases, a model of how
bdii-update reads a plugin (read_ldif, get_dns, modify_entry), checked
against the real bdii-update, and the real bdii-update itself.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import ldif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gip.dnkey import dn_key
from gip.errors import GipError, UsageError
from gip.ldifvalue import UnsafeValue
from gip.wrap import (
    BlocksOnDemand,
    GLUE1_STATE,
    GLUE2_STATE,
    Override,
    _PHYSICAL_LINE,
    _appended,
    _blocks,
    _logical_lines,
    _plainly_one_entry,
    _run_notes,
    _unfolded_lines,
    apply_overrides,
    run_plugin,
    start_plugin,
    wrap,
)
from tests.support.integration import pid_alive, require_programs

DATA = Path(__file__).parent / "data" / "wrap"
PLUGINS = DATA / "plugins"

LONG = "GlueCEUniqueID=ce01.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid"
SHORT = "GlueCEUniqueID=ce01.example.org:8443/cream-pbs-short,mds-vo-name=resource,o=grid"
TEST = "GlueCEUniqueID=ce01.example.org:8443/cream-pbs-test,mds-vo-name=resource,o=grid"
EXTRA = "GlueCEUniqueID=ce01.example.org:8443/cream-pbs-extra,mds-vo-name=resource,o=grid"
# The static LDIF spells the DNs with another case than the plugins do.
STATIC_LONG = LONG.replace("mds-vo-name", "Mds-Vo-name")
ATLAS_SHARE = ("GLUE2ShareID=grid_ce02.example.org_ComputingElement_atlas,"
               "GLUE2ServiceID=ce02.example.org_ComputingElement,GLUE2GroupID=resource,o=glue")
OPS_SHARE = ("GLUE2ShareID=debug_ce02.example.org_ComputingElement_ops,"
             "GLUE2ServiceID=ce02.example.org_ComputingElement,GLUE2GroupID=resource,o=glue")


def pilot(dn: str = LONG, policy: Optional[str] = "Production", static: Optional[str] = "Production",
          value: str = "PilotSCAS", attribute: str = GLUE1_STATE) -> Override:
    return Override(dn, attribute, value, only_if_current=policy, static_value=static)


def state_block(dn: str, value: str = "PilotSCAS", attribute: str = GLUE1_STATE) -> str:
    """A fallback block as the caller renders it."""
    return f"dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n-\n"


def sh(script: str, *args: str) -> List[str]:
    """argv running one of the fake plugins through sh, so file modes in the checkout do not matter."""
    return ["/bin/sh", str(PLUGINS / script), *args]


# -- a model of bdii-update's reading, from /usr/sbin/bdii-update ------------------------------

_BDII_HEX = (("\\5c", "\\\\"), ("\\2c", "\\,"), ("\\3d", "\\="), ("\\2b", "\\+"),
             ("\\3b", "\\;"), ("\\22", '\\"'), ("\\3e", "\\>"), ("\\3c", "\\<"))


def bdii_read(text: str) -> str:
    """read_ldif: universal newlines, then every '\\n ' removed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n ", "")


def bdii_blocks(text: str) -> Dict[str, str]:
    """get_dns: the text from each 'dn:' to the next, filed under bdii-update's key; the first wins."""
    ldif = bdii_read(text)
    blocks: Dict[str, str] = {}
    end = len(ldif)
    while True:
        start = ldif.rfind("dn:", 0, end)
        if start < 0:
            return blocks
        line_end = ldif.find("\n", start, end)
        key = re.sub(r"\s*=\s*", "=", re.sub(r"\s*,\s*", ",", ldif[start + 4:line_end].lower()))
        for escaped, plain in _BDII_HEX:
            key = key.replace(escaped, plain)
        blocks[key] = ldif[start:end]
        end = start


def bdii_entry(block: str) -> Dict[str, List[str]]:
    """convert_entry: attribute (lower-cased, up to the first ':') to its distinct values."""
    entry: Dict[str, List[str]] = {}
    for line in block.split("\n"):
        colon = line.find(":")
        if colon < 0:
            continue
        value = line[colon + 1:].strip()
        if value and line[colon + 1] == ":":
            value = base64.b64decode(line[colon + 2:].strip()).decode()
        values = entry.setdefault(line[:colon].lower(), [])
        if value not in values:
            values.append(value)
    return entry


def bdii_modify(entry: Dict[str, List[str]], mods: Dict[str, List[str]]) -> Dict[str, List[str]]:
    """modify_entry: delete, replace (only where present), add; old style replaces only what exists."""
    entry = {name: list(values) for name, values in entry.items()}
    if "changetype" not in mods:
        for name, values in mods.items():
            if name in entry:
                entry[name] = values
        return entry
    for name in (n.lower() for n in mods.get("delete", [])):
        if name in entry and name in mods:
            entry[name] = [v for v in entry[name] if v not in mods[name]] or entry.pop(name)
        elif name in entry:
            entry.pop(name)
    for name in (n.lower() for n in mods.get("replace", [])):
        if name in entry and name in mods:
            entry[name] = mods[name]
    for name in (n.lower() for n in mods.get("add", [])):
        entry[name] = entry.get(name, []) + mods[name]
    return entry


def bdii_merge(static: str, plugin: str) -> Dict[str, Dict[str, List[str]]]:
    """The entries after one plugin ran over the static ones (entries only the plugin names are left out)."""
    merged = {key: bdii_entry(block) for key, block in bdii_blocks(static).items()}
    for key, block in bdii_blocks(plugin).items():
        if key in merged:
            merged[key] = bdii_modify(merged[key], bdii_entry(block))
    # convert_back prints 'dn' first and apart from the attributes.
    return {key: {name: values for name, values in entry.items() if name != "dn"} for key, entry in merged.items()}


def state_of(merged: Dict[str, Dict[str, List[str]]], dn: str, attribute: str = GLUE1_STATE) -> Optional[List[str]]:
    return merged[dn_key(dn)].get(attribute.lower())


# -- rewriting: tables ----------------------------------------------------------------------

OLD = f"dn: {LONG}\nGlueCEStateFreeCPUs: 12\nGlueCEStateStatus: Production\n\n"
MODIFY = f"dn: {LONG}\nchangetype: modify\nreplace: GlueCEStateFreeCPUs\nGlueCEStateFreeCPUs: 12\n-\n"


@pytest.mark.parametrize(
    ("output", "override", "expected"),
    [
        pytest.param(OLD, pilot(), OLD.replace("Production", "PilotSCAS"), id="production-only-replaces-Production"),
        pytest.param(OLD.replace("Production", "production"), pilot(), OLD.replace("Production", "PilotSCAS"),
                     id="production-only-ignores-case"),
        pytest.param(OLD.replace("Production", "Closed"), pilot(), OLD.replace("Production", "Closed"),
                     id="Closed-kept"),
        pytest.param(OLD.replace("Production", "Draining"), pilot(), OLD.replace("Production", "Draining"),
                     id="Draining-kept"),
        pytest.param(OLD.replace("Production", "Queueing"), pilot(), OLD.replace("Production", "Queueing"),
                     id="Queueing-kept"),
        pytest.param(OLD.replace("Production", "Closed"), pilot(policy=None), OLD.replace("Production", "PilotSCAS"),
                     id="always-replaces-Closed"),
        pytest.param(OLD.replace(": Production", ":: UHJvZHVjdGlvbg=="), pilot(),
                     OLD.replace("Production", "PilotSCAS"),
                     id="base64-Production"),
        pytest.param(OLD.replace(": Production", ":Production  "), pilot(), OLD.replace("Production", "PilotSCAS"),
                     id="spaces-around-value"),
        pytest.param(OLD.replace("GlueCEStateStatus", "gluecestatestatus"), pilot(),
                     OLD.replace("GlueCEStateStatus: Production", "gluecestatestatus: PilotSCAS"),
                     id="attribute-case-kept"),
        pytest.param(OLD.replace("StateStatus: Production", "StateStatus: Produ\n ction"), pilot(),
                     OLD.replace("Production", "PilotSCAS"), id="folded-state-line"),
        pytest.param(OLD.replace("resource,o=grid", "resour\n ce,o=grid"), pilot(),
                     OLD.replace("resource,o=grid", "resour\n ce,o=grid").replace("Production", "PilotSCAS"),
                     id="folded-dn-line"),
        pytest.param(OLD.replace("\n", "\r\n").replace("StateStatus: Production", "StateStatus: Prod\r\n uction"),
                     pilot(), OLD.replace("\n", "\r\n").replace("Production", "PilotSCAS"), id="crlf-folded"),
        pytest.param(OLD.replace("\n", "\r"), pilot(), OLD.replace("\n", "\r").replace("Production", "PilotSCAS"),
                     id="lone-cr-line-ends"),
        pytest.param(OLD.rstrip("\n"), pilot(), OLD.rstrip("\n").replace("Production", "PilotSCAS"),
                     id="no-final-newline"),
        pytest.param(OLD, pilot(dn=LONG.upper().replace(",", " , ")), OLD.replace("Production", "PilotSCAS"),
                     id="dn-other-case-and-spaces"),
        pytest.param(OLD + OLD, pilot(), OLD.replace("Production", "PilotSCAS") + OLD, id="duplicate-dn-first-edited"),
        pytest.param(OLD.replace("Production", "Production\nGlueCEStateStatus: production"), pilot(),
                     OLD.replace("Production", "PilotSCAS\nGlueCEStateStatus: PilotSCAS"), id="every-state-line"),
        pytest.param(f"dn: {LONG}\nGlueCEStateFreeCPUs: 12\n\n# next\n", pilot(),
                     f"dn: {LONG}\nGlueCEStateFreeCPUs: 12\nGlueCEStateStatus: PilotSCAS\n\n# next\n",
                     id="old-style-inserted-after-last-attribute"),
        pytest.param(f"dn: {LONG}\r\nGlueCEStateFreeCPUs: 12", pilot(),
                     f"dn: {LONG}\r\nGlueCEStateFreeCPUs: 12\r\nGlueCEStateStatus: PilotSCAS\r\n",
                     id="old-style-inserted-crlf-unterminated"),
        pytest.param(f"dn: {LONG}\nGlueCEStateFreeCPUs: 12\n", pilot(static="Closed"),
                     f"dn: {LONG}\nGlueCEStateFreeCPUs: 12\n", id="old-style-static-Closed-kept"),
        pytest.param(f"dn: {LONG}\nGlueCEStateFreeCPUs: 12\n", pilot(static="Closed", policy=None),
                     f"dn: {LONG}\nGlueCEStateFreeCPUs: 12\nGlueCEStateStatus: PilotSCAS\n",
                     id="old-style-static-Closed-always"),
        pytest.param(MODIFY, pilot(), MODIFY + "replace: GlueCEStateStatus\nGlueCEStateStatus: PilotSCAS\n-\n",
                     id="modify-replace-inserted"),
        pytest.param(MODIFY, pilot(static=None), MODIFY + "add: GlueCEStateStatus\nGlueCEStateStatus: PilotSCAS\n-\n",
                     id="modify-add-inserted-when-static-lacks-it"),
        pytest.param(MODIFY.rstrip("-\n") + "\n", pilot(),
                     MODIFY + "replace: GlueCEStateStatus\nGlueCEStateStatus: PilotSCAS\n-\n",
                     id="modify-last-operation-closed-first"),
        pytest.param(f"dn: {LONG}\nchangetype: modify\n", pilot(),
                     f"dn: {LONG}\nchangetype: modify\nreplace: GlueCEStateStatus\nGlueCEStateStatus: PilotSCAS\n-\n",
                     id="modify-no-operations"),
        pytest.param(MODIFY + "replace: GlueCEStateStatus\nGlueCEStateStatus: Production\n-\n", pilot(),
                     MODIFY + "replace: GlueCEStateStatus\nGlueCEStateStatus: PilotSCAS\n-\n", id="modify-replaced"),
        # bdii-update's add keeps the static state beside the new one, its replace sets only one the
        # static entry has: the operation that sets the state is made to fit.
        pytest.param(MODIFY + "add: GlueCEStateStatus\nGlueCEStateStatus: Production\n-\n", pilot(),
                     MODIFY + "replace: GlueCEStateStatus\nGlueCEStateStatus: PilotSCAS\n-\n", id="modify-add-made-replace"),
        pytest.param(MODIFY + "replace: GlueCEStateStatus\r\nGlueCEStateStatus: Production\n-\n", pilot(static=None),
                     MODIFY + "add: GlueCEStateStatus\r\nGlueCEStateStatus: PilotSCAS\n-\n",
                     id="modify-replace-made-add-when-static-lacks-it"),
        pytest.param(MODIFY + "replace: GlueCEStateStatus\nGlueCEStateStatus: Draining\n-\n", pilot(),
                     MODIFY + "replace: GlueCEStateStatus\nGlueCEStateStatus: Draining\n-\n",
                     id="modify-Draining-kept"),
        pytest.param(MODIFY, pilot(static="Queueing"), MODIFY, id="modify-static-Queueing-kept"),
        pytest.param(OLD, pilot(dn=SHORT), OLD, id="other-dn-untouched"),
        pytest.param(
            f"dn: {ATLAS_SHARE}\nGLUE2ComputingShareFreeSlots: 96\nGLUE2ComputingShareServingState: production\n",
            pilot(dn=ATLAS_SHARE, attribute=GLUE2_STATE, policy="production", static="production", value="draining"),
            f"dn: {ATLAS_SHARE}\nGLUE2ComputingShareFreeSlots: 96\nGLUE2ComputingShareServingState: draining\n",
            id="glue2-serving-state"),
        pytest.param(OLD, pilot(value=":odd"), OLD.replace(": Production", ":: Om9kZA=="),
                     id="value-base64-when-needed"),
    ],
)
def test_apply_overrides(output: str, override: Override, expected: str) -> None:
    applied = apply_overrides(output, [override])
    assert applied.text == expected
    assert applied.notes == ()


@pytest.mark.parametrize(
    ("output", "override", "note"),
    [
        pytest.param(f"dn: {LONG}\nGlueCEStateFreeCPUs: 12\n", pilot(static=None),
                     "static entry has no GlueCEStateStatus", id="old-style-cannot-add"),
        pytest.param(OLD, pilot(static=None), "static entry has no GlueCEStateStatus",
                     id="old-style-state-dropped-by-bdii"),
        pytest.param(MODIFY + "delete: GlueCEStateStatus\n-\n", pilot(), "deletes GlueCEStateStatus",
                     id="modify-deletes"),
        pytest.param(MODIFY + "replace: GlueCEStateStatus\n-\n", pilot(), "with no value", id="modify-no-value"),
        pytest.param(MODIFY + "GlueCEStateStatus: Production\n", pilot(), "so bdii-update ignores the value",
                     id="modify-value-without-operation"),
        pytest.param(f"dn: {LONG}\nGlueCEStateStatus: Production dn: {SHORT}\n", pilot(),
                     "shares a line with the next entry", id="state-beside-next-dn"),
    ],
)
def test_apply_overrides_leaves_what_it_cannot_fix(output: str, override: Override, note: str) -> None:
    applied = apply_overrides(output, [override])
    assert applied.text == output
    assert [n for n in applied.notes if note in n.text], applied.notes


def test_dn_inside_a_value_starts_the_entry_bdii_update_reads() -> None:
    # bdii-update starts SHORT's entry inside the contact string: that entry, not the later
    # proper one, is the one it reads, and the state line after it is SHORT's.
    output = (f"dn: {LONG}\nGlueCEInfoContactString: https://x/dn: {SHORT}\nGlueCEStateStatus: Production\n"
              f"dn: {SHORT}\nGlueCEStateStatus: Production\n")
    applied = apply_overrides(output, [pilot(dn=SHORT)])
    assert applied.text == output.replace("Production", "PilotSCAS", 1)
    assert bdii_blocks(applied.text)[dn_key(SHORT)].count("PilotSCAS") == 1


def test_dn_with_spaces_at_its_ends_is_not_the_static_entry() -> None:
    # bdii-update files 'dn: X ' under 'x ', which no static DN matches: the entry is not ours.
    output = f"dn: {LONG} \nGlueCEStateStatus: Production\n"
    applied = apply_overrides(output, [pilot()])
    assert applied.text == output
    assert applied.handled_dns == frozenset()


def test_handled_dns_and_changes() -> None:
    output = (DATA / "pbs-glue1.ldif").read_text()
    overrides = [pilot(dn=STATIC_LONG), pilot(dn=SHORT), pilot(dn=TEST), pilot(dn=EXTRA)]
    applied = apply_overrides(output, overrides)
    assert applied.handled_dns == {dn_key(LONG), dn_key(SHORT), dn_key(TEST)}
    assert [(c.dn, c.before, c.after) for c in applied.changes] == [
        (STATIC_LONG, "Production", "PilotSCAS"),
        (SHORT, "production", "PilotSCAS"),
    ]
    changed = [line for line in applied.text.splitlines() if line not in output.splitlines()]
    assert changed == ["GlueCEStateStatus: PilotSCAS", "GlueCEStateStatus: PilotSCAS"]


@pytest.mark.parametrize(("output", "note"), [("", "printed nothing"), ("qstat: timed out\n", "no 'dn:' line")])
def test_output_that_is_not_ldif_passes_through(output: str, note: str) -> None:
    applied = apply_overrides(output, [pilot()])
    assert applied.text == output
    assert note in applied.notes[0].text


def test_unsafe_value_is_refused() -> None:
    with pytest.raises(UnsafeValue):
        apply_overrides(OLD, [pilot(value="Pilot\nSCAS")])


def test_two_overrides_of_one_attribute_are_refused() -> None:
    with pytest.raises(GipError, match="two state overrides"):
        apply_overrides(OLD, [pilot(), pilot(dn=LONG.upper(), value="Special")])


def test_undecodable_bytes_round_trip() -> None:
    raw = OLD.encode() + b"GlueCEName: d\xe9faut\xff\n"
    text = raw.decode("utf-8", "surrogateescape")
    applied = apply_overrides(text, [pilot(dn=SHORT)])
    assert applied.text.encode("utf-8", "surrogateescape") == raw


# -- rewriting: properties -------------------------------------------------------------------

_TOKENS = st.sampled_from([
    "dn: ", "dn:", "d", "n:", LONG, LONG.upper(), SHORT, ",", "=", ": ", "::", ":", "UHJvZHVjdGlvbg==",
    "GlueCEStateStatus", "GlueCEStateFreeCPUs", "Production", "production", "Closed", "changetype: modify",
    "replace: ", "add: ", "delete: ", "-", "#", " ", "\n", "\r\n", "\r", "\n ", "\r\n ", "\udce9", "x",
])


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters() | st.just("\udcff")))
def test_physical_lines_rejoin_to_the_text(text: str) -> None:
    assert "".join(_PHYSICAL_LINE.findall(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=60).map("".join))
def test_no_override_changes_nothing(text: str) -> None:
    assert apply_overrides(text, []).text == text


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.lists(_TOKENS, max_size=80).map("".join),
    policy=st.sampled_from([None, "Production"]),
    static=st.sampled_from([None, "Production", "Closed"]),
)
def test_other_entries_are_never_changed(text: str, policy: Optional[str], static: Optional[str]) -> None:
    """Whatever the plugin prints, every entry bdii-update reads stays, and only ours changes."""
    applied = apply_overrides(text, [pilot(policy=policy, static=static)])
    before, after = bdii_blocks(text), bdii_blocks(applied.text)
    assert list(after) == list(before)
    ours = dn_key(LONG)
    assert {k: v for k, v in after.items() if k != ours} == {k: v for k, v in before.items() if k != ours}


_POOL = (LONG, SHORT, TEST)
_STATES = ("Production", "production", "Closed", "Draining", "Queueing", "PilotSCAS")


@st.composite
def _site(draw: st.DrawFn) -> Tuple[str, str, List[Override]]:
    """A static LDIF, a plugin's output about it, and overrides: what a real site gives."""
    statics = {dn: draw(st.sampled_from((None,) + _STATES[:3])) for dn in _POOL}
    static = "".join(f"dn: {dn}\nGlueCEStateFreeCPUs: 0\n" + (f"GlueCEStateStatus: {s}\n" if s else "") + "\n"
                     for dn, s in statics.items())
    blocks = draw(st.lists(_plugin_block(statics), max_size=5))
    chosen = draw(st.lists(st.sampled_from(_POOL), unique=True))
    overrides = [pilot(dn=dn, policy=draw(st.sampled_from([None, "Production"])), static=statics[dn],
                       value=draw(st.sampled_from(["PilotSCAS", "Special"]))) for dn in chosen]
    return static, "".join(blocks), overrides


@st.composite
def _plugin_block(draw: st.DrawFn, statics: Dict[str, Optional[str]]) -> str:
    dn = draw(st.sampled_from(_POOL))
    spelled = draw(st.sampled_from([dn, dn.upper(), dn.replace(",", " , ")]))
    modify = draw(st.booleans())
    lines = [f"dn: {spelled}"] + (["changetype: modify"] if modify else [])
    attributes = draw(st.permutations(["GlueCEStateFreeCPUs", "GlueCEStateStatus"]))
    for attribute in attributes[:draw(st.integers(0, 2))]:
        value = draw(st.sampled_from(_STATES)) if attribute == GLUE1_STATE else str(draw(st.integers(0, 99)))
        if modify:
            operation = "add" if attribute == GLUE1_STATE and statics[dn] is None else "replace"
            lines += [f"{operation}: {attribute}", f"{attribute}: {value}", "-"]
        else:
            lines.append(f"{attribute}: {value}")
    if modify and lines[-1] == "-" and draw(st.booleans()):
        lines.pop()
    folded = [_fold(line, draw(st.integers(0, 80))) for line in lines]
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    tail = draw(st.sampled_from(["", ending, ending + "# comment" + ending]))
    return ending.join(folded).replace("\x00", ending) + ending + tail


def _fold(line: str, at: int) -> str:
    """The line folded once at ``at`` (0: not folded); NUL marks the line end until it is known."""
    if at == 0 or at >= len(line):
        return line
    return line[:at] + "\x00 " + line[at:]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_site())
def test_state_lands_as_the_policy_says(site: Tuple[str, str, List[Override]]) -> None:
    static, output, overrides = site
    applied = apply_overrides(output, overrides)
    before, after = bdii_merge(static, output), bdii_merge(static, applied.text)
    noted = {n.text.split(": ", 1)[0] for n in applied.notes}
    for override in overrides:
        current = state_of(before, override.dn)
        expected = current
        if dn_key(override.dn) in applied.handled_dns and override.dn not in noted:
            if override.wanted(current[0] if current else None):
                expected = [override.value]
        assert state_of(after, override.dn) == expected
    untouched = {dn_key(dn) for dn in _POOL} - {dn_key(o.dn) for o in overrides}
    assert {k: after[k] for k in untouched} == {k: before[k] for k in untouched}


@pytest.mark.parametrize(
    "static_state, operation, printed, expected",
    [
        ("Production", "add", "Production", ["PilotSCAS"]),
        ("Production", "add", "Closed", ["Closed"]),
        (None, "replace", "Production", ["PilotSCAS"]),
        (None, "replace", "Closed", ["Closed"]),
    ],
)
def test_a_state_operation_that_does_not_fit_the_static_entry_is_made_to(
    static_state: Optional[str], operation: str, printed: str, expected: List[str]
) -> None:
    # bdii-update's add keeps the static state beside the plugin's (two values of a single-valued
    # attribute); its replace ignores an attribute the static entry lacks (no state at all).
    static = f"dn: {LONG}\nGlueCEStateFreeCPUs: 0\n" + (f"GlueCEStateStatus: {static_state}\n" if static_state else "")
    output = f"dn: {LONG}\nchangetype: modify\n{operation}: GlueCEStateStatus\nGlueCEStateStatus: {printed}\n-\n"
    applied = apply_overrides(output, [pilot(static=static_state)])
    assert state_of(bdii_merge(static, applied.text), LONG) == expected
    assert applied.notes == ()


def test_notes_only_where_old_style_cannot_add() -> None:
    static = f"dn: {LONG}\nGlueCEStateFreeCPUs: 0\n"
    output = f"dn: {LONG}\nGlueCEStateFreeCPUs: 3\n"
    applied = apply_overrides(output, [pilot(static=None)])
    assert bdii_merge(static, applied.text)[dn_key(LONG)].get("gluecestatestatus") is None
    assert len(applied.notes) == 1


# -- rewriting: cost -------------------------------------------------------------------------


def _big_output(blocks: int) -> Tuple[str, List[Override]]:
    one = (DATA / "pbs-glue1.ldif").read_text().split("\n\n")[0] + "\n\n"
    text = "".join(one.replace("cream-pbs-long", f"cream-pbs-q{i}") for i in range(blocks))
    overrides = [pilot(dn=LONG.replace("cream-pbs-long", f"cream-pbs-q{i}")) for i in range(0, blocks, 10)]
    return text, overrides


def _best_time(text: str, overrides: Sequence[Override]) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        apply_overrides(text, overrides)
        times.append(time.perf_counter() - start)
    return min(times)


def test_large_output_is_rewritten_in_linear_time() -> None:
    small_text, small_overrides = _big_output(300)
    large_text, large_overrides = _big_output(3000)
    assert large_text.count("\n") > 50_000
    applied = apply_overrides(large_text, large_overrides)
    assert applied.text.count("PilotSCAS") == 300
    ratio = _best_time(large_text, large_overrides) / _best_time(small_text, small_overrides)
    assert ratio < 20, f"10x the output took {ratio:.1f}x the time"


# -- running the plugin ------------------------------------------------------------------------


def test_run_plugin_passes_output_through() -> None:
    path = DATA / "pbs-glue1.ldif"
    run = run_plugin(sh("print-file.sh", str(path)), timeout=10)
    assert run.ok
    assert run.output == path.read_text()
    assert (run.status, run.timed_out, run.error) == (0, False, None)
    assert run.stderr_tail == "reading lrms snapshot"


def test_run_plugin_reads_large_output_and_keeps_the_end_of_stderr(tmp_path: Path) -> None:
    text, _ = _big_output(3000)
    (tmp_path / "big.ldif").write_text(text)
    script = tmp_path / "big.sh"
    script.write_text('#!/bin/sh\ni=0\nwhile [ $i -lt 2000 ]; do echo "warning $i" >&2; i=$((i+1)); done\ncat "$1"\n')
    run = run_plugin(["/bin/sh", str(script), str(tmp_path / "big.ldif")], timeout=30)
    assert run.output == text
    assert run.stderr_tail.splitlines()[-1] == "warning 1999"
    assert len(run.stderr_tail.splitlines()) == 20


def test_run_plugin_reports_a_failure() -> None:
    run = run_plugin(sh("fail.sh"), timeout=10)
    assert not run.ok
    assert run.status == 1 and run.error == "exited with status 1"
    assert run.output is not None and run.output.endswith("GlueCEStateSta")
    assert "Connection refused" in run.stderr_tail


def test_run_plugin_reports_a_signal() -> None:
    run = run_plugin(sh("killed.sh"), timeout=10)
    assert run.status == -9
    assert run.error == "killed by signal 9 (SIGKILL)"


@pytest.mark.parametrize(
    ("make", "error"),
    [
        pytest.param(lambda tmp: tmp / "missing", "not found", id="missing"),
        pytest.param(lambda tmp: _copy(PLUGINS / "print-file.sh", tmp / "plugin", 0o644),
                     "not executable (permission denied)", id="not-executable"),
        pytest.param(lambda tmp: tmp, "not executable (permission denied)", id="a-folder"),
    ],
)
def test_run_plugin_that_cannot_start(tmp_path: Path, make: Callable[[Path], Path], error: str) -> None:
    run = run_plugin([str(make(tmp_path))], timeout=5)
    assert (run.output, run.status, run.error, run.pid) == (None, None, error, None)


def _copy(source: Path, target: Path, mode: int) -> Path:
    shutil.copy(source, target)
    target.chmod(mode)
    return target


def test_run_plugin_stops_the_whole_group_on_timeout(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    start = time.monotonic()
    run = run_plugin(sh("hang.sh", str(pids)), timeout=0.5, grace=0.5)
    elapsed = time.monotonic() - start
    assert run.timed_out and run.output is None and not run.ok
    assert run.error is not None and "still running after 0.5 s" in run.error
    assert run.status == -signal.SIGTERM
    leader, *grandchildren = [int(pid) for pid in pids.read_text().split()]
    assert len(grandchildren) == 2 and leader == run.pid
    # The one that ignores SIGTERM needed SIGKILL. A killed process closes its pipes a moment
    # before it is a zombie (which counts as gone: init reaps it), hence the short wait.
    assert gone_soon(grandchildren), [pid for pid in grandchildren if pid_alive(pid)]
    assert run.pid is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(run.pid, os.WNOHANG)  # reaped: no zombie of ours
    assert 1.0 <= elapsed < 3.0


def test_run_plugin_takes_the_output_of_a_plugin_that_exited_leaving_it_open(tmp_path: Path) -> None:
    # A process the plugin started in a session of its own keeps stdout open after the plugin exits.
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    try:
        run = run_plugin(sh("leave-open.sh", str(pid_file)), timeout=20)
        elapsed = time.monotonic() - start
    finally:
        left = int(pid_file.read_text())
        os.kill(left, signal.SIGKILL)
    assert run.ok and run.left_open and run.status == 0
    assert run.output is not None and run.output.endswith("GlueCEStateStatus: Production\n")
    assert 1.0 <= elapsed < 5.0  # not the 20 s timeout
    assert "kept its output open" in _run_notes(run)[0].text


def test_run_plugin_reads_on_while_what_the_plugin_left_behind_still_writes(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    try:
        run = run_plugin(sh("leave-writing.sh", str(pid_file)), timeout=20)
    finally:
        deadline = time.monotonic() + 5
        while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert run.ok and run.left_open
    assert run.output is not None and run.output.endswith("GlueCEStateFreeCPUs: 1\nGlueCEStateStatus: Production\n")


def gone_soon(pids: Sequence[int], within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Interrupted(Exception):
    pass


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted()


def test_run_plugin_interrupted_leaves_nothing_behind(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    start = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            run_plugin(sh("hang.sh", str(pids)), timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - start < 5  # not waiting for the plugin to end by itself
    leader, *grandchildren = [int(pid) for pid in pids.read_text().split()]
    assert gone_soon(grandchildren)
    with pytest.raises(ChildProcessError):
        os.waitpid(leader, os.WNOHANG)


def test_run_plugin_decodes_invalid_utf8_losslessly() -> None:
    run = run_plugin(sh("bad-utf8.sh"), timeout=10)
    assert run.ok and run.output is not None
    assert "\udce9" in run.output
    printed = subprocess.run(sh("bad-utf8.sh"), stdout=subprocess.PIPE, check=True).stdout
    assert run.output.encode("utf-8", "surrogateescape") == printed


def wait_for(path: Path, count: int, within: float = 5.0) -> bool:
    """Waits until ``path`` holds ``count`` words: hang.sh's PIDs, once it has started all it starts."""
    deadline = time.monotonic() + within
    while not (path.exists() and len(path.read_text().split()) >= count):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_started_plugin_runs_before_its_output_is_collected(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    plugin = start_plugin(sh("hang.sh", str(pids)), timeout=0.5)
    assert wait_for(pids, 3)  # running while the caller works
    time.sleep(0.6)
    start = time.monotonic()
    run = plugin.collect(grace=0.3)
    # The timeout counts from the start: spent already, the group is stopped at once.
    assert run.timed_out and time.monotonic() - start < 2.0
    leader, *grandchildren = [int(pid) for pid in pids.read_text().split()]
    assert leader == run.pid and gone_soon(grandchildren)


def test_a_started_plugin_that_is_not_wanted_is_stopped_and_reaped(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    plugin = start_plugin(sh("hang.sh", str(pids)), timeout=30)
    assert wait_for(pids, 3)
    plugin.stop()
    leader, *grandchildren = [int(pid) for pid in pids.read_text().split()]
    assert gone_soon(grandchildren)
    with pytest.raises(ChildProcessError):
        os.waitpid(leader, os.WNOHANG)
    plugin.stop()  # once is enough; again does nothing


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param([pilot(), pilot(attribute="glueCEStateStatus")], GipError, id="two-of-one-attribute"),
        pytest.param([pilot(value="Pilot\nSCAS")], UnsafeValue, id="unprintable"),
    ],
)
def test_wrap_stops_a_started_plugin_when_an_override_is_refused(tmp_path: Path, overrides: List[Override],
                                                                 error: type) -> None:
    pids = tmp_path / "pids"
    plugin = start_plugin(sh("hang.sh", str(pids)), timeout=30)
    assert wait_for(pids, 3)
    started = time.monotonic()
    with pytest.raises(error):
        wrap(plugin.command, 30, overrides, {dn_key(LONG): state_block(LONG)}, started=plugin)
    assert time.monotonic() - started < 10
    leader, *grandchildren = [int(pid) for pid in pids.read_text().split()]
    assert gone_soon(grandchildren)
    with pytest.raises(ChildProcessError):
        os.waitpid(leader, os.WNOHANG)


@pytest.mark.parametrize(("argv", "timeout"), [([], 10.0), (["true"], 0.0)])
def test_run_plugin_refuses_nonsense(argv: List[str], timeout: float) -> None:
    with pytest.raises(UsageError):
        run_plugin(argv, timeout)


# -- the whole wrap ----------------------------------------------------------------------------

PBS_OVERRIDES = [pilot(dn=STATIC_LONG), pilot(dn=SHORT), pilot(dn=TEST), pilot(dn=EXTRA)]
PBS_FALLBACKS = {dn_key(o.dn): state_block(o.dn) for o in PBS_OVERRIDES}


def test_wrap_rewrites_and_appends_what_the_plugin_did_not_print() -> None:
    path = DATA / "pbs-glue1.ldif"
    result = wrap(sh("print-file.sh", str(path)), 10, PBS_OVERRIDES, PBS_FALLBACKS)
    expected = apply_overrides(path.read_text(), PBS_OVERRIDES).text
    assert result.ok
    assert expected.endswith("Closed\n\n")
    assert result.text == expected + state_block(EXTRA)
    assert [n.text for n in result.notes if "EXTRA" in n.text.upper() and "appended" in n.text]
    assert len(result.changes) == 2


def test_wrap_prints_only_state_blocks_when_the_plugin_fails() -> None:
    result = wrap(sh("fail.sh"), 10, PBS_OVERRIDES, PBS_FALLBACKS)
    assert not result.ok
    assert result.text == "\n".join(PBS_FALLBACKS.values())
    assert "GlueCEStateSta\n" not in result.text
    texts = [n.text for n in result.notes]
    assert any("exited with status 1" in t for t in texts)
    assert any("Connection refused" in t for t in texts)


def test_wrap_prints_only_state_blocks_when_the_plugin_hangs(tmp_path: Path) -> None:
    result = wrap(sh("hang.sh", str(tmp_path / "pids")), 0.3, PBS_OVERRIDES, PBS_FALLBACKS, grace=0.2)
    assert not result.ok
    assert result.text == "\n".join(PBS_FALLBACKS.values())
    assert any("still running" in n.text for n in result.notes)


def test_wrap_prints_only_state_blocks_for_output_bdii_cannot_read() -> None:
    result = wrap(sh("bad-utf8.sh"), 10, [pilot()], {dn_key(LONG): state_block(LONG)})
    assert not result.ok
    assert result.text == state_block(LONG)
    assert any("line 3 holds byte 0xe9" in n.text for n in result.notes)
    assert result.data() == state_block(LONG).encode()


def test_wrap_ends_an_unterminated_last_line_before_appending(tmp_path: Path) -> None:
    # Without the line end bdii-update would read the last DN short by one character;
    # once a block follows it reads it whole, so it must count as printed.
    (tmp_path / "out").write_text(f"dn: {SHORT}\nGlueCEStateFreeCPUs: 1\n\ndn: {LONG}")
    result = wrap(["cat", str(tmp_path / "out")], 10, [pilot(), pilot(dn=SHORT)], {})
    assert result.text == f"dn: {SHORT}\nGlueCEStateFreeCPUs: 1\nGlueCEStateStatus: PilotSCAS\n\ndn: {LONG}\n" \
                          "GlueCEStateStatus: PilotSCAS\n"


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n", "\r\r", "\n\n", "\r\n\r\n"])
def test_wrap_appends_after_a_blank_line_whatever_line_ends_the_plugin_used(tmp_path: Path, ending: str) -> None:
    # A lone CR ends a line for bdii-update and python-ldap alike: a LF after it makes one CRLF, no blank line.
    (tmp_path / "out").write_bytes(f"dn: {SHORT}\nGlueCEStateFreeCPUs: 1{ending}".encode())
    result = wrap(["cat", str(tmp_path / "out")], 10, [pilot()], {dn_key(LONG): state_block(LONG)})
    records = ldif.LDIFRecordList(io.BytesIO(result.data()))
    records.parse()
    assert [dn for dn, _ in records.all_records] == [SHORT, LONG]
    assert list(records.all_records[0][1]) == ["GlueCEStateFreeCPUs"]


def test_wrap_says_which_watched_entries_the_plugin_printed_as_bdii_update_reads_them(tmp_path: Path) -> None:
    folded = f"dn: {SHORT[:20]}\n {SHORT[20:]}\nGlueCEStateFreeCPUs: 1\n\n"
    inside = f"x: the value ends, then dn: {EXTRA}\n"
    (tmp_path / "out").write_text(folded + inside)
    result = wrap(["cat", str(tmp_path / "out")], 10, [], {}, watched=[dn_key(SHORT), dn_key(EXTRA), dn_key(LONG)])
    assert result.present == {dn_key(SHORT), dn_key(EXTRA)}


@pytest.mark.parametrize(
    "fallbacks",
    [
        pytest.param({dn_key(LONG): state_block(SHORT)}, id="other-dn"),
        pytest.param({dn_key(LONG): state_block(LONG) + state_block(LONG)}, id="two"),
        pytest.param({dn_key(LONG): "# x\n" + state_block(LONG)}, id="not-first"),
        pytest.param({dn_key(LONG): f"dn: {LONG}\nGlueCEStateStatus: dn: x\n"}, id="dn-in-value"),
    ],
)
def test_wrap_refuses_state_blocks_that_do_not_fit(fallbacks: Dict[str, str]) -> None:
    with pytest.raises(GipError, match="not one LDIF entry"):
        wrap(["/nonexistent/never-run"], 10, [pilot()], fallbacks)


class CountedBlocks(BlocksOnDemand):
    """BlocksOnDemand that counts its makes and records each lookup."""

    def __init__(self, blocks: Dict[str, str]) -> None:
        self.made = 0
        self.looked_up: List[str] = []

        def make() -> Dict[str, str]:
            self.made += 1
            return dict(blocks)

        super().__init__(list(blocks), make)

    def __getitem__(self, key: str) -> str:
        self.looked_up.append(key)
        return super().__getitem__(key)


def test_wrap_makes_no_state_block_for_entries_the_plugin_prints(tmp_path: Path) -> None:
    (tmp_path / "out").write_text(OLD + f"dn: {SHORT}\nGlueCEStateStatus: Production\n")
    fallbacks = CountedBlocks({dn_key(LONG): state_block(LONG), dn_key(SHORT): state_block(SHORT)})
    result = wrap(["cat", str(tmp_path / "out")], 10, [pilot(), pilot(dn=SHORT)], fallbacks)
    assert result.ok
    assert (fallbacks.made, fallbacks.looked_up) == (0, [])
    assert result.text.count("PilotSCAS") == 2 and "changetype" not in result.text


def test_wrap_makes_the_state_blocks_once_and_looks_up_those_it_appends(tmp_path: Path) -> None:
    (tmp_path / "out").write_text(OLD)
    fallbacks = CountedBlocks({dn_key(TEST): state_block(TEST), dn_key(LONG): state_block(LONG),
                               dn_key(SHORT): state_block(SHORT, "Closed")})
    result = wrap(["cat", str(tmp_path / "out")], 10, [pilot(), pilot(dn=SHORT)], fallbacks)
    assert result.ok
    # The overrides' entries first, then the other blocks in their order.
    assert (fallbacks.made, fallbacks.looked_up) == (1, [dn_key(SHORT), dn_key(TEST)])
    expected = OLD.replace("Production", "PilotSCAS") + state_block(SHORT, "Closed") + "\n" + state_block(TEST)
    assert result.text == expected


def test_wrap_refuses_a_state_block_it_appends_once_the_plugin_ran(tmp_path: Path) -> None:
    (tmp_path / "out").write_text(OLD)
    fallbacks = {dn_key(LONG): "dn: not-this-one\n", dn_key(SHORT): state_block(SHORT) + state_block(TEST)}
    with pytest.raises(GipError, match=f"state block for {re.escape(dn_key(SHORT))} is not one LDIF entry"):
        wrap(["cat", str(tmp_path / "out")], 10, [pilot(), pilot(dn=SHORT)], fallbacks)
    # LONG's block is never looked at: the plugin prints that entry.
    del fallbacks[dn_key(SHORT)]
    assert wrap(["cat", str(tmp_path / "out")], 10, [pilot()], fallbacks).ok


def test_wrap_without_a_state_block_leaves_the_entry(tmp_path: Path) -> None:
    # The caller renders no block where the policy keeps the static state (here Closed).
    (tmp_path / "out").write_text(OLD)
    result = wrap(["cat", str(tmp_path / "out")], 10, [pilot(), pilot(dn=SHORT, static="Closed")], {})
    assert result.ok
    assert result.text == OLD.replace("Production", "PilotSCAS")
    assert [n.text for n in result.notes] == [f"{SHORT}: not in the plugin's output, and its state is unchanged"]


def test_wrap_appends_a_state_block_without_override_when_the_plugin_lacks_the_entry(tmp_path: Path) -> None:
    (tmp_path / "out").write_text(OLD)
    share = state_block(ATLAS_SHARE, "closed", GLUE2_STATE)
    result = wrap(["cat", str(tmp_path / "out")], 10, [pilot()], {dn_key(ATLAS_SHARE): share})
    assert result.ok
    assert result.text == OLD.replace("Production", "PilotSCAS") + share


def test_wrap_warns_when_the_plugin_prints_an_entry_it_only_has_a_block_for(tmp_path: Path) -> None:
    (tmp_path / "out").write_text((DATA / "slurm-glue2.ldif").read_text())
    share = state_block(ATLAS_SHARE, "closed", GLUE2_STATE)
    result = wrap(["cat", str(tmp_path / "out")], 10, [], {dn_key(ATLAS_SHARE): share})
    assert not result.ok
    assert result.text == (DATA / "slurm-glue2.ldif").read_text()
    assert "no override" in result.notes[0].text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "B\n"),
        ("A", "A\n\nB\n"),
        ("A\n", "A\n\nB\n"),
        ("A\n\n", "A\n\nB\n"),
        ("A\r\n", "A\r\n\nB\n"),
        ("A\r\n\r\n", "A\r\n\r\nB\n"),
        # A LF after a lone CR is one CRLF line end: two are needed.
        ("A\r", "A\r\n\nB\n"),
        ("A\r\r", "A\r\r\n\nB\n"),
    ],
)
def test_appended_blocks_start_after_a_blank_line(text: str, expected: str) -> None:
    assert _appended(text, ["B\n\n"]) == expected


# -- the real bdii-update ----------------------------------------------------------------------


def bdii_update(tmp_path: Path, static: str, plugin_output: bytes) -> Dict[str, Dict[str, List[str]]]:
    """Entries as ``bdii-update -c CONF`` (no -d: print the merged LDIF and exit) gives them."""
    program = require_programs("bdii-update")["bdii-update"]
    root = tmp_path / "bdii"
    for folder in ("ldif", "provider", "plugin"):
        (root / folder).mkdir(parents=True)
    (root / "ldif" / "static.ldif").write_text(static)
    (root / "output").write_bytes(plugin_output)
    plugin = root / "plugin" / "wrapped"
    plugin.write_text(f"#!/bin/sh\ncat '{root / 'output'}'\n")
    plugin.chmod(0o755)
    config = root / "bdii.conf"
    config.write_text("".join(f"BDII_{key}={value}\n" for key, value in [
        ("LOG_FILE", root / "bdii.log"), ("LOG_LEVEL", "ERROR"), ("LDIF_DIR", root / "ldif"),
        ("PROVIDER_DIR", root / "provider"), ("PLUGIN_DIR", root / "plugin"), ("READ_TIMEOUT", 30)]))
    done = subprocess.run([program, "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, check=True, env={**os.environ, "LANG": "C.UTF-8"})
    return parsed_merge(done.stdout.decode())


def parsed_merge(text: str) -> Dict[str, Dict[str, List[str]]]:
    """bdii-update's printout: entries one after the other, attribute names lower-cased."""
    entries: Dict[str, Dict[str, List[str]]] = {}
    for block in re.split(r"^(?=dn: )", text, flags=re.MULTILINE):
        if block.startswith("dn: "):
            first, _, rest = block.partition("\n")
            entries[dn_key(first[4:])] = bdii_entry(rest)
    return entries


@pytest.mark.integration
def test_bdii_update_publishes_the_wrapped_state(tmp_path: Path) -> None:
    static = (DATA / "static-ce.ldif").read_text()
    result = wrap(sh("print-file.sh", str(DATA / "pbs-glue1.ldif")), 10, PBS_OVERRIDES, PBS_FALLBACKS)
    merged = bdii_update(tmp_path, static, result.data())
    assert state_of(merged, LONG) == ["PilotSCAS"]
    assert state_of(merged, SHORT) == ["PilotSCAS"]
    assert state_of(merged, TEST) == ["Closed"]
    assert state_of(merged, EXTRA) == ["PilotSCAS"]  # from the appended state block
    assert merged[dn_key(LONG)]["gluecestatefreecpus"] == ["12"]  # the plugin's values still land
    assert merged == bdii_merge(static, result.text)


@pytest.mark.integration
def test_bdii_update_reads_crlf_folded_output_as_rewritten(tmp_path: Path) -> None:
    static = (DATA / "static-ce.ldif").read_text()
    output = (DATA / "pbs-glue1.ldif").read_text().replace("Status: Production", "Status: Produ\n ction")
    output = output.replace("\n", "\r\n")
    (tmp_path / "crlf.ldif").write_bytes(output.encode())
    result = wrap(sh("print-file.sh", str(tmp_path / "crlf.ldif")), 10, PBS_OVERRIDES, PBS_FALLBACKS)
    assert "\r\nGlueCEStateStatus: PilotSCAS\r\n" in result.text
    merged = bdii_update(tmp_path, static, result.data())
    states = [state_of(merged, dn) for dn in (LONG, SHORT, TEST, EXTRA)]
    assert states == [["PilotSCAS"], ["PilotSCAS"], ["Closed"], ["PilotSCAS"]]


@pytest.mark.integration
def test_bdii_update_publishes_the_state_blocks_of_a_failed_plugin(tmp_path: Path) -> None:
    static = (DATA / "static-ce.ldif").read_text()
    result = wrap(sh("fail.sh"), 10, PBS_OVERRIDES, PBS_FALLBACKS)
    merged = bdii_update(tmp_path, static, result.data())
    # Closed came from the plugin; without it, the admin's state replaces the static Production.
    assert [state_of(merged, dn) for dn in (LONG, SHORT, TEST, EXTRA)] == [["PilotSCAS"]] * 4
    assert merged[dn_key(LONG)]["gluecestatefreecpus"] == ["0"]


@pytest.mark.integration
def test_bdii_update_publishes_the_glue2_serving_state(tmp_path: Path) -> None:
    static = (DATA / "static-ce.ldif").read_text()
    overrides = [pilot(dn=share, attribute=GLUE2_STATE, policy="production", static="production", value="closed")
                 for share in (ATLAS_SHARE, OPS_SHARE)]
    fallbacks = {dn_key(o.dn): state_block(o.dn, "closed", GLUE2_STATE) for o in overrides}
    result = wrap(sh("print-file.sh", str(DATA / "slurm-glue2.ldif")), 10, overrides, fallbacks)
    merged = bdii_update(tmp_path, static, result.data())
    assert state_of(merged, ATLAS_SHARE, GLUE2_STATE) == ["closed"]
    assert state_of(merged, OPS_SHARE, GLUE2_STATE) == ["draining"]


TRICKY_OUTPUTS = [
    pytest.param((DATA / "scheduler-glue1.ldif").read_text(), id="scheduler-no-blank-lines"),
    pytest.param(OLD + OLD.replace("Production", "Closed"), id="duplicate-dn"),
    pytest.param(f"dn: {LONG}\r\nGlueCEStateFreeCPUs: 1\r2\rGlueCEStateStatus: Pro\r\n duction\r\n", id="cr-and-crlf"),
    pytest.param(f"dn: {LONG}\nGlueCEInfoContactString: x dn: {SHORT}\nGlueCEStateStatus: Draining\n",
                 id="dn-in-value"),
    pytest.param(MODIFY + "replace: GlueCEStateStatus\nGlueCEStateStatus: Closed\n-\n", id="modify"),
    pytest.param(f"dn: {TEST}\nchangetype: modify\nadd: GlueCEStateStatus\nGlueCEStateStatus: Queueing\n", id="add"),
    pytest.param(f"dn: {LONG}\nGlueCEStateStatus:: {base64.b64encode(b'Draining').decode()}\n", id="base64"),
]


@pytest.mark.integration
@pytest.mark.parametrize("output", TRICKY_OUTPUTS)
def test_the_model_of_bdii_update_matches_the_real_one(tmp_path: Path, output: str) -> None:
    """The model the property tests use reads plugin output as bdii-update does."""
    static = (DATA / "static-ce.ldif").read_text().replace(
        "GlueCEName: test\nGlueCEStateFreeCPUs: 0\nGlueCEStateStatus: Production\n", "GlueCEName: test\n")
    assert bdii_update(tmp_path, static, output.encode()) == bdii_merge(static, output)


def test_an_entry_whose_dn_line_ends_the_output_without_a_line_end_is_left_alone() -> None:
    # bdii-update reads that DN without its last character: a line added after it would change the DN it reads.
    text = f"dn: {LONG},"
    applied = apply_overrides(text, [pilot(static="Production")])
    assert applied.text == text and list(bdii_blocks(applied.text)) == [dn_key(LONG)]
    assert any("without a line end" in note.text for note in applied.notes)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=60).map("".join))
def test_lines_without_folding_are_read_as_the_unfolding_reads_them(text: str) -> None:
    physical = _PHYSICAL_LINE.findall(text)
    if "\n " not in text and "\r " not in text:
        assert _unfolded_lines(physical) == _logical_lines(physical)


@settings(max_examples=500, deadline=None)
@given(st.lists(_TOKENS, max_size=30).map("".join), st.sampled_from([LONG, SHORT, LONG.upper(), LONG + " "]))
def test_a_block_plainly_one_entry_is_one_entry(text: str, dn: str) -> None:
    key = dn_key(LONG)
    for block in (text, f"dn: {dn}\n" + text, f"dn: {dn}\nchangetype: modify\n" + text.replace("dn:", "")):
        if _plainly_one_entry(block, key):
            blocks = _blocks(_logical_lines(_PHYSICAL_LINE.findall(block)))
            assert [(b.key, b.line, b.column) for b in blocks] == [(key, 0, 0)]
