"""No site-info.def setting can break gip's output.

gip uses what it can of site-info.def and ignores or leaves out the rest
(gip.siteconfig). Whatever values the settings it reads hold (line breaks,
'dn:', commas, blanks, control and non-ASCII characters), the output from
templates and the plugin output either stop at a configuration error that
names site-info.def, or parse as LDIF with only printable ASCII lines, split
at 'dn:' exactly where their entries start, and hold only entries under the
trees gip publishes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Dict, Tuple

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gip.cli import provider
from gip.errors import ConfigError, ConfigInputError
from gip.siteconfig import STATE_POLICIES
from tests.support.ldifmap import ldif_map, modify_map

ETC = Path(__file__).resolve().parent.parent / "etc"
KEYS = ["CE_STATE", "LONG_CE_STATE", "SHORT_CE_STATE", "CE_STATE_POLICY", "VOS", "QUEUES", "LONG_GROUP_ENABLE",
        "SHORT_GROUP_ENABLE", "CE_RUNTIMEENV", "CE_OS", "CE_OTHERDESCR", "CE_CAPABILITY", "SITE_NAME", "CE_HOST"]
# What gip must never print as it is, beside what it may: single quotes are left out, as they end the value.
_pieces = st.sampled_from(["atlas", "cms", "long", "short", "Closed", "PilotSCAS", "/atlas/ROLE=x", "dn:", "dn: o=x",
                           ",", "=", "+", ":", "::", "<", "#", " ", "\n", "\t", "\\", "\x01", "\x7f", "\u00e9", "$",
                           "a-b.c_d", "o=grid", "GlueCEUniqueID=x", *STATE_POLICIES])
_values = st.lists(_pieces, max_size=6).map("".join)


def run(command: Tuple[str, ...], site_info: Path) -> Tuple[int, str]:
    """The exit code and output of gip-provider on the example site with this site-info.def."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    argv = [*command, "--site-info", str(site_info), "--info-dir", str(ETC / "info"),
            "--static-ldif", str(ETC / "static" / "static-file-CE.ldif"),
            "--static-ldif", str(ETC / "static" / "static-file-Cluster.ldif")]
    try:
        code = provider._main(argv, {}, out)
    except (ConfigError, ConfigInputError) as error:
        assert str(site_info) in str(error)
        return 3, ""
    out.flush()
    return code, out.buffer.getvalue().decode("ascii")  # type: ignore[attr-defined]


def assert_safe(text: str) -> None:
    """ASCII printable lines only, and bdii-update's 'dn:' split finds exactly the records' starts."""
    assert all(line.isprintable() for line in text.split("\n"))
    records = [record for record in text.split("\n\n") if record.strip()]
    assert text.count("dn:") == len(records)
    assert all(record.startswith("dn: ") for record in records)


def write_site_info(folder: Path, changes: Dict[str, str]) -> Path:
    path = folder / "site-info.def"
    settings_ = "".join(f"{key}='{value.replace(chr(39), '')}'\n" for key, value in changes.items())
    path.write_text((ETC / "site-info.def").read_text() + settings_, encoding="utf-8")
    return path


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), _values, max_size=5))
def test_no_setting_breaks_the_output_from_templates(tmp_path_factory, changes):
    site_info = write_site_info(tmp_path_factory.mktemp("site"), changes)
    code, text = run(("merged", "--base", "templates", "--glue", "both"), site_info)
    assert code in (0, 1, 3)
    event(f"exit {code}")
    if code == 3:
        return
    assert_safe(text)
    entries = ldif_map(text)
    assert all(dn.endswith(",mds-vo-name=resource,o=grid") or dn.endswith(",o=glue") for dn in entries)
    states = [value for entry in entries.values() for value in entry.get("gluecestatestatus", [])]
    assert states and all(state and state == state.strip() for state in states)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), _values, max_size=5))
def test_no_setting_breaks_the_plugin_output(tmp_path_factory, changes):
    site_info = write_site_info(tmp_path_factory.mktemp("site"), changes)
    code, text = run(("plugin",), site_info)
    assert code in (0, 1)  # a setting can cost itself, never the output
    assert_safe(text)
    static = ldif_map("\n".join((ETC / "static" / name).read_text()
                                for name in ("static-file-CE.ldif", "static-file-Cluster.ldif")))
    # Empty where nothing changes (VOS='' reads no tag folder, and no state may be set).
    assert set(modify_map(text)) <= set(static)
