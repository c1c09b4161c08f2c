"""The site's configuration as gip uses it, taken from the keys of site-info.def.

Keys (YAIM's names): ``SITE_NAME``, ``CE_HOST``, ``VOS``, ``QUEUES``,
``<QUEUE>_GROUP_ENABLE``, ``CE_BATCH_SYS``, ``CE_RUNTIMEENV``, ``CE_STATE``,
``<QUEUE>_CE_STATE``, ``CE_STATE_POLICY`` and the ``CE_*`` SubCluster
attributes that the templates read from ``values``. ``<QUEUE>`` is the queue
name upper-cased with every character other than a letter or digit made ``_``,
as YAIM does for ``<QUEUE>_GROUP_ENABLE``.

site_config_from() checks what gip would otherwise publish or trust wrongly:
states (printed as LDIF values, so gip.ldifvalue's rule), VO names
(gip.tags' rule), queue names (part of a GlueCEUniqueID) and the group
lists; every error names site-info.def and the line that set the key.

A setting that cannot be used costs that setting only, and is a Problem of
the SiteConfig: a ``CE_STATE`` or ``<QUEUE>_CE_STATE`` that cannot be printed,
a ``CE_STATE_POLICY`` that is neither policy and a ``VOS`` that names what
cannot be a VO are ignored, as if site-info.def did not set them; a queue name
in ``QUEUES`` and a VO or FQAN in a ``<QUEUE>_GROUP_ENABLE`` that gip cannot
publish are left out of their list. Only a file that cannot be read or parsed
is unusable as a whole (ConfigError, ConfigInputError).
"""

from __future__ import annotations

import os
import re
from types import MappingProxyType

from gip.ldifvalue import value_problem
from gip.report import Problem
from gip.siteinfo import SiteInfo, read_site_info
from gip.tags import vo_name_problem

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, NamedTuple, Optional, Set, Tuple, Union
else:
    from gip._records import NamedTuple

POLICY_PRODUCTION_ONLY = "production-only"
POLICY_ALWAYS = "always"
STATE_POLICIES = (POLICY_PRODUCTION_ONLY, POLICY_ALWAYS)
PRODUCTION = "Production"

_NOT_KEY_CHAR = re.compile(r"[^A-Za-z0-9]")
# A queue name ends a GlueCEUniqueID (host:port/jobmanager-lrms-queue) and a DN value.
_QUEUE_NAME = re.compile(r"[A-Za-z0-9._-]+")
# <QUEUE>_CE_STATE: an empty queue name gives _CE_STATE.
_STATE_KEY = re.compile(r"CE_STATE|[A-Z0-9_]*_CE_STATE")
# Queue names joined by blanks, see _usable_queue_names.
_QUEUE_NAME_LIST = re.compile(r"[A-Za-z0-9._ -]*")
_DOT_AND_DASH_TO_UNDERSCORE = str.maketrans(".-", "__")


def queue_key(queue: str) -> str:
    """The key prefix YAIM derives from a queue name: ``long-q.x`` gives ``LONG_Q_X``."""
    if queue.isascii() and queue.isalnum():  # nothing to replace: asked of thousands of queues
        return queue.upper()
    return _NOT_KEY_CHAR.sub("_", queue).upper()


class QueueConfig(NamedTuple):
    """One batch queue, published as one GlueCE."""

    name: str
    groups: Tuple[str, ...] = ()

    def access_rules(self) -> Tuple[str, ...]:
        """GlueCEAccessControlBaseRule values: ``VOMS:<fqan>`` for an FQAN, ``VO:<vo>`` for a VO."""
        return tuple(f"VOMS:{g}" if g.startswith("/") else f"VO:{g}" for g in self.groups)


