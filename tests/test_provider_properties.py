"""No tag-file content can break gip's output.

Whatever bytes a tag file holds (newlines, 'dn:', NUL, non-ASCII, commas,
huge tokens), the plugin and merged outputs parse as LDIF, hold only the DNs
gip meant to print, hold only printable ASCII, and split at 'dn:' exactly
where their entries start, as bdii-update splits them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gip.dnkey import dn_key
from gip.model import TagInput, build_site
from gip.publish import MODE_MERGED_STATIC, MODE_PLUGIN, Publisher, builtin_template_dir
from gip.siteconfig import QueueConfig, SiteConfig
from gip.staticldif import StaticEntry, parse_static_ldif
from gip.tagfile import parse_tags
from gip.tags import TagRule
from gip.tagtree import TagSource
from tests.support.ldifmap import ldif_map, modify_map

RTE = "gluehostapplicationsoftwareruntimeenvironment"
SC1 = "GlueSubClusterUniqueID=sc1,GlueClusterUniqueID=ce,mds-vo-name=resource,o=grid"
SC2 = "GlueSubClusterUniqueID=sc2,GlueClusterUniqueID=ce,mds-vo-name=resource,o=grid"
CE = "GlueCEUniqueID=ce:8443/cream-pbs-q,mds-vo-name=resource,o=grid"
STATIC = f"""\
dn: {SC1}
objectClass: GlueSubCluster
GlueSubClusterUniqueID: sc1
GlueHostApplicationSoftwareRunTimeEnvironment: GLITE-3_2_0
GlueHostApplicationSoftwareRunTimeEnvironment: VO-atlas-static

dn: {SC2}
objectClass: GlueSubCluster
GlueSubClusterUniqueID: sc2

dn: {CE}
objectClass: GlueCE
GlueCEUniqueID: ce:8443/cream-pbs-q
GlueCEStateStatus: Production
"""
INTENDED = {dn_key(SC1), dn_key(SC2), dn_key(CE)}
STATIC_VALUES = {"GLITE-3_2_0", "VO-atlas-static"}
CONFIG = SiteConfig(path="site-info.def", values={}, vos=("atlas",), queues=(QueueConfig("q", ("atlas",)),),
                    ce_state="PilotSCAS")

_tokens = st.one_of(
    st.sampled_from(["VO-atlas-a", "VO-atlas-A", "VO-atlas-static", "vo-atlas-b", "VO-cms-x", "dn:", "dn: o=evil",
                     "GlueHostApplicationSoftwareRunTimeEnvironment:", "#", "\x00", "caf\u00e9", "VO-atlas-\u00e9",
                     ",", ":", "<", "VO-atlas-" + "x" * 300, "VO-atlas-dn:x", " VO-atlas-lead"]),
    st.from_regex(r"VO-atlas-[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True),
    st.text(max_size=30),
)
_separators = st.sampled_from([" ", "\n", ",", "\r\n", "\t", "\r", "\n ", "\x0b", ""])


@st.composite
def tag_file_contents(draw: st.DrawFn) -> bytes:
    """Tag-file bytes: mostly token soup in many encodings, sometimes raw bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=600))
    parts: List[str] = []
    for token in draw(st.lists(_tokens, max_size=25)):
        parts += [token, draw(_separators)]
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + "".join(parts).encode(encoding, "replace")


@pytest.fixture(scope="module")
def publisher() -> Iterator[Publisher]:
    yield Publisher([builtin_template_dir()])


def render(publisher: Publisher, mode: str, global_data: bytes, own_data: bytes) -> str:
    entries = parse_static_ldif(STATIC.encode(), "static.ldif").entries
    inputs = [
        TagInput(TagSource("atlas", None, Path("info/atlas/atlas.ldif")), parse_tags(global_data, "atlas", "g")),
        TagInput(TagSource("atlas", "sc2", Path("info/sc2/atlas/atlas.ldif")), parse_tags(own_data, "atlas", "o")),
    ]
    site = build_site(CONFIG, entries, inputs)
    return publisher.render_site(site, mode, "1")


