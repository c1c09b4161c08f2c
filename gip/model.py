"""The site as gip publishes it: SubClusters with their tags, CEs with their states.

This module decides and does no I/O. It takes what the readers made (the
SiteConfig, the static LDIF entries, the tag files) and builds a Site:

* SubClusters are the static entries of class GlueSubCluster (base
  ``static``) or the one gip renders from site-info.def (base ``templates``,
  ID ``CE_HOST``). Each publishes its own static values as they are (or
  ``CE_RUNTIMEENV`` when rendered), then the global tags of every VO, then
  its own tags (``info/<SubClusterUniqueID>/<vo>/``); VOs in name order, each
  VO's tags sorted, so unchanged input gives byte-identical output. Tags are
  unique ignoring case and the first spelling wins, as gip.tags.TagSet
  decides (the LDAP server rejects an entry holding two spellings).
* CEs are the static entries of class GlueCE (queue: GlueCEName, else the end
  of GlueCEUniqueID after its last '-') or one per queue of ``QUEUES``. The
  state each publishes is the SiteConfig's state policy applied to its
  current state (``Production`` for a CE rendered from templates).

Everything left out is a Problem with the file and line it came from.
GLUE 2 objects are built beside these from the same inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from gip.dnkey import dn_key
from gip.errors import ConfigError
from gip.ldifvalue import value_problem
from gip.report import Problem
from gip.siteconfig import PRODUCTION, SiteConfig
from gip.tagfile import TagFile
from gip.tags import RUNTIME_ENVIRONMENT, TagSet
from gip.tagtree import TagSource

if TYPE_CHECKING:
    from gip.staticldif import StaticEntry

BASE_STATIC = "static"
BASE_TEMPLATES = "templates"
BASES = (BASE_STATIC, BASE_TEMPLATES)

SUBCLUSTER_CLASS = "GlueSubCluster"
CE_CLASS = "GlueCE"
SUBCLUSTER_ID = "GlueSubClusterUniqueID"
CE_ID = "GlueCEUniqueID"
CE_NAME = "GlueCEName"
STATE = "GlueCEStateStatus"
CREAM_PORT = 8443
# The attributes gip sets in a static entry, by lower-cased name, as spelled when it adds them.
_SPELLING = {RUNTIME_ENVIRONMENT.lower(): RUNTIME_ENVIRONMENT, STATE.lower(): STATE}


@dataclass(frozen=True)
class TagInput:
    """One tag file as read, with the folder it was found in."""

    source: TagSource
    file: TagFile


@dataclass
class SubCluster:
    """One SubCluster and the tags it publishes.

    ``held`` are the values it already has (the static entry's own, or
    CE_RUNTIMEENV); ``tags`` starts with them and goes on with the tags gip
    adds. ``global_counts``/``own_counts`` say how many tags each VO added.
    """

    unique_id: str
    entry: Optional[StaticEntry]
    held: List[str]
    tags: List[str] = field(default_factory=list)
    global_counts: Dict[str, int] = field(default_factory=dict)
    own_counts: Dict[str, int] = field(default_factory=dict)

    @property
    def added(self) -> List[str]:
        """The tags the SubCluster does not hold yet: what a plugin adds."""
        return self.tags[len(self.held):]


@dataclass(frozen=True)
class VOView:
    """A GlueVOView: one VO or FQAN's view of a GlueCE."""

    local_id: str
    rule: str


def voview_id(rule: str) -> str:
    """The GlueVOViewLocalID YAIM derived from an access rule.

    ``VO:atlas`` gives ``atlas``, ``VOMS:/atlas/Role=pilot`` gives ``/atlas/Role_pilot``.
    """
    _, _, name = rule.partition(":")
    for null in ("/Role=NULL", "/Capability=NULL"):
        name = re.sub(re.escape(null), "", name, flags=re.IGNORECASE)
    return name.replace("=", "_")


@dataclass
class ComputingElement:
    """One queue published as a GlueCE, and the state it publishes."""

    unique_id: str
    queue: str
    entry: Optional[StaticEntry]
    state: Optional[str]
    new_state: Optional[str] = None
    access_rules: Tuple[str, ...] = ()

    @property
    def views(self) -> List[VOView]:
        return [VOView(voview_id(rule), rule) for rule in self.access_rules]

    @property
    def published_state(self) -> Optional[str]:
        return self.state if self.new_state is None else self.new_state

    @property
    def has_state(self) -> bool:
        """True when the entry already holds the attribute: a plugin replaces it, else adds it."""
        return self.entry is None or self.entry.has(STATE)


