"""Rendering a Site as LDIF text: gip's own writer, and Jinja2 templates.

What the BDII needs in a fixed shape is written by gip itself, without
templates and without importing Jinja2: the plugin's change blocks (their
shape is bdii-update's, DESIGN.md §3, §5) and the merged static entries (the
static LDIF's own, with gip's values in place). Templates render what gip
makes from site-info.def (``merged --base templates``) and the GLUE 2
ApplicationEnvironments, whose layout a site may want to change.

Templates are looked up in the site's own folder first (``--templates`` or
``$GIP_TEMPLATES``), then in gip's: ``gip/templates`` in an installed
package, the checkout's ``templates/`` in a plain checkout or an editable
install. A site overrides one template by putting a file of the same name in
its folder.

No value reaches the output except through gip.ldifvalue (the LDIF-safe rule
of DESIGN.md §3 and RFC 2849's base64 rule). Templates print values with
these filters only:

``{{ dn | dn }}``                     the ``dn:`` line of an entry
``{{ value | line("Attr") }}``        one ``Attr: value`` line
``{{ values | lines("Attr") }}``      one line per value; a tag list is one call
``{{ pairs | attributes(entry) }}``   (attribute, values) pairs, in order
``{{ value | rdn }}``                 a value escaped for use in a DN (RFC 4514)
``{{ values | prefixed("Key=") }}``   each value after a prefix, for ``lines``: one call
                                      where a loop would call ``line`` per value
``{{ env | application_environments }}``  every GLUE 2 ApplicationEnvironment of
                                      one ExecutionEnvironment (see below)

None prints nothing, so that ``| default(none)`` makes a key optional.
A value that fails the rule is left out and reported with where it came
from (``origin``: a static entry, or the file the render is made from). An
entry whose DN fails it is left out whole. Each filter output ends with its
newline, so a filter that prints nothing leaves no blank line: templates
write ``-}}`` where the next template line continues the same entry.
Entries are separated by one blank line.

A site's ApplicationEnvironments number one per tag and SubCluster: 420,000
on a large site, too many for a template loop. gip's own
``glue2-appenv.ldif.j2`` (one entry for ``value`` and ``env``) is rendered
twice per ExecutionEnvironment instead, with two marker values of different
lengths; where both renders cut at their marker give the same pieces, every
entry is those pieces joined around its value. That is exact for a value that
gip.tags' rule would pass (ASCII letters, digits and ``._-``, starting with a
letter or digit): such a value needs no RFC 4514 escape, no RFC 2849 base64,
and cannot make ``dn:``. Each batch of values is checked against that
character set at once, and its entries are made a megabyte at a time by one
%-format each, as they are printed (JoinedEntries); a value outside it, a render that
differs, or a site's own copy of the template (which may look at the value in
any way) gets the template rendered per entry.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import gip
from gip.errors import ConfigError
from gip.ldifvalue import UnsafeValue, attribute_line, attribute_lines, attributes_block, dn_line, plain_value_lines
from gip.report import Problem
from gip.tags import ValidTags

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import (AbstractSet, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar,
                        Union)

    import jinja2

    from gip.model import ComputingElement, ExecutionEnvironment, Share, Site
    from gip.rendercache import RenderCache
    from gip.staticldif import StaticEntry

    _Item = TypeVar("_Item")
    # What render_site_parts() gives: bytes, or entries made as they are printed.
    Part = Union[bytes, "JoinedEntries"]
    # Publisher._recorded(): the render's bytes pieces, what goes between them, the Problems' fields.
    _Record = Tuple[List[bytes], List[Tuple[Any, ...]], List[Tuple[Any, ...]]]

GLUE1_BASE = "mds-vo-name=resource,o=grid"

MODE_PLUGIN = "plugin"
MODE_MERGED_STATIC = "merged-static"
MODE_MERGED_TEMPLATES = "merged-templates"

APPLICATION_TEMPLATE = "glue2-appenv.ldif.j2"
CE_TEMPLATE = "glue1-ce.ldif.j2"
VOVIEW_TEMPLATE = "glue1-voview.ldif.j2"
SHARE_TEMPLATE = "glue2-share.ldif.j2"
# What APPLICATION_TEMPLATE reads of its ExecutionEnvironment: the key of its kept pieces holds each.
APPLICATION_READS = ("application_dn", "application_id", "manager.id", "manager.dn", "node.id")
# The templates each output renders, per GLUE version; gip's writer does the rest.
TEMPLATES: Dict[Tuple[str, str], Tuple[str, ...]] = {
    (MODE_PLUGIN, "1"): (),
    (MODE_MERGED_STATIC, "1"): (),
    (MODE_MERGED_TEMPLATES, "1"): ("glue1-merged-templates.ldif.j2",),
    (MODE_PLUGIN, "2"): (),
    (MODE_MERGED_STATIC, "2"): (APPLICATION_TEMPLATE,),
    (MODE_MERGED_TEMPLATES, "2"): ("glue2-merged-templates.ldif.j2",),
}
RUNTIME_ENVIRONMENT = "GlueHostApplicationSoftwareRunTimeEnvironment"
CE_STATE = "GlueCEStateStatus"
SERVING_STATE = "GLUE2ComputingShareServingState"
OTHER_INFO = "GLUE2EntityOtherInfo"
# Two values the rule below passes, of different lengths and shapes: see the module docstring.
_MARKERS = ("VO-gip-marker-4f1c9", "0gipMark.b7_")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SAFE_CHARACTERS_OR_NEWLINE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-\n"
# In values framed by line breaks: one empty, or starting with a character _SAFE_VALUE allows only later.
_UNSAFE_START = re.compile(rb"\n[\n._-]")
# Entries made by one formatting operation: about a megabyte, small enough to be made in the CPU's cache.
_CHUNK_BYTES = 1 << 20

# Marks an entry whose DN was refused, so that the whole entry is dropped.
_DROP = "\x00"
# Brackets the number of deferred data: no value gip prints holds a control character.
_DEFERRED = "\x01gip-deferred\x01"
_MODIFY = "changetype: modify\n"
_DEFERRED_MARK = re.compile(re.escape(_DEFERRED) + r"(\d+)" + re.escape(_DEFERRED))
# RFC 4514 escapes these anywhere in a value ('=' too, as python-ldap does); NUL as \\00.
_RDN_ESCAPES = str.maketrans({**{char: "\\" + char for char in '\\,+"<>;='}, "\x00": "\\00"})
_UNDEFINED_NAME = re.compile(r"has no attribute '([^']+)'|'([^']+)' is undefined")


def builtin_template_dir() -> Path:
    """gip's own templates: the installed package's, else the checkout's."""
    package = Path(gip.__file__).resolve().parent
    installed = package / "templates"
    if installed.is_dir():
        return installed
    return package.parent / "templates"


