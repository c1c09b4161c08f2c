"""The site's configuration as gip uses it, taken from the keys of site-info.def.

Keys (YAIM's names): ``SITE_NAME``, ``CE_HOST``, ``VOS``, ``QUEUES``,
``<QUEUE>_GROUP_ENABLE``, ``CE_BATCH_SYS``, ``CE_RUNTIMEENV``, ``CE_STATE``,
``<QUEUE>_CE_STATE``, ``CE_STATE_POLICY`` and the ``CE_*`` SubCluster
attributes that the templates read from ``values``. ``<QUEUE>`` is the queue
name upper-cased with every character other than a letter or digit made ``_``,
as YAIM does for ``<QUEUE>_GROUP_ENABLE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

POLICY_PRODUCTION_ONLY = "production-only"
POLICY_ALWAYS = "always"
STATE_POLICIES = (POLICY_PRODUCTION_ONLY, POLICY_ALWAYS)
PRODUCTION = "Production"

_NOT_KEY_CHAR = re.compile(r"[^A-Za-z0-9]")


def queue_key(queue: str) -> str:
    """The key prefix YAIM derives from a queue name: ``long-q.x`` gives ``LONG_Q_X``."""
    return _NOT_KEY_CHAR.sub("_", queue).upper()


@dataclass(frozen=True)
class QueueConfig:
    """One batch queue, published as one GlueCE."""

    name: str
    groups: Tuple[str, ...] = ()

    def access_rules(self) -> Tuple[str, ...]:
        """GlueCEAccessControlBaseRule values: ``VOMS:<fqan>`` for an FQAN, ``VO:<vo>`` for a VO."""
        return tuple(f"VOMS:{g}" if g.startswith("/") else f"VO:{g}" for g in self.groups)


@dataclass(frozen=True)
class SiteConfig:
    """What gip needs from site-info.def; ``values`` holds every key, for the templates."""

    path: str
    values: Mapping[str, str] = field(default_factory=dict)
    site_name: Optional[str] = None
    ce_host: Optional[str] = None
    vos: Optional[Tuple[str, ...]] = None
    queues: Tuple[QueueConfig, ...] = ()
    batch_system: Optional[str] = None
    runtime_env: Tuple[str, ...] = ()
    ce_state: Optional[str] = None
    state_policy: str = POLICY_PRODUCTION_ONLY

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

