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

GLUE 2 (``glue`` 2 or both) is built beside these from the same inputs, under
``GLUE2GroupID=resource,o=glue`` in the shape a CREAM CE's YAIM-made files
have (GFD.147 for the classes, the EGI profile for the enumerations):

* the ComputingService ``<CE_HOST>_ComputingElement`` (or ``COMPUTING_SERVICE_ID``),
  its ComputingManager ``<service>_Manager`` under it, and under the service
  one ExecutionEnvironment per SubCluster, whose GLUE2ResourceID is the
  GlueSubClusterUniqueID (a SubCluster and its ExecutionEnvironment are one
  set of worker nodes, so they share the ID), and one ComputingShare per queue
  and VO, ``<queue>_<vo>_<service>``, with its MappingPolicy (base
  ``templates``); or the entries the static LDIF holds (base ``static``);
* one ApplicationEnvironment per published value and SubCluster (the tags,
  and the values the SubCluster already holds, as GLUE 1 publishes them),
  ID ``<value>_<ResourceID>``, under the ComputingManager that the
  SubCluster's ExecutionEnvironment names: the manager is the one entry the
  GLUE 2 model requires an ApplicationEnvironment to point to. AppName is the
  whole tag: that is what jobs ask for, and ``VO-<vo>-`` keeps two VOs'
  software apart. A SubCluster whose ExecutionEnvironment or manager is not
  in the static LDIF gets none, and a Problem names the entry it needs;
* each share's state: a CE state in the GLUE 2 enumeration (any case) sets
  ServingState in lower case; any other value (``PilotSCAS``) leaves it and
  is published as ``GLUE2EntityOtherInfo: CEState=<value>``. The state policy
  is GLUE 1's, on the share's ServingState (``production``). A share's queue
  is its GLUE2ComputingShareMappingQueue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain

from gip.dnkey import dn_key, dn_keys
from gip.errors import ConfigError
from gip.ldifvalue import plainly_printable, value_problem
from gip.report import Problem
from gip.siteconfig import POLICY_ALWAYS, PRODUCTION, SiteConfig
from gip.tagfile import TagFile, prefix_free
from gip.tags import RUNTIME_ENVIRONMENT, TagSet, ValidTags
from gip.tagtree import TagSource

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Dict, FrozenSet, Iterable, Iterator, List, NamedTuple, Optional, Set, Tuple, Union, overload

    from gip.staticldif import StaticEntry
else:
    from gip._records import NamedTuple

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

GLUE2_BASE = "GLUE2GroupID=resource,o=glue"
# GLUE2ComputingShareServingState's enumeration (GFD.147 ServingState_t).
SERVING_STATES = ("production", "draining", "queueing", "closed")
SERVING_STATE = "GLUE2ComputingShareServingState"
SHARE_ID = "GLUE2ShareID"
SHARE_QUEUE = "GLUE2ComputingShareMappingQueue"
OTHER_INFO = "GLUE2EntityOtherInfo"
CE_STATE_INFO = "CEState="
SERVICE_CLASS = "GLUE2ComputingService"
MANAGER_CLASS = "GLUE2ComputingManager"
ENVIRONMENT_CLASS = "GLUE2ExecutionEnvironment"
SHARE_CLASS = "GLUE2ComputingShare"
APPLICATION_CLASS = "GLUE2ApplicationEnvironment"
SERVICE_ID_KEY = "COMPUTING_SERVICE_ID"
# The attributes gip sets in a static entry, by lower-cased name, as spelled when it adds them.
SPELLING = {name.lower(): name for name in (RUNTIME_ENVIRONMENT, STATE, SERVING_STATE, OTHER_INFO)}


class TagInput(NamedTuple):
    """One tag file as read, with the folder it was found in."""

    source: TagSource
    file: TagFile


class TagList(Sequence[str]):
    """Tags in publishing order, made of parts that SubClusters share.

    Every SubCluster's list holds the same global tags, up to 100,000 of them:
    the publisher renders a part shared by several lists once (gip.publish),
    and the parts are joined into one list only where something indexes it.
    Build a new TagList rather than change a part: ``parts`` must stay its content.
    """

    __slots__ = ("parts", "_joined")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, parts: Sequence[List[str]] = ()) -> None:
        self.parts: List[List[str]] = list(parts)
        self._joined: Optional[List[str]] = None

    def __len__(self) -> int:
        return sum(map(len, self.parts))

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self.parts)

    if TYPE_CHECKING:
        @overload
        def __getitem__(self, index: int) -> str: ...

        @overload
        def __getitem__(self, index: slice) -> List[str]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[str, List[str]]:
        if self._joined is None:
            self._joined = list(self)
        return self._joined[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, TagList)):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"TagList({list(self)!r})"