@dataclass
class Site:
    """What gip publishes, with every Problem met while deciding it."""

    config: SiteConfig
    base: str
    entries: List[StaticEntry]
    subclusters: List[SubCluster]
    ces: List[ComputingElement]
    tag_inputs: List[TagInput]
    problems: List[Problem]

    def merged_entries(self) -> Iterator[Tuple[StaticEntry, List[Tuple[str, List[str]]]]]:
        """Every static entry with its attributes, gip's tags and state in place of its own."""
        replacements: Dict[int, Dict[str, List[str]]] = {}
        for sc in self.subclusters:
            if sc.entry is not None and sc.tags:
                replacements.setdefault(id(sc.entry), {})[RUNTIME_ENVIRONMENT.lower()] = sc.tags
        for ce in self.ces:
            if ce.entry is not None and ce.new_state is not None:
                replacements.setdefault(id(ce.entry), {})[STATE.lower()] = [ce.new_state]
        for entry in self.entries:
            yield entry, _merged(entry, replacements.get(id(entry)))


def _merged(entry: StaticEntry, replaced: Optional[Dict[str, List[str]]]) -> List[Tuple[str, List[str]]]:
    """The entry's attributes in file order; a replaced one keeps its place, a new one comes last."""
    if not replaced:
        return list(entry.items())
    left = dict(replaced)
    pairs = [(name, left.pop(name.lower(), values)) for name, values in entry.items()]
    pairs.extend((_SPELLING[key], values) for key, values in left.items())
    return pairs


def build_site(
    config: SiteConfig,
    entries: Sequence[StaticEntry],
    tag_inputs: Sequence[TagInput],
    base: str = BASE_STATIC,
) -> Site:
    """Decides what is published; raises ConfigError only where templates lack a key."""
    problems: List[Problem] = []
    if base == BASE_TEMPLATES:
        kept: List[StaticEntry] = []
        subclusters = [_template_subcluster(config, problems)]
        ces = _template_ces(config, problems)
    else:
        kept = unique_entries(entries, problems)
        subclusters = _static_subclusters(kept, problems)
        ces = _static_ces(kept, config, problems)
    inputs = sorted(tag_inputs, key=lambda t: (t.source.subcluster or "", t.source.vo))
    add_tags(subclusters, inputs, problems)
    return Site(config, base, kept, subclusters, ces, list(inputs), problems)


# Static entries


def unique_entries(entries: Iterable[StaticEntry], problems: List[Problem]) -> List[StaticEntry]:
    """Entries the BDII would load: printable DNs, the first of each DN (bdii-update keeps the first)."""
    seen: Dict[str, StaticEntry] = {}
    kept = []
    for entry in entries:
        problem = value_problem(entry.dn)
        if problem is not None:
            problems.append(Problem(entry.path, entry.line, f"DN {problem}; the entry is not published", entry.dn))
            continue
        first = seen.setdefault(dn_key(entry.dn), entry)
        if first is not entry:
            reason = f"same DN as the entry at {first.origin}; the BDII keeps the first, so this one is ignored"
            problems.append(Problem(entry.path, entry.line, reason, entry.dn))
            continue
        kept.append(entry)
    return kept


def _static_subclusters(entries: Iterable[StaticEntry], problems: List[Problem]) -> List[SubCluster]:
    subclusters = []
    for entry in entries:
        if not entry.has_class(SUBCLUSTER_CLASS):
            continue
        unique_id = entry.first(SUBCLUSTER_ID) or _rdn_value(entry.dn, SUBCLUSTER_ID)
        if unique_id is None:
            reason = f"a GlueSubCluster without {SUBCLUSTER_ID}; no tags are added to it"
            problems.append(Problem(entry.path, entry.line, reason, entry.dn))
            continue
        subclusters.append(SubCluster(unique_id, entry, _static_values(entry, problems)))
    return subclusters


def _static_values(entry: StaticEntry, problems: List[Problem]) -> List[str]:
    """The entry's own runtime-environment values that can be published, first spelling kept."""
    held = TagSet()
    for index, value in enumerate(entry.values(RUNTIME_ENVIRONMENT)):
        line = entry.line_of(RUNTIME_ENVIRONMENT, index)
        problem = value_problem(value)
        if problem is not None:
            reason = f"static value {problem}: the BDII rejects the entry holding it; gip leaves it out"
            problems.append(Problem(entry.path, line, reason, value))
            continue
        clash = held.add(value)
        if clash is not None:
            reason = f"static value differs only in case from {clash!r}: the BDII rejects the entry holding both"
            problems.append(Problem(entry.path, line, reason, value))
    return held.as_list()