def template_dirs(site_dir: Optional[Path], problems: List[Problem]) -> List[Path]:
    """The folders to look templates up in, the site's first."""
    builtin = builtin_template_dir()
    if site_dir is None:
        return [builtin]
    if not site_dir.is_dir():
        problems.append(Problem(str(site_dir), None, "no such templates folder; gip's own templates are used"))
        return [builtin]
    return [site_dir, builtin]


def templates_for(mode: str, glue: str) -> Tuple[str, ...]:
    """The templates one output renders, in order; GLUE ``both`` is 1 then 2."""
    versions = ("1", "2") if glue == "both" else (glue,)
    names: Tuple[str, ...] = ()
    for version in versions:
        names += TEMPLATES[(mode, version)]
    return names


class Publisher:
    """The Problems its writer and filters met, and a Jinja2 environment made when a template is needed.

    Make one per run.
    """

    def __init__(self, dirs: Sequence[Path], cache: Optional[RenderCache] = None) -> None:
        self.problems: List[Problem] = []
        self._dirs = list(dirs)
        # Renders kept between runs (gip.rendercache): used for gip's own templates only.
        self._cache = cache
        # While the entries rendered from site-info.def are recorded for the cache: the index of
        # each SubCluster's tags and each ExecutionEnvironment by id(); what those print is described.
        self._recording: Optional[Dict[int, Tuple[str, int]]] = None
        self._unrecorded = False
        self._env: Optional["jinja2.Environment"] = None
        self._deferred: List[Any] = []  # a Sequence[bytes] each; a _Described while recording
        self._origin = ""
        self._dropped = False
        # Rendered TagList parts by (attribute, id): the part is kept too, so its id stays its own.
        self._parts: Dict[Tuple[str, int], Tuple[List[str], str]] = {}
        self._single_lines: Dict[Tuple[str, str], str] = {}
        # The bytes of each TagList part whose values are printed in ApplicationEnvironments (safe_values).
        self._safe_parts: Dict[int, Tuple[object, List[bytes]]] = {}
        # gip's own ApplicationEnvironment template, read once for the keys of its kept pieces.
        self._application_text: Optional[str] = None

    @property
    def env(self) -> "jinja2.Environment":
        """The templates' environment, made on first use: most outputs need no template."""
        if self._env is None:
            self._env = self._environment()
        return self._env

    def _environment(self) -> "jinja2.Environment":
        import jinja2

        from gip.model import GLUE2_BASE

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in self._dirs]),
            bytecode_cache=_bytecode_cache(self._cache),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        env.filters.update(
            dn=self.dn, line=self.line, lines=self.lines, attributes=self.attributes, rdn=rdn, prefixed=prefixed,
            application_environments=self.application_environments, ce_entries=self.ce_entries,
            share_entries=self.share_entries,
        )
        env.globals.update(glue1_base=GLUE1_BASE, glue2_base=GLUE2_BASE)
        return env

    def render_site(self, site: Site, mode: str, glue: str) -> str:
        """The LDIF of one output: every template it needs, in order."""
        return b"".join(parts_bytes(self.render_site_parts(site, mode, glue))).decode("utf-8")

    def render_site_parts(self, site: Site, mode: str, glue: str) -> List[Part]:
        """render_site() as the UTF-8 parts to write one after the other.

        The ApplicationEnvironments of a large site are hundreds of megabytes:
        kept as parts of their own, they are never copied into the text
        around them nor encoded again.
        """
        self._origin = site.config.path
        versions = ("1", "2") if glue == "both" else (glue,)
        if mode in (MODE_PLUGIN, MODE_MERGED_STATIC):
            write = self._plugin_text if mode == MODE_PLUGIN else self._merged_static_text
            text = "".join(write(site, version) for version in versions)
            text = _without_dropped(text) if _DROP in text else text
        else:
            return self._rendered_from_site_info(site, mode, glue)
        return self._resolved(text)

    # Entries rendered from site-info.def, kept between runs

    def _rendered_from_site_info(self, site: Site, mode: str, glue: str) -> List[Part]:
        """The templates of ``merged --base templates`` rendered, as render_site_parts gives them.

        With a cache and gip's own templates only, the render is kept with
        each SubCluster's tags and each ExecutionEnvironment's
        ApplicationEnvironments described, not printed (gip's templates print
        those only through the ``lines`` and ``application_environments``
        filters); the next run with the same site-info.def and templates
        reads it back and prints what it describes from its own tags.
        """
        names = templates_for(mode, glue)
        if self._cache is None or self._dirs != [builtin_template_dir()]:
            return self._resolved(self._rendered(site, names))
        from gip.rendercache import code_identity, folder_texts

        key = repr((code_identity(), folder_texts(self._dirs[0]), mode, glue, site.config))
        slot = f"entries {mode} {glue} {site.config.path}"
        kept = self._cache.get(slot, key)
        if not _usable_record(kept, site):
            kept = self._recorded(site, names)
            if kept is None:
                return self._resolved(self._rendered(site, names))
            self._cache.put(slot, key, kept)
        return self._from_record(site, kept)  # type: ignore[arg-type]

    def _rendered(self, site: Site, names: Sequence[str]) -> str:
        return "".join(self.render(name, site.config.path, site=site, cfg=site.config.values) for name in names)

    def _recorded(self, site: Site, names: Sequence[str]) -> Optional[_Record]:
        """The render with what depends on the tags described: (bytes pieces, descriptions, problems);
        None where something the templates printed could not be described (nothing is left of it)."""
        before = len(self.problems)
        self._recording = {id(sc.tags): ("tags", index) for index, sc in enumerate(site.subclusters)}
        for index, env in enumerate(site.glue2.environments if site.glue2 is not None else ()):
            self._recording[id(env)] = ("applications", index)
        self._unrecorded = False
        try:
            text = self._rendered(site, names)
        finally:
            self._recording = None
        problems = [tuple(problem) for problem in self.problems[before:]]
        del self.problems[before:]
        deferred, self._deferred = self._deferred, []
        self._parts.clear()
        if self._unrecorded:
            return None
        pieces: List[bytes] = []
        described: List[Tuple[Any, ...]] = []
        current: List[bytes] = []
        for index, piece in enumerate(_DEFERRED_MARK.split(text)):
            if index % 2 == 0:
                current.append(piece.encode("utf-8"))
                continue
            data = deferred[int(piece)]
            if isinstance(data, _Described):
                pieces.append(b"".join(current))
                current = []
                described.append(data.what)
            else:
                current += data
        pieces.append(b"".join(current))
        return pieces, described, problems

    def _from_record(self, site: Site, record: _Record) -> List[Part]:
        """The parts of a recorded render, what it describes printed from ``site``."""
        pieces, described, problems = record
        self.problems.extend(Problem(*problem) for problem in problems)
        parts: List[Part] = [pieces[0]]
        for what, piece in zip(described, pieces[1:]):
            if what[0] == "tags":
                text = self.lines(site.subclusters[what[1]].tags, what[2], what[3])
            else:
                text = self.application_environments(site.glue2.environments[what[1]])  # type: ignore[union-attr]
            parts += self._resolved(text, clear=False)
            parts.append(piece)
        self._deferred.clear()
        self._parts.clear()
        return [part for part in parts if part]

    def _described(self, values: object, what: Tuple[Any, ...]) -> Optional[str]:
        """While recording: the mark that stands for what ``values`` prints; None where it is not known."""
        if self._recording is None:
            return None
        known = self._recording.get(id(values))
        if known is None or known[0] != what[0] or not all(item is None or type(item) is str for item in what[1:]):
            self._unrecorded = True
            return None
        self._deferred.append(_Described((known[0], known[1], *what[1:])))
        return f"{_DEFERRED}{len(self._deferred) - 1}{_DEFERRED}"

    # gip's writer

    def _plugin_text(self, site: Site, version: str) -> str:
        """The changes for the BDII's plugin/ folder: one ``changetype: modify`` block per DN.

        GLUE 1: a SubCluster gains the tags its static entry does not hold,
        with ``add:`` (which creates or extends the attribute; a static value
        is never sent again); a GlueCE's state is replaced where the entry
        has the attribute and added where it has not, since bdii-update
        ignores ``replace:`` of an absent attribute.

        GLUE 2: a block per static ComputingShare whose state gip sets.
        ServingState (single-valued) is replaced or added as GLUE 1's state
        is. A CEState is added to OtherInfo (many values, maybe none yet);
        where the share holds an older CEState, its OtherInfo is replaced by
        its own values with the new CEState instead, since one block must not
        delete and add one attribute. ApplicationEnvironments are new
        entries, which bdii-update cannot create from a plugin: only the
        merged output prints them.
        """
        return "".join(text for _, text in self._plugin_blocks(site, version))

    def plugin_blocks(self, site: Site, glue: str, keys: Optional[AbstractSet[str]] = None
                      ) -> List[Tuple[str, List[bytes]]]:
        """The plugin output's blocks one by one: the DN of each, and its parts as render_site_parts gives them.

        ``keys``: only the blocks of the DNs whose gip.dnkey.dn_key() it holds, the others not made at
        all; None: every block. A SubCluster that is a GlueCE too has one block for both.
        """
        from gip.model import glue_versions

        self._origin = site.config.path
        blocks = [block for version in glue_versions(glue) for block in self._plugin_blocks(site, version, keys)]
        # A block holds lines only, never entries made as they are printed; most (the states) hold no mark.
        resolved = [(dn, _bytes_only(self._resolved(text, clear=False)) if _DEFERRED in text else [text.encode()])
                    for dn, text in blocks if _DROP not in text]
        self._deferred.clear()
        self._parts.clear()
        return resolved

    def plugin_block_keys(self, site: Site, glue: str) -> List[str]:
        """The dn_key() of each block that plugin_blocks() gives, in its order, without making any."""
        from gip.dnkey import dn_keys
        from gip.model import glue_versions

        dns = [dn for version in glue_versions(glue) for dn, _, _ in _plugin_sources(site, version)]
        return list(dict.fromkeys(dn_keys(dns)))

    def _plugin_blocks(self, site: Site, version: str, keys: Optional[AbstractSet[str]] = None
                       ) -> List[Tuple[str, str]]:
        """_plugin_text() as (DN, block) pairs, each block ending with a blank line; ``keys`` as plugin_blocks'."""
        sources = _plugin_sources(site, version)
        if keys is not None:
            from gip.dnkey import dn_keys

            sources = [source for source, key in zip(sources, dn_keys([dn for dn, _, _ in sources])) if key in keys]
        blocks = [(dn, write(self, item)) for dn, write, item in sources]
        return _one_block_per_dn(blocks) if version == "1" else blocks

    def _tag_block(self, added: Tuple[StaticEntry, Sequence[str]]) -> str:
        entry, tags = added
        return "".join([self.dn(entry.dn, entry), _MODIFY, f"add: {RUNTIME_ENVIRONMENT}\n",
                        self.lines(tags, RUNTIME_ENVIRONMENT, entry), "-\n\n"])

    def _state_block(self, ce: ComputingElement) -> str:
        assert ce.entry is not None
        operation = "replace" if ce.has_state else "add"
        return "".join([self.dn(ce.entry.dn, ce.entry), _MODIFY, f"{operation}: {CE_STATE}\n",
                        self.line(ce.new_state, CE_STATE), "-\n\n"])

    def _share_block(self, share: Share) -> str:
        assert share.entry is not None
        block = [self.dn(share.entry.dn, share.entry), _MODIFY]
        if share.new_state is not None:
            operation = "replace" if share.has_state else "add"
            block += [f"{operation}: {SERVING_STATE}\n", self.line(share.new_state, SERVING_STATE), "-\n"]
        if share.ce_state is not None:
            operation, values = share.other_info_change()
            block += [f"{operation}: {OTHER_INFO}\n", self.lines(values, OTHER_INFO, share.entry), "-\n"]
        return "".join(block) + "\n"

    def _merged_static_text(self, site: Site, version: str) -> str:
        """The static entries of one GLUE version's tree with gip's values in place, in file order,
        each ending with a blank line; for GLUE 2 then the ApplicationEnvironments of each SubCluster.

        An entry whose file holds it in plain lines that print as they are
        (StaticEntry.prints_as_written) goes out line for line as the file has
        it, gip's values spliced in; any other, attribute by attribute.
        """
        from gip.model import merged_attributes

        pieces: List[str] = []
        for entry, replaced in site.merged_changes(version):
            pieces.append(self.dn(entry.dn, entry))
            source = entry.plain_source()
            if source is not None and entry.prints_as_written():
                pieces += self._spliced(entry, source, replaced) if replaced else [source[0][source[2]:source[3]], "\n"]
            else:
                pieces.append(self.attributes(merged_attributes(entry, replaced), entry))
            pieces.append("\n")
        if version == "2" and site.glue2 is not None:
            pieces += [self.application_environments(env) for env in site.glue2.environments]
        return "".join(pieces)

    def _defer(self, *data: Part) -> str:
        """Keeps ``data`` (parts to print one after the other) aside; the returned mark stands for it in the text."""
        self._deferred.append(data)
        return f"{_DEFERRED}{len(self._deferred) - 1}{_DEFERRED}"

    def _resolved(self, text: str, clear: bool = True) -> List[Part]:
        """The text cut at its marks, the deferred data in their places; ``clear`` forgets the data."""
        # split() with a group: the text, then each mark's number and the text after it.
        pieces = _DEFERRED_MARK.split(text)
        parts: List[Part] = []
        for index, piece in enumerate(pieces):
            if index % 2:
                parts += self._deferred[int(piece)]
            else:
                parts.append(piece.encode("utf-8"))
        if clear:
            self._deferred.clear()
            self._parts.clear()
            self._safe_parts.clear()
        return [part for part in parts if part]

    def render(self, name: str, origin: str, **variables: Any) -> str:
        """Renders one template; ``origin`` names where values without one came from."""
        import jinja2

        self._origin = origin
        self._dropped = False
        try:
            text = self.env.get_template(name).render(**variables)
        except jinja2.UndefinedError as error:
            raise ConfigError(_undefined_message(error, origin, name)) from error
        except jinja2.TemplateNotFound as error:
            raise ConfigError(f"template {error.name} not found") from error
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError(f"{error.filename or error.name}:{error.lineno}: {error.message}") from error
        return _without_dropped(text) if self._dropped else text

    def _render_nested(self, template: "jinja2.Template", **variables: Any) -> str:
        """Renders a template from inside a filter, leaving the outer render's state as it was."""
        import jinja2

        saved = (self._origin, self._dropped)
        self._dropped = False
        try:
            text = template.render(**variables)
        except jinja2.UndefinedError as error:
            raise ConfigError(_undefined_message(error, self._origin, template.name or "?")) from error
        finally:
            dropped = self._dropped
            self._origin, self._dropped = saved
        return _without_dropped(text) if dropped else text

    def _spliced(self, entry: "StaticEntry", source: Tuple[str, str, int, int],
                 replaced: Dict[str, Sequence[str]]) -> List[str]:
        """A plain entry's own lines with gip's values in place of a replaced attribute's lines
        (where its first line was; at the end where the entry has none), each piece ending a line."""
        text, lowered, start, end = source
        if len(replaced) == 1:
            # The common change, a CE's state: one attribute, on one line of the entry.
            ((key, values),) = replaced.items()
            needle = "\n" + key + ":"
            found = lowered.find(needle, start - 1, end)
            line_end = text.find("\n", found + 1, end) if found >= 0 else -1
            if line_end >= 0 and lowered.find(needle, line_end, end) < 0:
                instead = self.lines(values, text[found + 1:found + 1 + len(key)], entry)
                return [text[start:found + 1], instead, text[line_end + 1:end], "\n"]
        return self._spliced_lines(entry, source, replaced)

    def _spliced_lines(self, entry: "StaticEntry", source: Tuple[str, str, int, int],
                       replaced: Dict[str, Sequence[str]]) -> List[str]:
        """_spliced() of any entry and change."""
        from gip.model import SPELLING

        text, lowered, start, end = source
        cuts: List[Tuple[int, int, str]] = []  # each line to drop (from, to), and what goes in the first's place
        appended: List[str] = []
        for key, values in replaced.items():
            needle = "\n" + key + ":"
            found = lowered.find(needle, start - 1, end)
            if found < 0:
                appended.append(self.lines(values, SPELLING[key], entry))
                continue
            instead = self.lines(values, text[found + 1:found + 1 + len(key)], entry)
            while found >= 0:
                line_end = text.find("\n", found + 1, end)
                line_end = end if line_end < 0 else line_end
                cuts.append((found + 1, line_end + 1, instead))
                instead = ""
                found = lowered.find(needle, line_end, end)
        pieces: List[str] = []
        done = start
        for cut_from, cut_to, instead in sorted(cuts):
            pieces += [text[done:cut_from], instead]
            done = cut_to
        # The entry's last line, kept, needs its line end; one replaced has it already.
        pieces.append(text[done:end] + "\n" if done <= end else "")
        return pieces + appended

    # Filters

    def application_environments(self, env: ExecutionEnvironment) -> str:
        """The ApplicationEnvironment entries of one ExecutionEnvironment, each ending with a blank line.

        Deferred (see render_site_parts): the text holds a mark in their place.
        """
        if self._recording is not None:
            mark = self._described(env, ("applications",))
            if mark is not None:
                return mark
        values = env.values
        if not values:
            return ""
        return self._defer(*self._applications(env, values))

    def _applications(self, env: ExecutionEnvironment, values: Sequence[str]) -> List[Part]:
        """The entries as UTF-8 parts to print one after the other."""
        pieces = self._application_pieces(env)
        if pieces is None:
            template = self.env.get_template(APPLICATION_TEMPLATE)
            return ["".join(self._render_nested(template, value=value, env=env) for value in values).encode("utf-8")]
        safe = safe_values(values, self._safe_parts)
        if safe is not None:
            return [JoinedEntries(pieces, safe)]
        template = self.env.get_template(APPLICATION_TEMPLATE)
        parts: List[Part] = []
        # Runs of values the rule passes are joined a run at a time; each other value is rendered.
        for passes, run in itertools.groupby(values, lambda value: _SAFE_VALUE.fullmatch(value) is not None):
            if passes:
                parts += joined_entries(pieces, [value.encode("ascii") for value in run])
            else:
                parts.append("".join(self._render_nested(template, value=value, env=env)
                                     for value in run).encode("utf-8"))
        return parts

    def _application_pieces(self, env: ExecutionEnvironment) -> Optional[List[str]]:
        """_pieces() of the ApplicationEnvironment template for ``env``; with a cache, kept between runs.

        The key holds what gip's own template reads of ``env``
        (APPLICATION_READS); a test holds the template to that.
        """
        builtin = builtin_template_dir()
        if self._cache is None or not self._found_in(APPLICATION_TEMPLATE, builtin):
            return self._pieces(self.env.get_template(APPLICATION_TEMPLATE), env)
        from gip.rendercache import code_identity

        if self._application_text is None:
            try:
                self._application_text = (builtin / APPLICATION_TEMPLATE).read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                return self._pieces(self.env.get_template(APPLICATION_TEMPLATE), env)
        text = self._application_text
        read = tuple((env.application_dn(marker), env.application_id(marker)) for marker in _MARKERS)
        key = repr((code_identity(), text, self._origin, read, env.manager.id, env.manager.dn, env.node.id))
        slot = f"applications {self._origin} {env.node.id}"
        kept: Any = self._cache.get(slot, key)
        if _usable_pieces(kept):
            self.problems.extend(Problem(*problem) for problem in kept[1])
            return kept[0]  # type: ignore[no-any-return]
        before = len(self.problems)
        pieces = self._pieces(self.env.get_template(APPLICATION_TEMPLATE), env)
        self._cache.put(slot, key, (pieces, [tuple(problem) for problem in self.problems[before:]]))
        return pieces

    def _found_in(self, name: str, folder: Path) -> bool:
        """True where template ``name`` is looked up and found in ``folder`` (no folder before it has one)."""
        for searched in self._dirs:
            if searched == folder:
                return (folder / name).is_file()
            if (searched / name).is_file():
                return False
        return False

    def ce_entries(self, ces: Sequence[ComputingElement], site: Site, cfg: Any) -> str:
        """Each GlueCE (glue1-ce.ldif.j2) followed by its GlueVOViews (glue1-voview.ldif.j2), stamped.

        The CEs of one shape (ID prefix, state, access rules) differ only in
        their queue name: see _stamped().
        """
        from gip.model import ComputingElement

        ce_template, view_template = self.env.get_template(CE_TEMPLATE), self.env.get_template(VOVIEW_TEMPLATE)
        stamping = _builtin(ce_template) and _builtin(view_template)

        def shape(ce: ComputingElement) -> Optional[Tuple[Any, ...]]:
            prefix = ce.unique_id[:-len(ce.queue)]
            if not stamping or not prefix.endswith("-"):
                return None
            return prefix, ce.state, ce.new_state, ce.access_rules

        def marked(ce: ComputingElement, marker: str) -> ComputingElement:
            prefix = ce.unique_id[:-len(ce.queue)]
            return ComputingElement(prefix + marker, marker, None, ce.state, ce.new_state, ce.access_rules)

        def render(ce: ComputingElement) -> str:
            text = self._render_nested(ce_template, site=site, cfg=cfg, ce=ce)
            return text + "".join(self._render_nested(view_template, site=site, cfg=cfg, ce=ce, view=view)
                                  for view in ce.views)

        return self._stamped(ces, lambda ce: ce.queue, shape, marked, render)

    def share_entries(self, shares: Sequence[Share], site: Site, cfg: Any) -> str:
        """Each ComputingShare and its MappingPolicy (glue2-share.ldif.j2), stamped.

        The shares of one shape (VO, rules, states) differ only in their
        queue name, which starts their ID: see _stamped().
        """
        from gip.model import Glue2Node, Share

        template = self.env.get_template(SHARE_TEMPLATE)
        stamping = _builtin(template)

        def parts(share: Share) -> Optional[Tuple[str, str]]:
            """The ID after the queue name and the DN after the ID, where the DN needs no escape."""
            node, queue = share.node, share.queue or ""
            head = f"GLUE2ShareID={node.id},"
            if not stamping or not node.id.startswith(queue + "_") or not node.dn.startswith(head):
                return None
            return node.id[len(queue):], node.dn[len(head) - 1:]

        def shape(share: Share) -> Optional[Tuple[Any, ...]]:
            found = parts(share)
            if found is None:
                return None
            return (found, share.state, share.new_state, share.ce_state, tuple(share.other_info), share.vo,
                    share.rules)

        def marked(share: Share, marker: str) -> Share:
            id_rest, dn_rest = parts(share) or ("", "")
            node = Glue2Node(marker + id_rest, f"GLUE2ShareID={marker}{id_rest}{dn_rest}")
            return Share(node, marker, None, share.state, list(share.other_info), share.vo, share.rules,
                         share.new_state, share.ce_state)

        def render(share: Share) -> str:
            return self._render_nested(template, site=site, cfg=cfg, share=share)

        return self._stamped(shares, lambda share: share.queue or "", shape, marked, render)

    def _stamped(self, items: Sequence[_Item], value_of: Callable[[_Item], str],
                 shape_of: Callable[[_Item], Optional[Tuple[Any, ...]]], marked: Callable[[_Item, str], _Item],
                 render: Callable[[_Item], str]) -> str:
        """The entries of every item, rendered once per shape.

        A site has a GlueCE and a share per queue, thousands of them, mostly
        alike. With gip's own templates, the items of one shape (shape_of;
        None where gip's templates are not the ones used) are rendered for
        two marker values in place of the value they differ by (value_of),
        and where both renders cut at their marker into the same pieces, each
        item's entries are those pieces joined by its value, which must pass
        the rule a marker passes (no escape, no base64). What the render
        reported is reported for each item. Anything else is rendered per item.
        """
        shapes: Dict[Tuple[Any, ...], Optional[Tuple[List[str], List[Problem]]]] = {}
        texts = []
        for item in items:
            value = value_of(item)
            shape = shape_of(item) if _SAFE_VALUE.fullmatch(value) else None
            stamp = None
            if shape is not None:
                if shape not in shapes:
                    shapes[shape] = self._stamp(lambda marker: render(marked(item, marker)))
                stamp = shapes[shape]
            if stamp is None:
                texts.append(render(item))
                continue
            pieces, problems = stamp
            texts.append(value.join(pieces))
            self.problems.extend(_marker_replaced(problem, value) for problem in problems)
        return "".join(texts)

    def _stamp(self, render_marked: Callable[[str], str]) -> Optional[Tuple[List[str], List[Problem]]]:
        """The pieces of one render cut at its marker, and what it reported; None where the markers disagree."""
        before = len(self.problems)
        renders, found = [], []
        for marker in _MARKERS:
            renders.append(render_marked(marker))
            found.append(self.problems[before:])
            del self.problems[before:]
        pieces = renders[0].split(_MARKERS[0])
        return (pieces, found[0]) if pieces == renders[1].split(_MARKERS[1]) else None

    def _pieces(self, template: "jinja2.Template", env: ExecutionEnvironment) -> Optional[List[str]]:
        """One entry cut where its value goes, or None where that cannot be trusted (module docstring)."""
        if not _builtin(template):
            return None
        before = len(self.problems)
        first = self._render_nested(template, value=_MARKERS[0], env=env)
        found = [_unmarked(problem) for problem in self.problems[before:]]
        second = self._render_nested(template, value=_MARKERS[1], env=env)
        pieces = first.split(_MARKERS[0])
        same = pieces == second.split(_MARKERS[1])
        # What the two renders met, every entry meets alike: report it once (per entry where they differ).
        self.problems[before:] = found if same else []
        return pieces if same else None

    def dn(self, dn: str, origin: object = None) -> str:
        try:
            return dn_line(dn)
        except UnsafeValue as error:
            self._report(error, origin, "dn", 0, "the entry is not published")
            self._dropped = True
            return _DROP

    def line(self, value: Optional[str], attribute: str, origin: object = None) -> str:
        if value is None:
            return ""
        return self.lines([str(value)], attribute, origin)

    def lines(self, values: Optional[Iterable[str]], attribute: str, origin: object = None) -> str:
        if self._recording is not None and id(values) in self._recording:
            mark = self._described(values, ("tags", attribute, origin))
            if mark is not None:
                return mark
        if values is None:
            return ""
        parts = getattr(values, "parts", None)
        if parts is not None:
            return "".join(self._part_lines(part, attribute, origin) for part in parts)
        # The model's lists are lists of str already, and a tag list may hold 100,000.
        listed = values if isinstance(values, list) else [str(value) for value in values]
        if len(listed) == 1:
            # One value, mostly a state that thousands of entries publish alike: a line printed once
            # is printed again as it is (a value that fails is reported each time, where it is met).
            key = (attribute, listed[0])
            line = self._single_lines.get(key)
            if line is None:
                try:
                    line = self._single_lines[key] = attribute_line(attribute, listed[0])
                except UnsafeValue:
                    return "".join(self._each_line(listed, attribute, origin))
            return line
        if _inner_marks(listed):
            try:
                # attributes_block passes values with a ':' inside (IDs such as host:port/queue) in one
                # check, where attribute_lines checks each; both print the lines alike.
                return attributes_block([(attribute, listed)])
            except UnsafeValue:
                pass
        try:
            return attribute_lines(attribute, listed)
        except UnsafeValue:
            return "".join(self._each_line(listed, attribute, origin))

    def _part_lines(self, part: List[str], attribute: str, origin: object) -> str:
        """lines() of one part of a TagList; a part shared by several lists is rendered once.

        Deferred (see render_site_parts): a part may hold 100,000 lines, and
        its mark is all the template's text ever holds of it.
        """
        if not part:
            return ""
        key = (attribute, id(part))
        done = self._parts.get(key)
        if done is None or done[0] is not part:
            data = plain_value_lines(attribute, part, valid_tags=isinstance(part, ValidTags))
            if data is None:
                data = [self.lines(part, attribute, origin).encode("utf-8")]
            done = (part, self._defer(*data))
            self._parts[key] = done
        return done[1]

    def attributes(self, pairs: Iterable[Tuple[str, Sequence[str]]], origin: object = None) -> str:
        """Every attribute of an entry: the plain ones checked together, tag lists part by part."""
        pieces: List[str] = []
        plain: List[Tuple[str, Sequence[str]]] = []
        for name, values in pairs:
            if getattr(values, "parts", None) is not None:  # a TagList: see lines()
                pieces.append(self._plain_attributes(plain, origin))
                plain = []
                pieces.append(self.lines(values, name, origin))
            else:
                plain.append((name, values))
        pieces.append(self._plain_attributes(plain, origin))
        return "".join(pieces)

    def _plain_attributes(self, pairs: List[Tuple[str, Sequence[str]]], origin: object) -> str:
        try:
            return attributes_block(pairs)
        except UnsafeValue:
            return "".join(self.lines(values, name, origin) for name, values in pairs)

    def _each_line(self, values: List[str], attribute: str, origin: object) -> Iterable[str]:
        for index, value in enumerate(values):
            try:
                yield attribute_line(attribute, value)
            except UnsafeValue as error:
                self._report(error, origin, attribute, index, "the value is not published")

    def _report(self, error: UnsafeValue, origin: object, attribute: str, index: int, what: str) -> None:
        path, line = self._where(origin, attribute, index)
        self.problems.append(Problem(path, line, f"{error.reason}; {what}", error.value))

    def _where(self, origin: object, attribute: str, index: int) -> Tuple[str, Optional[int]]:
        """A static entry names its file and the value's line; anything else is the render's origin."""
        path = getattr(origin, "path", None)
        if path is None:
            return (origin if isinstance(origin, str) else self._origin), None
        line_of = getattr(origin, "line_of", None)
        line = line_of(attribute, index) if line_of is not None else None
        return str(path), line if line is not None else getattr(origin, "line", None)