class SubCluster:
    """One SubCluster and the tags it publishes.

    ``held`` are the values it already has (the static entry's own, or
    CE_RUNTIMEENV); ``tags`` starts with them and goes on with the tags gip
    adds. ``global_counts``/``own_counts`` say how many tags each VO added.
    """

    def __init__(self, unique_id: str, entry: Optional[StaticEntry], held: List[str]) -> None:
        self.unique_id = unique_id
        self.entry = entry
        self.held = held
        self.tags: Sequence[str] = []
        self.global_counts: Dict[str, int] = {}
        self.own_counts: Dict[str, int] = {}

    def __repr__(self) -> str:
        return f"SubCluster({self.unique_id!r}, {len(self.tags)} tags)"

    @property
    def added(self) -> Sequence[str]:
        """The tags the SubCluster does not hold yet: what a plugin adds."""
        tags = self.tags
        if isinstance(tags, TagList) and tags.parts and tags.parts[0] is self.held:
            return TagList(tags.parts[1:])
        return tags[len(self.held):]


class VOView(NamedTuple):
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


class ComputingElement:
    """One queue published as a GlueCE, and the state it publishes."""

    def __init__(self, unique_id: str, queue: str, entry: Optional[StaticEntry], state: Optional[str],
                 new_state: Optional[str] = None, access_rules: Tuple[str, ...] = ()) -> None:
        self.unique_id = unique_id
        self.queue = queue
        self.entry = entry
        self.state = state
        self.new_state = new_state
        self.access_rules = access_rules

    def __repr__(self) -> str:
        return f"ComputingElement({self.unique_id!r}, {self.queue!r}, {self.state!r} -> {self.new_state!r})"

    @property
    def views(self) -> List[VOView]:
        return [VOView(voview_id(rule), rule) for rule in self.access_rules]

    @property
    def published_state(self) -> Optional[str]:
        return self.state if self.new_state is None else self.new_state

    @property
    def has_state(self) -> bool:
        """True when the entry already holds the attribute: a plugin replaces it, else adds it."""
        # ``state`` is the entry's first value of it, None where it has none.
        return self.entry is None or self.state is not None


class Site:
    """What gip publishes, with every Problem met while deciding it."""

    def __init__(self, config: SiteConfig, base: str, entries: List[StaticEntry], subclusters: List[SubCluster],
                 ces: List[ComputingElement], tag_inputs: List[TagInput], problems: List[Problem],
                 glue: str = "1") -> None:
        self.config = config
        self.base = base
        self.entries = entries
        self.subclusters = subclusters
        self.ces = ces
        self.tag_inputs = tag_inputs
        self.problems = problems
        self.glue = glue
        self.glue2: Optional[Glue2Site] = None

    @property
    def versions(self) -> Tuple[str, ...]:
        return glue_versions(self.glue)

    def merged_entries(self, version: str = "1") -> Iterator[Tuple[StaticEntry, List[Tuple[str, Sequence[str]]]]]:
        """The static entries of one GLUE version's tree, gip's tags and states in place of their own.

        The GLUE 2 tree is everything under o=glue, the GLUE 1 tree the rest.
        The entries of a tree whose version is not published go out unchanged
        with the first version that is, so that every static entry is
        printed once whatever ``--glue`` says: the merged output stands in
        for the static files.
        """
        for entry, replaced in self.merged_changes(version):
            yield entry, merged_attributes(entry, replaced)

    def merged_changes(self, version: str = "1") -> Iterator[Tuple[StaticEntry, Optional[Dict[str, Sequence[str]]]]]:
        """merged_entries() as each static entry and the attributes gip publishes in its place
        (lower-cased name to values; None where none), for a writer that prints the entry's own lines."""
        published = self.versions
        replacements = self._replacements()
        for entry, key in zip(self.entries, dn_keys([entry.dn for entry in self.entries])):
            own = "2" if _glue2_key(key) else "1"
            if (own if own in published else published[0]) != version:
                continue
            yield entry, replacements.get(id(entry)) if own in published else None

    def _replacements(self) -> Dict[int, Dict[str, Sequence[str]]]:
        """Per static entry (by id()), the attributes gip publishes in place of the entry's own."""
        replacements: Dict[int, Dict[str, Sequence[str]]] = {}
        for sc in self.subclusters:
            if sc.entry is not None and sc.tags:
                replacements.setdefault(id(sc.entry), {})[RUNTIME_ENVIRONMENT.lower()] = sc.tags
        for ce in self.ces:
            if ce.entry is not None and ce.new_state is not None:
                replacements.setdefault(id(ce.entry), {})[STATE.lower()] = [ce.new_state]
        for share in self.glue2.shares if self.glue2 is not None else ():
            if share.entry is not None:
                replacements.setdefault(id(share.entry), {}).update(share.replaced())
        return replacements


