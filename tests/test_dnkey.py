from __future__ import annotations

from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip.dnkey import dn_key, dn_keys


@pytest.mark.parametrize(
    "a, b",
    [
        ("GlueCEUniqueID=ce:8443/cream-pbs-long,mds-vo-name=resource,o=grid",
         "glueceuniqueid=CE:8443/cream-pbs-long, Mds-Vo-Name = resource ,o=grid"),
        ("GLUE2ShareID=a\\2cb,o=glue", "glue2shareid=a\\,b,o=glue"),
    ],
)
def test_same_entry_for_the_bdii(a, b):
    assert dn_key(a) == dn_key(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("GlueCEUniqueID=a,o=grid", "GlueCEUniqueID=b,o=grid"),
        ("o=grid ", "o=grid"),
        (" o=grid", "o=grid"),
    ],
)
def test_different_entries_for_the_bdii(a, b):
    assert dn_key(a) != dn_key(b)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(st.characters() | st.sampled_from([" ", "\n", "\\2c", "\\3d", "A", "=", ",", "İ", "Σ"]),
                         max_size=12).map("".join)))
def test_dn_keys_are_taken_at_once_as_one_by_one(dns: List[str]) -> None:
    assert dn_keys(dns) == [dn_key(dn) for dn in dns]