def _inner_marks(values: List[str]) -> bool:
    """True where some value holds a ':', ' ' or '<', which attribute_lines checks value by value."""
    try:
        joined = "\n".join(values)
    except TypeError:
        return False
    return ":" in joined or " " in joined or "<" in joined


def _plugin_sources(site: Site, version: str) -> List[Tuple[str, Callable[[Publisher, Any], str], Any]]:
    """What the plugin output of one GLUE version holds a block for, in order: the entry's DN, the
    Publisher method that writes the block, and what it writes it from."""
    sources: List[Tuple[str, Callable[[Publisher, Any], str], Any]] = []
    if version == "1":
        for sc in site.subclusters:
            added = sc.added if sc.entry is not None else None
            if sc.entry is not None and added:
                sources.append((sc.entry.dn, Publisher._tag_block, (sc.entry, added)))
        for ce in site.ces:
            if ce.entry is not None and ce.new_state is not None:
                sources.append((ce.entry.dn, Publisher._state_block, ce))
    elif site.glue2 is not None:
        for share in site.glue2.shares:
            if share.entry is not None and share.changed:
                sources.append((share.entry.dn, Publisher._share_block, share))
    return sources


def _one_block_per_dn(blocks: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """The blocks with those of one DN joined: bdii-update applies one block per DN of a plugin's
    output, and an entry can be both a SubCluster and a GlueCE."""
    from gip.dnkey import dn_keys

    first: Dict[str, int] = {}
    joined: List[Tuple[str, str]] = []
    for (dn, text), key in zip(blocks, dn_keys([dn for dn, _ in blocks])):
        at = first.setdefault(key, len(joined))
        if at == len(joined):
            joined.append((dn, text))
            continue
        operations = text.split(_MODIFY, 1)[1]
        joined[at] = (joined[at][0], joined[at][1][:-1] + operations)  # its blank line goes to the end
    return joined


def _bytecode_cache(cache: Optional[RenderCache]) -> Optional["jinja2.BytecodeCache"]:
    """Compiled templates kept between runs in the folder of ``cache``, or None where none is to be kept.

    Compiling the templates is a fifth of a small site's run, every BDII
    cycle. Jinja2 keeps them keyed by each template's name and source, so an
    edited template is compiled again, in the cache's folder, which only this
    user may write to (RenderCache.usable). Keeping them must never cost the
    output: any failure to read or write them just compiles.
    """
    if cache is None or not cache.usable():
        return None
    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: "jinja2.bccache.Bucket") -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, EOFError, ValueError, TypeError):
                bucket.reset()

        def dump_bytecode(self, bucket: "jinja2.bccache.Bucket") -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    return QuietCache(str(cache.folder), "jinja2-%s.cache")