def merged_attributes(entry: StaticEntry, replaced: Optional[Dict[str, Sequence[str]]]
                      ) -> List[Tuple[str, Sequence[str]]]:
    """The entry's attributes in file order; a replaced one keeps its place, a new one comes last."""
    if not replaced:
        return list(entry.items())
    left = dict(replaced)
    pairs = [(name, left.pop(name.lower(), values)) for name, values in entry.items()]
    pairs.extend((SPELLING[key], values) for key, values in left.items())
    return pairs


def build_site(
    config: SiteConfig,
    entries: Sequence[StaticEntry],
    tag_inputs: Sequence[TagInput],
    base: str = BASE_STATIC,
    glue: str = "1",
    bdii_reads_static: bool = False,
) -> Site:
    """Decides what is published; raises ConfigError only where templates lack a key.

    ``bdii_reads_static``: the BDII loads the static files itself (gip's output
    changes their entries), so each entry counts as bdii-update reads it.
    """
    problems: List[Problem] = []
    if base == BASE_TEMPLATES:
        kept: List[StaticEntry] = []
        subclusters = [_template_subcluster(config, problems)]
        ces = _template_ces(config, problems)
    else:
        if bdii_reads_static:
            entries = as_bdii_reads_them(entries, problems)
        kept = unique_entries(entries, problems)
        subclusters = _static_subclusters(kept, problems)
        ces = _static_ces(kept, config, problems)
    inputs = sorted(tag_inputs, key=lambda t: (t.source.subcluster or "", t.source.vo))
    add_tags(subclusters, inputs, problems)
    site = Site(config, base, kept, subclusters, ces, list(inputs), problems, glue)
    if "2" in site.versions:
        site.glue2 = build_glue2(site)
    return site


def static_questions(glue: str) -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
    """What build_site() asks of every static entry, for ``--glue``: whether it has each class, and
    the first value of each attribute named with a class that it has. Answered where the files are
    parsed (see staticldif.start_reading_static_ldif)."""
    questions: Tuple[Tuple[str, Tuple[str, ...]], ...] = ((CE_CLASS, (CE_ID, CE_NAME, STATE)), (SUBCLUSTER_CLASS, ()))
    if "2" in glue_versions(glue):
        questions += ((SHARE_CLASS, (SHARE_ID, SHARE_QUEUE, SERVING_STATE)),)
    return questions


def glue_versions(glue: str) -> Tuple[str, ...]:
    """The GLUE versions ``--glue`` asks for, in printing order."""
    return ("1", "2") if glue == "both" else (glue,)


def in_glue2_tree(dn: str) -> bool:
    """True for a DN under o=glue, compared as bdii-update compares DNs."""
    return _glue2_key(dn_key(dn))


def _glue2_key(key: str) -> bool:
    return key == "o=glue" or key.endswith(",o=glue")


# Static entries


CUT_REASON = ("holds 'dn:' inside the line, where bdii-update starts another entry: the BDII does not see the "
              "entry's lines from here on, and neither does gip; fix the line")


UNTERMINATED_REASON = ("does not end with a line end: bdii-update joins the files of its ldif/ folder, so the "
                       "last line runs into the next file's first; end the file with one")


DN_LINE_REASON = ("the dn line is not written 'dn: <DN>' (one space, no base64): bdii-update matches the "
                  "changes to an entry by that line as written, so gip's may not apply; write it so")


def as_bdii_reads_them(entries: Iterable[StaticEntry], problems: List[Problem]) -> List[StaticEntry]:
    """The entries as bdii-update reads them: each cut at its first line holding 'dn:' inside it."""
    seen = []
    for entry in entries:
        cut = entry.inner_dn_line()
        if cut is not None:
            problems.append(Problem(entry.path, cut, CUT_REASON, entry.dn))
            entry = entry.as_bdii_reads_it()
        if entry.ends_file_unterminated:
            problems.append(Problem(entry.path, None, UNTERMINATED_REASON))
        if not entry.dn_line_plain:
            problems.append(Problem(entry.path, entry.line, DN_LINE_REASON, entry.dn))
        seen.append(entry)
    return seen


def unique_entries(entries: Iterable[StaticEntry], problems: List[Problem]) -> List[StaticEntry]:
    """Entries the BDII would load: printable DNs, the first of each DN (bdii-update keeps the first)."""
    entries = list(entries)
    dns = [entry.dn for entry in entries]
    if plainly_printable(dns) and len(set(dn_keys(dns))) == len(dns):
        return entries  # the common file: every DN printable, none twice
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
    problem = state_problem(config, ce.queue, wanted)
    if problem is not None:
        problems.append(problem)
        return None
    return wanted