class SiteConfig(NamedTuple):
    """What gip needs from site-info.def; ``values`` holds every key, for the templates."""

    path: str
    values: Mapping[str, str] = MappingProxyType({})
    site_name: Optional[str] = None
    ce_host: Optional[str] = None
    vos: Optional[Tuple[str, ...]] = None
    queues: Tuple[QueueConfig, ...] = ()
    batch_system: Optional[str] = None
    runtime_env: Tuple[str, ...] = ()
    ce_state: Optional[str] = None
    state_policy: str = POLICY_PRODUCTION_ONLY
    # The settings ignored or left out (see the module's docstring): a configuration error each.
    problems: Tuple[Problem, ...] = ()

    def queue(self, name: str) -> Optional[QueueConfig]:
        for queue in self.queues:
            if queue.name == name:
                return queue
        return None

    def state_for(self, queue_name: Optional[str]) -> Optional[str]:
        """The state the admin set for this queue: its own ``<QUEUE>_CE_STATE``, else ``CE_STATE``."""
        if queue_name is not None:
            own = self.values.get(f"{queue_key(queue_name)}_CE_STATE")
            if own is not None:
                return own
        return self.ce_state

    def new_state(self, queue_name: Optional[str], current: Optional[str]) -> Optional[str]:
        """The state to publish instead of ``current``, or None to leave it.

        With ``production-only`` only a ``Production`` state (any case) or an absent
        one is replaced, so a Closed, Draining or Queueing queue keeps its state.
        """
        wanted = self.state_for(queue_name)
        if wanted is None or wanted == current:
            return None
        if self.state_policy == POLICY_ALWAYS:
            return wanted
        if current is None or current.lower() == PRODUCTION.lower():
            return wanted
        return None


def empty_site_config(path: str) -> SiteConfig:
    """The configuration used when site-info.def is unusable: tags only, no state override."""
    return SiteConfig(path=path, values={})


def load_site_config(path: Union[str, os.PathLike[str]]) -> SiteConfig:
    """Reads site-info.def into a SiteConfig; raises ConfigError / ConfigInputError (exit 3)."""
    return site_config_from(read_site_info(path))


def site_config_from(info: SiteInfo) -> SiteConfig:
    """The SiteConfig of parsed site-info.def keys, with what it ignored or left out as its problems."""
    values = dict(info.values)
    problems = _unusable_states(info, values)
    return SiteConfig(
        path=info.path,
        values=values,
        site_name=values.get("SITE_NAME"),
        ce_host=values.get("CE_HOST"),
        vos=_vos(info, problems),
        queues=_queues(info, problems),
        batch_system=values.get("CE_BATCH_SYS"),
        runtime_env=tuple(values.get("CE_RUNTIMEENV", "").split()),
        ce_state=values.get("CE_STATE"),
        state_policy=values.get("CE_STATE_POLICY", POLICY_PRODUCTION_ONLY),
        problems=tuple(problems),
    )


def _unusable_states(info: SiteInfo, values: Dict[str, str]) -> List[Problem]:
    """Takes out of ``values`` every state setting that cannot be used, and says why, each at its line.

    CE_STATE and every <QUEUE>_CE_STATE (queues only the static LDIF names included) must be a
    value gip can print; CE_STATE_POLICY one of the policies. Without the setting, the rules
    still hold: a queue without a usable state of its own takes CE_STATE's, and the policy is
    production-only, the one that changes fewer states.
    """
    problems = []
    for key, value in info.values.items():
        # endswith() first: it is cheap, and every state key passes it.
        if not key.endswith("CE_STATE") or _STATE_KEY.fullmatch(key) is None:
            continue
        problem = value_problem(value)
        if problem is not None:
            reason = f"{key} cannot be published as GlueCEStateStatus: {problem}; ignored, as if not set"
            problems.append(Problem(info.path, info.where(key), reason, value))
            del values[key]
    policy = values.get("CE_STATE_POLICY", POLICY_PRODUCTION_ONLY)
    if policy not in STATE_POLICIES:
        allowed = " or ".join(STATE_POLICIES)
        reason = f"CE_STATE_POLICY is not {allowed}; ignored, so {POLICY_PRODUCTION_ONLY} applies"
        problems.append(Problem(info.path, info.where("CE_STATE_POLICY"), reason, policy))
        del values["CE_STATE_POLICY"]
    return problems