def assert_safe(text: str) -> None:
    """ASCII printable lines only, and bdii-update's 'dn:' split finds exactly the records' starts."""
    assert text.isascii()
    assert all(line.isprintable() for line in text.split("\n"))
    records = [record for record in text.split("\n\n") if record.strip()]
    assert text.count("dn:") == len(records)
    assert all(record.startswith("dn: ") for record in records)


def assert_valid_tags(values: List[str]) -> None:
    rule = TagRule("atlas")
    assert all(rule.is_valid(value) or value in STATIC_VALUES for value in values)
    assert len({value.lower() for value in values}) == len(values)


_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(tag_file_contents(), tag_file_contents())
def test_plugin_output_survives_any_tag_file(publisher, global_data, own_data):
    text = render(publisher, MODE_PLUGIN, global_data, own_data)
    assert_safe(text)
    blocks = modify_map(text)
    assert set(blocks) <= INTENDED and dn_key(CE) in blocks
    for dn, operations in blocks.items():
        for operation, attribute, values in operations:
            if attribute == RTE:
                assert operation == "add" and values
                assert_valid_tags(values)
                held = STATIC_VALUES if dn == dn_key(SC1) else set()
                assert not {v.lower() for v in values} & {v.lower() for v in held}


@_settings
@given(tag_file_contents(), tag_file_contents())
def test_merged_output_survives_any_tag_file(publisher, global_data, own_data):
    text = render(publisher, MODE_MERGED_STATIC, global_data, own_data)
    assert_safe(text)
    entries = ldif_map(text)
    assert set(entries) == INTENDED
    for entry in entries.values():
        assert_valid_tags(entry.get(RTE, []))
    assert entries[dn_key(SC1)][RTE][:2] == ["GLITE-3_2_0", "VO-atlas-static"]


# A static entry that its file holds in plain lines is printed line for line; any other attribute by
# attribute. Both must say the same to the BDII.
_static_names = st.sampled_from([
    "objectClass", "GlueCEStateStatus", "gluecestatestatus", "GlueHostApplicationSoftwareRunTimeEnvironment",
    "GlueCEName", "x-1", "A", "1a", "a b", "a;lang-x",
])
_static_values = st.sampled_from([
    "GlueCE", "GlueSubCluster", "Production", "Closed", "q", "GLITE-3_2_0", "VO-atlas-a", "a:b", "dn: o=x",
    ":x", "<x", " lead", "trail ", "", "caf\u00e9", "tab\there", "\x01",
])


@st.composite
def static_files(draw: st.DrawFn) -> bytes:
    records = []
    for number, dn in enumerate([SC1, CE, SC2]):
        lines = [f"dn: {dn}", "objectClass: " + ("GlueCE" if dn == CE else "GlueSubCluster")]
        for name, value in draw(st.lists(st.tuples(_static_names, _static_values), max_size=8)):
            lines.append(name + draw(st.sampled_from([": ", ":", ":  "])) + value)
        if dn != CE:
            lines.append(f"GlueSubClusterUniqueID: sc{number // 2 + 1}")
        records.append("\n".join(lines) + "\n")
    return "\n".join(records).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(static_files(), st.sampled_from([None, "Production"]), st.booleans())
def test_a_plain_entry_printed_line_for_line_says_what_it_says_printed_attribute_by_attribute(
    data, policy, tags
):
    config = CONFIG if policy else SiteConfig(path="site-info.def", values={}, vos=("atlas",),
                                              queues=(QueueConfig("q", ("atlas",)),), ce_state="PilotSCAS",
                                              state_policy="always")
    entries = parse_static_ldif(data, "static.ldif").entries
    source = TagSource("atlas", None, Path("info/atlas/atlas.ldif"))
    inputs = [TagInput(source, parse_tags(b"VO-atlas-t1 VO-atlas-t2" if tags else b"", "atlas", "g"))]
    outputs = []
    for plain in (StaticEntry.prints_as_written, lambda entry: False):
        site = build_site(config, entries, inputs)
        publisher = Publisher([builtin_template_dir()])
        original, StaticEntry.prints_as_written = StaticEntry.prints_as_written, plain
        try:
            text = publisher.render_site(site, MODE_MERGED_STATIC, "1")
        finally:
            StaticEntry.prints_as_written = original
        assert_safe(text)
        outputs.append((ldif_map(text), sorted(map(str, publisher.problems))))
    assert outputs[0] == outputs[1]