def state_problem(config: SiteConfig, queue: str, state: str) -> Optional[Problem]:
    """Why the state set for ``queue`` cannot be published, as a Problem; None when it can."""
    problem = value_problem(state)
    if problem is None:
        return None
    return Problem(config.path, None, f"CE state for queue {queue!r} {problem}; left unchanged", state)


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
        what = "names no queue gip can publish" if config.values.get("QUEUES", "").strip() else "is not set"
        raise ConfigError(f"{config.path}: QUEUES {what}, and a GlueCE is rendered for each queue")
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


class _GlobalTags:
    """The global tags in publishing order, their counts per VO, and their spellings by lower-cased tag.

    The spellings are looked up only where a clash is possible, and built on
    first use, per VO where VO names do not nest: a tag of VO ``a`` can equal
    (ignoring case) a tag of VO ``b`` only if one name is the other's start
    and a ``-`` ('VO-a-b-x' is valid for VO 'a' and for VO 'a-b').
    """

    def __init__(self, tags: List[str], counts: Dict[str, int], inputs: Sequence[TagInput], nested: bool) -> None:
        self.tags = tags
        self.counts = counts
        self.inputs = inputs
        self.nested = nested
        self._spelling: Optional[Dict[str, str]] = None
        self._by_vo: Dict[str, Dict[str, str]] = {}

    @property
    def spelling(self) -> Dict[str, str]:
        """Every global tag, lower-cased, to itself."""
        if self._spelling is None:
            self._spelling = dict(zip(map(str.lower, self.tags), self.tags))
        return self._spelling

    def spelling_for(self, vo: str) -> Dict[str, str]:
        """The spellings a tag of VO ``vo`` can clash with: its VO's, or all where VO names nest."""
        if self.nested:
            return self.spelling
        found = self._by_vo.get(vo)
        if found is None:
            tags = [tag for tag_input in self.inputs if tag_input.source.vo == vo for tag in tag_input.file.tags]
            found = self._by_vo[vo] = dict(zip(map(str.lower, tags), tags))
        return found

    def stems_for(self, vo: str) -> Optional[List[str]]:
        """Stems (see TagFile) of every tag that spelling_for(vo) holds; None where a file's are unknown."""
        stems: List[str] = []
        for tag_input in self.inputs:
            if self.nested or tag_input.source.vo == vo:
                if tag_input.file.stems is None:
                    return None
                stems.extend(tag_input.file.stems)
        return stems

    def holds_any(self, keys: Iterable[str]) -> bool:
        """True when a global tag equals one of ``keys`` (lower-cased values) ignoring case."""
        keys = [key for key in keys if key.startswith("vo-")]  # no other value can be a tag
        return bool(keys) and not self.spelling.keys().isdisjoint(keys)


def add_tags(subclusters: Sequence[SubCluster], inputs: Sequence[TagInput], problems: List[Problem]) -> None:
    """Fills every SubCluster's tags: its held values, the global tags, then its own.

    TagSet's rule (first spelling wins, ignoring case), on plain dicts and sets
    built once: the global tags may number 100,000 and are shared by every
    SubCluster.
    """
    # Nesting is judged on every VO with a tag file, global or own: a SubCluster's own
    # 'VO-a-B-1' of VO 'a' can clash with a global 'VO-a-b-1' of VO 'a-b'.
    nested = _nested([t.source.vo for t in inputs])
    global_tags = _global_tags([t for t in inputs if t.source.subcluster is None], nested, problems)
    own = _own_inputs(subclusters, inputs, problems)
    for subcluster in subclusters:
        parts = _fill(subcluster, global_tags, problems)
        own_inputs = own.get(subcluster.unique_id.lower())
        if own_inputs:
            parts.append(_add_own(subcluster, own_inputs, global_tags, problems))
        subcluster.tags = TagList(parts)


def _global_tags(inputs: Sequence[TagInput], nested: bool, problems: List[Problem]) -> _GlobalTags:
    """The tags of every VO's global file, VOs in name order, each VO's sorted, unique ignoring case.

    ``nested``: whether VO names nest (see _GlobalTags), among all tag files.
    """
    tags = ValidTags()
    counts: Dict[str, int] = {}
    for tag_input in inputs:
        tags.extend(sorted(tag_input.file.tags))
        counts[tag_input.source.vo] = len(tag_input.file.tags)
    if not nested or len(set(map(str.lower, tags))) == len(tags):
        return _GlobalTags(tags, counts, inputs, nested)
    spelling: Dict[str, str] = {}
    tags = ValidTags()
    for tag_input in inputs:
        fresh = _add_new(spelling, ({}, {}), sorted(tag_input.file.tags), "a tag of another VO", tag_input, problems)
        tags.extend(fresh)
        counts[tag_input.source.vo] = len(fresh)
    return _GlobalTags(tags, counts, inputs, nested)


