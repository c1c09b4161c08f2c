"""Rendering a Site as LDIF text through Jinja2 templates.

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

None prints nothing, so that ``| default(none)`` makes a key optional.
A value that fails the rule is left out and reported with where it came
from (``origin``: a static entry, or the file the render is made from). An
entry whose DN fails it is left out whole. Each filter output ends with its
newline, so a filter that prints nothing leaves no blank line: templates
write ``-}}`` where the next template line continues the same entry.
Entries are separated by one blank line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple

import gip
from gip.errors import ConfigError, GipError
from gip.ldifvalue import UnsafeValue, attribute_line, attribute_lines, dn_line
from gip.report import Problem

if TYPE_CHECKING:
    import jinja2

    from gip.model import Site

TEMPLATES_VARIABLE = "GIP_TEMPLATES"
GLUE1_BASE = "mds-vo-name=resource,o=grid"
GLUE_VERSIONS = ("1", "2", "both")

MODE_PLUGIN = "plugin"
MODE_MERGED_STATIC = "merged-static"
MODE_MERGED_TEMPLATES = "merged-templates"

# The templates each output renders, per GLUE version. GLUE 2 adds its own rows.
TEMPLATES: Dict[Tuple[str, str], Tuple[str, ...]] = {
    (MODE_PLUGIN, "1"): ("glue1-plugin.ldif.j2",),
    (MODE_MERGED_STATIC, "1"): ("glue1-merged-static.ldif.j2",),
    (MODE_MERGED_TEMPLATES, "1"): ("glue1-merged-templates.ldif.j2",),
}

# Marks an entry whose DN was refused, so that the whole entry is dropped.
_DROP = "\x00"
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
        found = TEMPLATES.get((mode, version))
        if found is None:
            raise GipError(f"GLUE {version} output of {mode} is not implemented yet")
        names += found
    return names


class Publisher:
    """One Jinja2 environment and the Problems its filters met; make one per run."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        import jinja2

        self.problems: List[Problem] = []
        self._origin = ""
        self._dropped = False
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.filters.update(
            dn=self.dn, line=self.line, lines=self.lines, attributes=self.attributes, rdn=rdn
        )
        self.env.globals.update(glue1_base=GLUE1_BASE)

    def render_site(self, site: Site, mode: str, glue: str) -> str:
        """The LDIF of one output: every template it needs, in order."""
        names = templates_for(mode, glue)
        return "".join(self.render(name, site.config.path, site=site, cfg=site.config.values) for name in names)

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

    # Filters

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
        try:
            return attribute_line(attribute, str(value))
        except UnsafeValue as error:
            self._report(error, origin, attribute, 0, "the value is not published")
            return ""

    def lines(self, values: Optional[Iterable[str]], attribute: str, origin: object = None) -> str:
        if values is None:
            return ""
        # The model's lists are lists of str already, and a tag list may hold 100,000.
        listed = values if isinstance(values, list) else [str(value) for value in values]
        try:
            return attribute_lines(attribute, listed)
        except UnsafeValue:
            return "".join(self._each_line(listed, attribute, origin))

    def attributes(self, pairs: Iterable[Tuple[str, List[str]]], origin: object = None) -> str:
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