def _static_ces(entries: Iterable[StaticEntry], config: SiteConfig, problems: List[Problem]) -> List[ComputingElement]:
    ces = []
    for entry in entries:
        if not entry.has_class(CE_CLASS):
            continue
        unique_id = entry.first(CE_ID) or _rdn_value(entry.dn, CE_ID)
        if unique_id is None:
            problems.append(Problem(entry.path, entry.line, f"a GlueCE without {CE_ID}; its state is left", entry.dn))
            continue
        queue = entry.first(CE_NAME) or unique_id.rsplit("-", 1)[-1]
        ce = ComputingElement(unique_id, queue, entry, entry.first(STATE))
        ce.new_state = _new_state(config, ce, problems)
        ces.append(ce)
    return ces


def _rdn_value(dn: str, attribute: str) -> Optional[str]:
    """The value of the DN's first RDN when it is ``attribute=value`` (no escapes), else None."""
    first = dn.split(",", 1)[0]
    name, _, value = first.partition("=")
    if name.strip().lower() != attribute.lower() or "\\" in value or not value.strip():
        return None
    return value.strip()


def _new_state(config: SiteConfig, ce: ComputingElement, problems: List[Problem]) -> Optional[str]:
    wanted = config.new_state(ce.queue, ce.state)
    if wanted is None:
        return None
    problem = value_problem(wanted)
    if problem is not None:
        reason = f"CE state for queue {ce.queue!r} {problem}; left unchanged"
        problems.append(Problem(config.path, None, reason, wanted))
        return None
    return wanted


# SubClusters and CEs rendered from templates


def _template_subcluster(config: SiteConfig, problems: List[Problem]) -> SubCluster:
    held = TagSet()
    for value in config.runtime_env:
        problem = value_problem(value)
        if problem is not None:
            problems.append(Problem(config.path, None, f"CE_RUNTIMEENV value {problem}; left out", value))
        elif held.add(value) is not None:
            problems.append(Problem(config.path, None, "CE_RUNTIMEENV value differs only in case from another", value))
    return SubCluster(_required(config.ce_host, "CE_HOST", config), None, held.as_list())


def _template_ces(config: SiteConfig, problems: List[Problem]) -> List[ComputingElement]:
    host = _required(config.ce_host, "CE_HOST", config)
    batch = _required(config.batch_system, "CE_BATCH_SYS", config)
    if not config.queues:
        raise ConfigError(f"{config.path}: QUEUES is not set, and a GlueCE is rendered for each queue")
    ces = []
    for queue in config.queues:
        unique_id = f"{host}:{CREAM_PORT}/cream-{batch}-{queue.name}"
        problem = value_problem(unique_id)
        if problem is not None:
            problems.append(Problem(config.path, None, f"GlueCEUniqueID of queue {queue.name!r} {problem}", unique_id))
            continue
        ce = ComputingElement(unique_id, queue.name, None, PRODUCTION, access_rules=queue.access_rules())
        if not ce.access_rules:
            problems.append(Problem(config.path, None, f"queue {queue.name!r} has no VO or FQAN in its _GROUP_ENABLE"))
        ce.new_state = _new_state(config, ce, problems)
        ces.append(ce)
    return ces


def _required(value: Optional[str], key: str, config: SiteConfig) -> str:
    if not value:
        raise ConfigError(f"{config.path}: {key} is not set, and the templates need it")
    problem = value_problem(value)
    if problem is not None:
        raise ConfigError(f"{config.path}: {key} {problem}")
    return value


# Tags


@dataclass
class _GlobalTags:
    """The global tags in publishing order; ``spelling`` maps each, lower-cased, to itself."""

    tags: List[str]
    counts: Dict[str, int]
    spelling: Dict[str, str]
    inputs: Sequence[TagInput]


def add_tags(subclusters: Sequence[SubCluster], inputs: Sequence[TagInput], problems: List[Problem]) -> None:
    """Fills every SubCluster's tags: its held values, the global tags, then its own.

    TagSet's rule (first spelling wins, ignoring case), on plain dicts and sets
    built once: the global tags may number 100,000 and are shared by every
    SubCluster.
    """
    global_tags = _global_tags([t for t in inputs if t.source.subcluster is None], problems)
    own = _own_inputs(subclusters, inputs, problems)
    for subcluster in subclusters:
        _fill(subcluster, global_tags, problems)
        own_inputs = own.get(subcluster.unique_id.lower())
        if own_inputs:
            _add_own(subcluster, own_inputs, global_tags, problems)