def _nested(vos: Sequence[str]) -> bool:
    """True when a VO name is another's followed by ``-`` and more."""
    names = set(vos)
    return any(vo[:index] in names for vo in names for index, char in enumerate(vo) if char == "-")


def _add_new(
    present: Dict[str, str], before: Tuple[Dict[str, str], Dict[str, str]], tags: List[str], where: str,
    tag_input: TagInput, problems: List[Problem],
) -> List[str]:
    """The tags in neither of ``before`` nor in ``present`` (lower-cased keys), added to ``present``."""
    first, second = before
    new = dict(zip(map(str.lower, tags), tags))
    if len(new) == len(tags) and all(held.keys().isdisjoint(new) for held in (first, second, present)):
        # The common case, every tag new: dict operations in C.
        present.update(new)
        return tags
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


def _fill(subcluster: SubCluster, global_tags: _GlobalTags, problems: List[Problem]) -> List[List[str]]:
    """The parts of the SubCluster's tags so far: its held values, then the global tags it does not hold."""
    subcluster.global_counts = dict(global_tags.counts)
    held = {tag.lower(): tag for tag in subcluster.held}
    if not global_tags.holds_any(held):
        # The common case: the global list itself, shared with the other SubClusters.
        return [subcluster.held, global_tags.tags]
    parts = [subcluster.held, ValidTags(tag for tag in global_tags.tags if tag.lower() not in held)]
    for tag_input in global_tags.inputs:
        for tag in tag_input.file.tags:
            kept = held.get(tag.lower())
            if kept is not None:
                subcluster.global_counts[tag_input.source.vo] -= 1
                _report_clash(kept, tag, _held_where(subcluster), tag_input, problems)
    return parts


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
) -> List[str]:
    """The SubCluster's own tags that it does not publish already, in publishing order."""
    # Held values first: where one clashed with a global tag, its spelling is the one published.
    held = {tag.lower(): tag for tag in subcluster.held}
    present: Optional[Dict[str, str]] = None  # the own tags so far by lower-cased tag, made when needed
    where = f"published before it on SubCluster {subcluster.unique_id}"
    own = ValidTags()
    # While every file's tags are new by their stems, no tag is lowered: the held values and the
    # stems of the own files so far and of the global tags it could clash with hold no string
    # that starts another, so no tag of the file equals one of those, ignoring case.
    stems: List[str] = list(held)
    for tag_input in own_inputs:
        vo = tag_input.source.vo
        tags = sorted(tag_input.file.tags)
        file_stems = tag_input.file.stems
        if present is None and file_stems is not None:
            global_stems = global_tags.stems_for(vo)
            if global_stems is not None and prefix_free([*stems, *global_stems, *file_stems]):
                stems.extend(file_stems)
                own.extend(tags)
                subcluster.own_counts[vo] = subcluster.own_counts.get(vo, 0) + len(tags)
                continue
        if present is None:
            present = dict(zip(map(str.lower, own), own))
        before = (held, global_tags.spelling_for(vo))
        fresh = _add_new(present, before, tags, where, tag_input, problems)
        own.extend(fresh)
        subcluster.own_counts[vo] = subcluster.own_counts.get(vo, 0) + len(fresh)
    return own


# GLUE 2


class Glue2Node(NamedTuple):
    """A GLUE 2 entry that others name: its ID (for their foreign keys) and DN (for entries under it)."""

    id: str
    dn: str


class ExecutionEnvironment:
    """A SubCluster's ExecutionEnvironment and the ComputingManager its ApplicationEnvironments go under.

    ``excluded`` holds the values (lower-cased) whose ApplicationEnvironment
    gip does not print: the static LDIF has it already, or another has its DN.
    """

    def __init__(self, node: Glue2Node, manager: Glue2Node, subcluster: SubCluster,
                 entry: Optional[StaticEntry] = None, excluded: FrozenSet[str] = frozenset()) -> None:
        self.node = node
        self.manager = manager
        self.subcluster = subcluster
        self.entry = entry
        self.excluded = excluded

    def __repr__(self) -> str:
        return f"ExecutionEnvironment({self.node!r}, {self.manager!r}, {self.subcluster!r})"

    @property
    def values(self) -> Sequence[str]:
        """The values that get an ApplicationEnvironment, in the SubCluster's publishing order."""
        if not self.excluded:
            return self.subcluster.tags
        return [value for value in self.subcluster.tags if value.lower() not in self.excluded]

    def application_id(self, value: str) -> str:
        return f"{value}_{self.node.id}"

    def application_dn(self, value: str) -> str:
        from gip.publish import rdn

        return f"GLUE2ApplicationEnvironmentID={rdn(self.application_id(value))},{self.manager.dn}"