def rdn(value: str) -> str:
    """``value`` escaped for use as an attribute value in a DN (RFC 4514 section 2.4).

    Written here rather than taken from python-ldap's ldap.dn, whose import
    costs more than the whole render of a small site; a test holds the two equal.
    """
    text = str(value).translate(_RDN_ESCAPES)
    if text.endswith(" "):
        text = text[:-1] + "\\ "
    if text.startswith(("#", " ")):
        text = "\\" + text
    return text


def safe_values(values: Sequence[str], known: Optional[Dict[int, Tuple[object, List[bytes]]]] = None
                ) -> Optional[List[bytes]]:
    """The values as ASCII bytes where every one passes the rule of _SAFE_VALUE; else None.

    Checked with a few operations over all of them at once: a SubCluster may
    hold 100,000 values. The parts of a TagList that are ValidTags are not
    looked at: a valid tag (``VO-<vo>-<rest>``, tag characters only) passes the rule.
    ``known`` keeps each part's bytes by id(), for the next list that holds
    the part: every SubCluster holds the global tags.
    """
    parts = getattr(values, "parts", None)
    if parts is None:
        return _safe_values(values)
    safe: List[bytes] = []
    for part in parts:
        done = known.get(id(part)) if known is not None else None
        if done is not None and done[0] is part:
            safe += done[1]
            continue
        if isinstance(part, ValidTags):
            checked: Optional[List[bytes]] = "\n".join(part).encode("ascii").split(b"\n") if part else []
        else:
            checked = _safe_values(part)
        if checked is None:
            return None
        if known is not None:
            known[id(part)] = (part, checked)
        safe += checked
    return safe