def _vos(info: SiteInfo, problems: List[Problem]) -> Optional[Tuple[str, ...]]:
    """The VOs of VOS; None when VOS is absent, or names what cannot be a VO: then every VO folder is read.

    A filter other than the one the admin meant would cost some VO its tags: without one, none is lost.
    """
    text = info.values.get("VOS")
    if text is None:
        return None
    vos = tuple(text.split())
    usable = True
    for vo in vos:
        problem = vo_name_problem(vo)
        if problem is not None:
            reason = f"VOS: {problem}; VOS is ignored, so every VO folder is read"
            problems.append(Problem(info.path, info.where("VOS"), reason, vo))
            usable = False
    return vos if usable else None


def _queues(info: SiteInfo, problems: List[Problem]) -> Tuple[QueueConfig, ...]:
    names = _usable_queue_names(info, info.values.get("QUEUES", "").split(), problems)
    # <QUEUE>_GROUP_ENABLE: VO names and VOMS FQANs (/atlas/ROLE=production).
    get = info.values.get
    keys = _queue_keys(names)
    groups = [tuple(get(f"{key}_GROUP_ENABLE", "").split()) for key in keys]
    return tuple(map(QueueConfig, names, _usable_groups(info, keys, groups, problems)))


def _usable_queue_names(info: SiteInfo, names: List[str], problems: List[Problem]) -> List[str]:
    """The names in QUEUES that gip can publish, in order; each other one is a Problem, left out."""
    # A site may list thousands of queues: they are checked all at once, and one
    # by one only to find the problems. split() leaves no blank in a name,
    # so the names joined by blanks are all made of queue-name characters
    # exactly when each of them is.
    if _QUEUE_NAME_LIST.fullmatch(" ".join(names)) is not None and len(set(names)) == len(names):
        return names
    line = info.where("QUEUES")
    kept: List[str] = []
    seen: Set[str] = set()
    for name in names:
        if _QUEUE_NAME.fullmatch(name) is None:
            reason = "QUEUES: a queue name is ASCII letters, digits and ._-; that queue is left out"
            problems.append(Problem(info.path, line, reason, name))
        elif name in seen:
            reason = "QUEUES: a queue listed twice; the second listing is left out"
            problems.append(Problem(info.path, line, reason, name))
        else:
            seen.add(name)
            kept.append(name)
    return kept


def _queue_keys(names: List[str]) -> List[str]:
    """queue_key() of every name, in one pass over all of them.

    The names are checked already: '.' and '-' are their only characters that
    queue_key() replaces by '_', and none holds the blank that joins them here.
    """
    joined = " ".join(names).translate(_DOT_AND_DASH_TO_UNDERSCORE).upper()
    return joined.split(" ") if names else []


def _usable_groups(info: SiteInfo, keys: List[str], groups: List[Tuple[str, ...]],
                   problems: List[Problem]) -> List[Tuple[str, ...]]:
    """Each queue's groups without those _group_problem() refuses and without a second listing of one
    (in any case: the DNs of their GlueVOViews and shares compare without case); each left out is a
    Problem, queue by queue."""
    # Queues share a few VOs and FQANs between them: each distinct one is checked once.
    refused = {group for group in set().union(*groups) if _group_problem(group) is not None}
    if not refused and all(len({group.lower() for group in each}) == len(each) for each in groups):
        return groups
    usable = []
    for key, queue_groups in zip(keys, groups):
        option = f"{key}_GROUP_ENABLE"
        kept: List[str] = []
        seen: Set[str] = set()
        for group in queue_groups:
            if group in refused:
                reason = f"{option}: {_group_problem(group)}; left out of the queue's access rules"
                problems.append(Problem(info.path, info.where(option), reason, group))
            elif group.lower() in seen:
                reason = f"{option}: listed twice; the second listing is left out"
                problems.append(Problem(info.path, info.where(option), reason, group))
            else:
                seen.add(group.lower())
                kept.append(group)
        usable.append(tuple(kept))
    return usable


def _group_problem(group: str) -> Optional[str]:
    """Why ``group`` is neither a VO name nor an FQAN of a valid VO, or None."""
    if not group.startswith("/"):
        return vo_name_problem(group)
    unsafe = value_problem(group)
    if unsafe is not None:
        return f"not a usable FQAN: {unsafe}"
    problem = vo_name_problem(group[1:].split("/", 1)[0])
    return None if problem is None else f"an FQAN starts with /<vo>, and {problem}"