class Share:
    """One GLUE2ComputingShare and the state it publishes.

    ``state`` is its ServingState (``production`` for a share gip renders),
    ``new_state`` the ServingState gip sets instead, ``ce_state`` a site state
    outside the enumeration, published in OtherInfo as ``CEState=<value>``.
    ``vo`` and ``rules`` (its MappingPolicy) belong to a share gip renders.
    """

    def __init__(self, node: Glue2Node, queue: Optional[str], entry: Optional[StaticEntry], state: Optional[str],
                 other_info: Optional[List[str]] = None, vo: Optional[str] = None, rules: Tuple[str, ...] = (),
                 new_state: Optional[str] = None, ce_state: Optional[str] = None) -> None:
        self.node = node
        self.queue = queue
        self.entry = entry
        self.state = state
        self.other_info: List[str] = [] if other_info is None else other_info
        self.vo = vo
        self.rules = rules
        self.new_state = new_state
        self.ce_state = ce_state

    def __repr__(self) -> str:
        return f"Share({self.node.id!r}, {self.queue!r}, {self.state!r} -> {self.new_state!r}, {self.ce_state!r})"

    @property
    def published_state(self) -> Optional[str]:
        return self.state if self.new_state is None else self.new_state

    @property
    def published_other_info(self) -> List[str]:
        """OtherInfo with gip's CEState in place of any the share had."""
        if self.ce_state is None:
            return self.other_info
        kept = [info for info in self.other_info if not info.startswith(CE_STATE_INFO)]
        return kept + [CE_STATE_INFO + self.ce_state]

    @property
    def changed(self) -> bool:
        return self.new_state is not None or self.ce_state is not None

    @property
    def has_state(self) -> bool:
        """True when the entry holds ServingState already: a plugin replaces it, else adds it."""
        return self.entry is None or self.entry.has(SERVING_STATE)

    def other_info_change(self) -> Tuple[str, List[str]]:
        """How a plugin block sets CEState: ``add`` it (OtherInfo has many values, and may be
        absent), or ``replace`` the share's values where one holds an older CEState."""
        if any(info.startswith(CE_STATE_INFO) for info in self.other_info):
            return "replace", self.published_other_info
        return "add", [CE_STATE_INFO + self.ce_state] if self.ce_state is not None else []

    def replaced(self) -> Dict[str, List[str]]:
        """The attributes (lower-cased names) gip publishes in place of the static entry's."""
        replaced: Dict[str, List[str]] = {}
        if self.new_state is not None:
            replaced[SERVING_STATE.lower()] = [self.new_state]
        if self.ce_state is not None:
            replaced[OTHER_INFO.lower()] = self.published_other_info
        return replaced


class Glue2Site:
    """What gip publishes in GLUE 2.

    ``service`` and ``manager`` are the entries gip renders (base templates),
    None with base static; ``missing`` says which static entries the
    ApplicationEnvironments need and do not find.
    """

    def __init__(self, environments: List[ExecutionEnvironment], shares: List[Share],
                 service: Optional[Glue2Node] = None, manager: Optional[Glue2Node] = None,
                 missing: Optional[List[Problem]] = None) -> None:
        self.environments = environments
        self.shares = shares
        self.service = service
        self.manager = manager
        self.missing: List[Problem] = [] if missing is None else missing

    @property
    def application_count(self) -> int:
        return sum(len(env.values) for env in self.environments)


def build_glue2(site: Site) -> Glue2Site:
    """The GLUE 2 side of a Site whose SubClusters, CEs and tags are decided."""
    if site.base == BASE_TEMPLATES:
        glue2 = _template_glue2(site.config, site.subclusters, site.ces)
    else:
        glue2 = _static_glue2(site.config, site.entries, site.subclusters, site.problems)
    _exclude_clashes(glue2.environments, site.config.path, site.problems)
    return glue2


def set_share_state(config: SiteConfig, share: Share) -> None:
    """Applies the site's state for the share's queue, as the module docstring says."""
    wanted = config.state_for(share.queue)
    if wanted is None or not _policy_allows(config, share.state):
        return
    lowered = wanted.lower()
    if lowered in SERVING_STATES:
        if lowered != share.state:
            share.new_state = lowered
    elif [info for info in share.other_info if info.startswith(CE_STATE_INFO)] != [CE_STATE_INFO + wanted]:
        share.ce_state = wanted


def _policy_allows(config: SiteConfig, current: Optional[str]) -> bool:
    if config.state_policy == POLICY_ALWAYS or current is None:
        return True
    return current.lower() == SERVING_STATES[0]