def _safe_values(values: Sequence[str]) -> Optional[List[bytes]]:
    if not values:
        return []
    try:
        joined = "\n".join(values).encode("ascii")
    except UnicodeEncodeError:
        return None
    framed = b"\n" + joined + b"\n"
    # One line break per value (none inside one), no value empty or starting with one of '._-'.
    if (joined.translate(None, _SAFE_CHARACTERS_OR_NEWLINE) or joined.count(b"\n") != len(values) - 1
            or _UNSAFE_START.search(framed)):
        return None
    return joined.split(b"\n")


def prefixed(values: Iterable[object], prefix: str) -> List[str]:
    """Each value as a string, after ``prefix`` (as the template's ``prefix ~ value``)."""
    return [prefix + str(value) for value in values]


class _Described:
    """In place of deferred data while recording (Publisher._recorded): what prints there, from the site."""

    def __init__(self, what: Tuple[Any, ...]) -> None:
        self.what = what


def _usable_record(record: object, site: Site) -> bool:
    """True for a record of Publisher._recorded() whose descriptions name parts that ``site`` has."""
    if type(record) is not tuple or len(record) != 3:
        return False
    pieces, described, problems = record
    if type(pieces) is not list or type(described) is not list or len(pieces) != len(described) + 1:
        return False
    if not all(type(piece) is bytes for piece in pieces) or not _problem_tuples(problems):
        return False
    environments = len(site.glue2.environments) if site.glue2 is not None else 0
    for what in described:
        if type(what) is not tuple or len(what) < 2 or type(what[1]) is not int:
            return False
        if what[0] == "tags" and len(what) == 4 and 0 <= what[1] < len(site.subclusters):
            if type(what[2]) is str and (what[3] is None or type(what[3]) is str):
                continue
        elif what[0] == "applications" and len(what) == 2 and 0 <= what[1] < environments:
            continue
        return False
    return True


