"""Fixtures shared by gip's tests: a GLUE slapd and real BDIIs, in the test's own folder.

Tests that use them are marked ``integration`` here, so ``-m "not integration"``
runs the quick suite. The support modules import python-ldap, so they are
loaded only by the tests that use them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, List, Mapping, Optional

import pytest

from gip import log

if TYPE_CHECKING:
    from tests.support.bdii import BdiiInstance
    from tests.support.slapd import GlueSlapd

INTEGRATION_FIXTURES = frozenset({"glue_slapd", "bdii"})


@pytest.fixture(autouse=True, scope="session")
def gip_cache_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """gip-provider, in-process or not, keeps its renders in the session's own folder (gip.rendercache)."""
    from gip.rendercache import CACHE_VARIABLE

    saved = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = str(tmp_path_factory.mktemp("gip-cache"))
    yield
    if saved is None:
        del os.environ[CACHE_VARIABLE]
    else:
        os.environ[CACHE_VARIABLE] = saved


@pytest.fixture(autouse=True)
def gip_log_restored() -> Iterator[None]:
    """A program run in-process configures gip's messages; give the next test the settings it found."""
    saved = log.settings()
    yield
    log.restore(saved)


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def glue_slapd(tmp_path: Path) -> Iterator[GlueSlapd]:
    """A started slapd with the BDII's schemas, suffixes and base entries (o=grid, o=glue, ...)."""
    from tests.support.slapd import GlueSlapd, require_glue_slapd

    require_glue_slapd()
    with GlueSlapd(tmp_path) as server:
        server.load_base()
        yield server


@pytest.fixture
def bdii(tmp_path: Path) -> Iterator[Callable[..., BdiiInstance]]:
    """A factory of BdiiInstance (not started): ``bdii(env=None, **options)``; all are stopped at teardown."""
    from tests.support.bdii import BdiiInstance, require_bdii

    require_bdii()
    made: List[BdiiInstance] = []

    def make(env: Optional[Mapping[str, str]] = None, **options: object) -> BdiiInstance:
        instance = BdiiInstance(tmp_path, env, **options)  # type: ignore[arg-type]
        made.append(instance)
        return instance

    yield make
    failures = []
    for instance in made:
        try:
            instance.stop()
        except Exception as error:  # stop the others before reporting
            failures.append(error)
    if failures:
        raise failures[0]
