from __future__ import annotations

import pytest

from gip.dnkey import dn_key


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