def _usable_pieces(record: object) -> bool:
    """True for a kept (pieces or None, problems) of Publisher._application_pieces()."""
    if type(record) is not tuple or len(record) != 2:
        return False
    pieces, problems = record
    if pieces is not None and (type(pieces) is not list or not all(type(piece) is str for piece in pieces)):
        return False
    return _problem_tuples(problems)


def _problem_tuples(problems: object) -> bool:
    """True for a list of Problem fields as kept: (path, line or None, reason, subject)."""
    if type(problems) is not list:
        return False
    for problem in problems:
        if type(problem) is not tuple or len(problem) != 4:
            return False
        path, line, reason, subject = problem
        if type(path) is not str or not (line is None or type(line) is int):
            return False
        if type(reason) is not str or type(subject) is not str:
            return False
    return True


def joined_entries(pieces: Sequence[str], values: Sequence[bytes]) -> List[bytes]:
    """One entry per value, ``pieces`` joined with the value between each two, as UTF-8 parts
    to print one after the other (JoinedEntries makes them as they are printed)."""
    return list(_joined_chunks(pieces, values))


class JoinedEntries:
    """joined_entries() of ``pieces`` and ``values``, made as it is printed: iterating gives the
    chunks, each made when the one before has been written (see parts_bytes).

    The ApplicationEnvironments of a large site are 300 MB: made a chunk at
    a time, they never exist at once, and each chunk reuses the memory of the
    last. Their values have passed the rule already; making a chunk is a
    %-format of bytes, which cannot fail on them.
    """

    __slots__ = ("pieces", "values")

    def __init__(self, pieces: Sequence[str], values: Sequence[bytes]) -> None:
        self.pieces = pieces
        self.values = values

    def __iter__(self) -> Iterator[bytes]:
        return _joined_chunks(self.pieces, self.values)

    def __bool__(self) -> bool:
        """False where it prints nothing, as an empty part."""
        return bool(self.values) and (len(self.pieces) > 1 or bool(self.pieces[0]))