def _global_tags(inputs: Sequence[TagInput], problems: List[Problem]) -> _GlobalTags:
    """The tags of every VO's global file, VOs in name order, each VO's sorted, unique ignoring case."""
    tags: List[str] = []
    counts: Dict[str, int] = {}
    for tag_input in inputs:
        tags.extend(sorted(tag_input.file.tags))
        counts[tag_input.source.vo] = len(tag_input.file.tags)
    spelling = dict(zip(map(str.lower, tags), tags))
    if len(spelling) == len(tags):
        return _GlobalTags(tags, counts, spelling, inputs)
    # Two VOs can own one tag ('VO-a-b-x' is valid for VO 'a' and for VO 'a-b').
    spelling, tags = {}, []
    for tag_input in inputs:
        fresh = _add_new(spelling, ({}, {}), sorted(tag_input.file.tags), "a tag of another VO", tag_input, problems)
        tags.extend(fresh)
        counts[tag_input.source.vo] = len(fresh)
    return _GlobalTags(tags, counts, spelling, inputs)


def _add_new(
    present: Dict[str, str], before: Tuple[Dict[str, str], Dict[str, str]], tags: List[str], where: str,
    tag_input: TagInput, problems: List[Problem],
) -> List[str]:
    """The tags in neither of ``before`` nor in ``present`` (lower-cased keys), added to ``present``."""
    first, second = before
    fresh = []
    for tag in tags:
        key = tag.lower()
        held = first.get(key) or second.get(key) or present.get(key)
        if held is None:
            present[key] = tag
            fresh.append(tag)
        else:
            _report_clash(held, tag, where, tag_input, problems)
    return fresh


def _fill(subcluster: SubCluster, global_tags: _GlobalTags, problems: List[Problem]) -> None:
    subcluster.global_counts = dict(global_tags.counts)
    held = {tag.lower(): tag for tag in subcluster.held}
    if not any(key in global_tags.spelling for key in held):
        # The common case, kept to one list operation.
        subcluster.tags = subcluster.held + global_tags.tags
        return
    subcluster.tags = subcluster.held + [tag for tag in global_tags.tags if tag.lower() not in held]
    for tag_input in global_tags.inputs:
        for tag in tag_input.file.tags:
            kept = held.get(tag.lower())
            if kept is not None:
                subcluster.global_counts[tag_input.source.vo] -= 1
                _report_clash(kept, tag, _held_where(subcluster), tag_input, problems)


def _held_where(subcluster: SubCluster) -> str:
    if subcluster.entry is None:
        return "CE_RUNTIMEENV"
    return f"static entry at {subcluster.entry.origin}"


def _report_clash(kept: str, tag: str, where: str, tag_input: TagInput, problems: List[Problem]) -> None:
    """A tag published already: silent when spelled the same, reported where it was read when not."""
    if kept == tag:
        return
    reason = f"differs only in case from {kept!r} ({where}), which is kept"
    problems.append(Problem(tag_input.file.path, tag_input.file.line_of(tag), reason, tag))


def _own_inputs(
    subclusters: Sequence[SubCluster], inputs: Sequence[TagInput], problems: List[Problem]
) -> Dict[str, List[TagInput]]:
    """Per-SubCluster tag files by SubCluster ID (ignoring case, as LDAP compares it)."""
    known = {sc.unique_id.lower() for sc in subclusters}
    own: Dict[str, List[TagInput]] = {}
    for tag_input in inputs:
        subcluster = tag_input.source.subcluster
        if subcluster is None:
            continue
        if subcluster.lower() not in known:
            reason = f"skipped: no SubCluster has the ID {subcluster!r}"
            problems.append(Problem(str(tag_input.source.path), None, reason))
            continue
        own.setdefault(subcluster.lower(), []).append(tag_input)
    return own


def _add_own(
    subcluster: SubCluster, own_inputs: Sequence[TagInput], global_tags: _GlobalTags, problems: List[Problem]
) -> None:
    # Held values first: where one clashed with a global tag, its spelling is the one published.
    before = ({tag.lower(): tag for tag in subcluster.held}, global_tags.spelling)
    present: Dict[str, str] = {}
    where = f"published before it on SubCluster {subcluster.unique_id}"
    for tag_input in own_inputs:
        fresh = _add_new(present, before, sorted(tag_input.file.tags), where, tag_input, problems)
        subcluster.tags.extend(fresh)
        vo = tag_input.source.vo
        subcluster.own_counts[vo] = subcluster.own_counts.get(vo, 0) + len(fresh)