def _node(attribute: str, node_id: str, parent: str) -> Glue2Node:
    from gip.publish import rdn

    return Glue2Node(node_id, f"{attribute}={rdn(node_id)},{parent}")


# GLUE 2 entries rendered from templates


def _template_glue2(config: SiteConfig, subclusters: Sequence[SubCluster],
                    ces: Sequence[ComputingElement]) -> Glue2Site:
    service = _node("GLUE2ServiceID", _service_id(config), GLUE2_BASE)
    manager = _node("GLUE2ManagerID", f"{service.id}_Manager", service.dn)
    environments = [ExecutionEnvironment(_node("GLUE2ResourceID", sc.unique_id, service.dn), manager, sc)
                    for sc in subclusters]
    shares = [share for ce in ces for share in _template_shares(config, ce, service)]
    return Glue2Site(environments, shares, service, manager)


def _service_id(config: SiteConfig) -> str:
    """YAIM's COMPUTING_SERVICE_ID, whose default is ``<CE_HOST>_ComputingElement``."""
    given = config.values.get(SERVICE_ID_KEY)
    if given is not None:
        return _required(given, SERVICE_ID_KEY, config)
    return f"{_required(config.ce_host, 'CE_HOST', config)}_ComputingElement"


def _template_shares(config: SiteConfig, ce: ComputingElement, service: Glue2Node) -> List[Share]:
    """One share per VO allowed on the queue, its rules (VO and FQANs of that VO) in its MappingPolicy.

    One per VO rather than per rule: two rules of one VO (``atlas`` and
    ``/atlas/ROLE=production``) would otherwise give two shares with one ID.
    """
    by_vo: Dict[str, List[str]] = {}
    for rule in ce.access_rules:
        by_vo.setdefault(rule_vo(rule), []).append(rule)
    shares = []
    for vo, rules in by_vo.items():
        node = _node("GLUE2ShareID", f"{ce.queue}_{vo}_{service.id}", service.dn)
        share = Share(node, ce.queue, None, SERVING_STATES[0], vo=vo, rules=tuple(rules))
        set_share_state(config, share)
        shares.append(share)
    return shares


def rule_vo(rule: str) -> str:
    """The VO of an access rule: ``VO:atlas`` and ``VOMS:/atlas/ROLE=pilot`` give ``atlas``."""
    return rule.partition(":")[2].lstrip("/").split("/", 1)[0]


# GLUE 2 entries of the static LDIF


def _static_glue2(config: SiteConfig, entries: Sequence[StaticEntry], subclusters: Sequence[SubCluster],
                  problems: List[Problem]) -> Glue2Site:
    tree = [entry for entry in entries if in_glue2_tree(entry.dn)]
    shares = [_static_share(config, entry) for entry in tree if entry.has_class(SHARE_CLASS)]
    if not shares and _has_states(config):
        reason = f"no {SHARE_CLASS} in the static LDIF: the CE state is not published in GLUE 2"
        problems.append(Problem(config.path, None, reason))
    index = _StaticGlue2(tree, config)
    missing: List[Problem] = []
    environments = []
    for sc in subclusters:
        env = index.environment(sc, missing)
        if env is not None:
            environments.append(env)
    _exclude_static_applications(environments, tree)
    return Glue2Site(environments, shares, missing=missing)


def _has_states(config: SiteConfig) -> bool:
    return config.ce_state is not None or any(key.endswith("_CE_STATE") for key in config.values)


def _static_share(config: SiteConfig, entry: StaticEntry) -> Share:
    share_id = _entry_id(entry, SHARE_ID) or entry.dn
    queue = entry.first(SHARE_QUEUE)
    share = Share(Glue2Node(share_id, entry.dn), queue, entry, entry.first(SERVING_STATE), entry.values(OTHER_INFO))
    set_share_state(config, share)
    return share


def _entry_id(entry: StaticEntry, attribute: str) -> Optional[str]:
    return entry.first(attribute) or _rdn_value(entry.dn, attribute)