def _bytes_only(parts: List[Part]) -> List[bytes]:
    """``parts``, which must all be bytes."""
    if not all(isinstance(part, bytes) for part in parts):
        raise TypeError("entries made as they are printed, where bytes were expected")
    return parts  # type: ignore[return-value]


def parts_bytes(parts: Iterable[Part]) -> Iterator[bytes]:
    """The bytes of render_site_parts()' parts, one chunk at a time."""
    for part in parts:
        if isinstance(part, bytes):
            yield part
        else:
            yield from part


def _joined_chunks(pieces: Sequence[str], values: Sequence[bytes]) -> Iterator[bytes]:
    """joined_entries() one chunk at a time.

    A chunk of entries is one %-format of the entry's form repeated: no
    string per entry, and no copy of the whole, which may be 300 MB.
    """
    form = b"%s".join(piece.encode("utf-8").replace(b"%", b"%%") for piece in pieces)
    count = len(pieces) - 1
    if not values or (count == 0 and not form):
        return
    arguments: List[bytes] = [b""] * (count * len(values))
    for index in range(count):
        arguments[index::count] = values
    size = len(form) + count * (sum(map(len, values)) // len(values))
    per_chunk = max(1, _CHUNK_BYTES // max(1, size))
    chunk_form = form * per_chunk
    for start in range(0, len(values), per_chunk):
        entries = min(per_chunk, len(values) - start)
        chunk = tuple(arguments[start * count:(start + entries) * count])
        yield (chunk_form if entries == per_chunk else form * entries) % chunk


def _builtin(template: "jinja2.Template") -> bool:
    """True for a template of gip's own folder, whose output depends on its values as gip knows."""
    return template.filename is not None and Path(template.filename).parent == builtin_template_dir()


def _marker_replaced(problem: Problem, value: str) -> Problem:
    """A problem met while rendering the first marker value, told of ``value``."""
    marker = _MARKERS[0]
    reason, subject = problem.reason.replace(marker, value), problem.subject.replace(marker, value)
    return Problem(problem.path, problem.line, reason, subject)


def _unmarked(problem: Problem) -> Problem:
    """A problem met while rendering a marker value, told of every value."""
    reason, subject = problem.reason, problem.subject
    for marker in _MARKERS:
        reason, subject = reason.replace(marker, "<each value>"), subject.replace(marker, "<each value>")
    return Problem(problem.path, problem.line, reason, subject)


def _without_dropped(text: str) -> str:
    """The text without the entries whose DN was refused (entries end at a blank line)."""
    entries = text.split("\n\n")
    return "\n\n".join(entry for entry in entries if _DROP not in entry)


def _undefined_message(error: "jinja2.UndefinedError", origin: str, name: str) -> str:
    found = _UNDEFINED_NAME.search(str(error))
    if found is None:
        return f"template {name}: {error}"
    key = found.group(1) or found.group(2)
    return f"{origin}: {key} is not set, and template {name} needs it"