class _StaticGlue2:
    """The static GLUE 2 entries ApplicationEnvironments hang on, and what to say when one is missing."""

    def __init__(self, tree: Sequence[StaticEntry], config: SiteConfig) -> None:
        self.config = config
        self.environments: Dict[str, StaticEntry] = {}
        self.managers: List[Glue2Node] = []
        services: List[Optional[str]] = []
        for entry in tree:
            if entry.has_class(ENVIRONMENT_CLASS):
                resource_id = _entry_id(entry, "GLUE2ResourceID")
                if resource_id is not None:
                    self.environments.setdefault(resource_id.lower(), entry)
            elif entry.has_class(MANAGER_CLASS):
                manager_id = _entry_id(entry, "GLUE2ManagerID")
                if manager_id is not None:
                    self.managers.append(Glue2Node(manager_id, entry.dn))
                services.append(entry.first("GLUE2ManagerServiceForeignKey"))
            elif entry.has_class(SERVICE_CLASS):
                services.insert(0, _entry_id(entry, "GLUE2ServiceID"))
        default = config.values.get(SERVICE_ID_KEY) or f"{config.ce_host or '${CE_HOST}'}_ComputingElement"
        # Only for the DNs gip names when an entry is missing: the service found, else YAIM's default.
        self.service_id = next((found for found in services if found), default)

    def environment(self, sc: SubCluster, missing: List[Problem]) -> Optional[ExecutionEnvironment]:
        entry = self.environments.get(sc.unique_id.lower())
        if entry is None:
            dn = _node("GLUE2ResourceID", sc.unique_id, self._service_dn()).dn
            missing.append(self._needs(sc, f"the {ENVIRONMENT_CLASS} with GLUE2ResourceID {sc.unique_id} ({dn})"))
            return None
        wanted = (entry.first("GLUE2ResourceManagerForeignKey")
                  or entry.first("GLUE2ExecutionEnvironmentComputingManagerForeignKey"))
        manager = self._manager(wanted)
        if manager is None:
            name = wanted or f"{self.service_id}_Manager"
            dn = _node("GLUE2ManagerID", name, self._service_dn()).dn
            missing.append(self._needs(sc, f"the {MANAGER_CLASS} with GLUE2ManagerID {name} ({dn})"))
            return None
        resource_id = _entry_id(entry, "GLUE2ResourceID") or sc.unique_id
        return ExecutionEnvironment(Glue2Node(resource_id, entry.dn), manager, sc, entry)

    def _manager(self, wanted: Optional[str]) -> Optional[Glue2Node]:
        """The manager an ExecutionEnvironment names; the only one there is where it names none."""
        if wanted is None:
            return self.managers[0] if len(self.managers) == 1 else None
        return next((manager for manager in self.managers if manager.id == wanted), None)

    def _service_dn(self) -> str:
        return _node("GLUE2ServiceID", self.service_id, GLUE2_BASE).dn

    def _needs(self, sc: SubCluster, what: str) -> Problem:
        path, line = (sc.entry.path, sc.entry.line) if sc.entry is not None else (self.config.path, None)
        reason = f"SubCluster {sc.unique_id}: its GLUE 2 ApplicationEnvironments need {what} in the static LDIF"
        return Problem(path, line, reason + "; none are published")


def _exclude_static_applications(environments: Sequence[ExecutionEnvironment], tree: Sequence[StaticEntry]) -> None:
    """Leaves out the ApplicationEnvironments the static LDIF holds already (the BDII keeps one per DN)."""
    static = {dn_key(entry.dn) for entry in tree if entry.has_class(APPLICATION_CLASS)}
    if not static:
        return
    for env in environments:
        env.excluded = frozenset(v.lower() for v in env.subcluster.tags if dn_key(env.application_dn(v)) in static)


def _exclude_clashes(environments: Sequence[ExecutionEnvironment], origin: str, problems: List[Problem]) -> None:
    """Leaves out an ApplicationEnvironment whose DN an earlier one has.

    ``<value>_<ResourceID>`` can repeat only under one manager, for two
    ResourceIDs equal ignoring case or where one ends with ``_`` and the
    other ('b' and 'a_b'): only such pairs are compared, value by value.
    """
    for index, later in enumerate(environments):
        for earlier in environments[:index]:
            if _may_clash(earlier, later):
                _exclude_taken(earlier, later, origin, problems)


def _may_clash(first: ExecutionEnvironment, second: ExecutionEnvironment) -> bool:
    if dn_key(first.manager.dn) != dn_key(second.manager.dn):
        return False
    one, other = first.node.id.lower(), second.node.id.lower()
    return one == other or one.endswith("_" + other) or other.endswith("_" + one)


def _exclude_taken(earlier: ExecutionEnvironment, later: ExecutionEnvironment, origin: str,
                   problems: List[Problem]) -> None:
    taken: Set[str] = {dn_key(earlier.application_dn(value)) for value in earlier.values}
    clashing = [value for value in later.values if dn_key(later.application_dn(value)) in taken]
    if not clashing:
        return
    later.excluded = later.excluded | {value.lower() for value in clashing}
    sc = later.subcluster
    path, line = (sc.entry.path, sc.entry.line) if sc.entry is not None else (origin, None)
    reason = (f"SubCluster {sc.unique_id}: {len(clashing)} GLUE 2 ApplicationEnvironment(s) would have the DN of "
              f"one of SubCluster {earlier.subcluster.unique_id}'s; left out")
    problems.append(Problem(path, line, reason, clashing[0]))
