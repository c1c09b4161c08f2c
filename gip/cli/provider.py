"""gip-provider: the program a CE's resource BDII runs every cycle.

Subcommands: ``plugin`` (changes for the BDII's plugin/ folder), ``merged``
(whole entries for its provider/ folder), ``wrap`` (runs the batch system's
plugin and sets the CE state in its output) and ``check`` (a summary for
people and monitoring). Inputs are site-info.def, the static LDIF files and
the tag folder; output is LDIF (RFC 2849, as bdii-update reads it) on stdout,
written at once at the end, because the BDII throws away all output of a run
it kills. Messages go to stderr, which is the BDII's log.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from gip import log
from gip.cli.program import (
    ArgumentParser, command_word, configure_logging, exit_at_once, new_parser, run, verbosity,
)
from gip.errors import EXIT_FAILED, EXIT_OK, ConfigError, ConfigInputError, UsageError
from gip.rendercache import RenderCache
from gip.report import Problem, summarize
from gip.siteconfig import POLICY_PRODUCTION_ONLY, PRODUCTION, SiteConfig, empty_site_config
from gip.tagfile import read_tag_file
from gip.tagtree import default_info_dir, scan_info_dir

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import IO, AbstractSet, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

    from gip.model import Share, Site, TagInput
    from gip.publish import Part
    from gip.staticldif import StaticEntry, StaticLdif
    from gip.wrap import Override, StartedPlugin

PROG = "gip-provider"
BDII_LDIF_DIR = "/var/lib/bdii/gip/ldif"
DEFAULT_STATIC_LDIF = (f"{BDII_LDIF_DIR}/static-file-CE.ldif", f"{BDII_LDIF_DIR}/static-file-Cluster.ldif")
STATIC_LDIF_VARIABLE = "GIP_STATIC_LDIF"
TEMPLATES_VARIABLE = "GIP_TEMPLATES"
GLUE_VERSIONS = ("1", "2", "both")
DEFAULT_WRAP_TIMEOUT = 120.0


DESCRIPTION = """\
Publishes a CE's software tags and CE state through its resource BDII.

  plugin   changes for the BDII's plugin/ folder, beside the static LDIF that
           YAIM made: the tags each static SubCluster lacks, and the CE state
  merged   whole entries for the BDII's provider/ folder: the static LDIF with
           tags and states merged in (--base static; the static files must then
           leave the BDII's ldif/ folder), or entries rendered from
           site-info.def (--base templates)
  wrap     runs the batch system's plugin (-- CMD ARGS...), sets the CE state in
           its output and adds the tag blocks: use it instead of plugin when a
           batch-system plugin runs, because two plugins that both print
           GlueCEStateStatus race each other and the winner is random
  check    a readable summary of what would be published, every skipped tag
           with file:line and reason; exit 1 when anything was skipped

--glue 2 or both adds GLUE 2 under GLUE2GroupID=resource,o=glue: a
GLUE2ApplicationEnvironment per tag and SubCluster (merged only: a plugin
cannot create entries) and the CE state on each ComputingShare (ServingState
for production, draining, queueing or closed; CEState=<value> in OtherInfo for
any other). With --base static the GLUE 2 entries of the static LDIF are the
parents, so give their files with --static-ldif too.

Environment: GIP_SITE_INFO (site-info.def), GIP_STATIC_LDIF (static LDIF files,
colon-separated), EDG_LOCATION_VAR (tags in $EDG_LOCATION_VAR/info),
GIP_TEMPLATES (a folder of site templates, looked up before gip's own),
GIP_CACHE_DIR (where renders of gip's own templates, compiled templates and the
reading of large static LDIF files are kept between runs; default gip-<uid> in
$TMPDIR or /tmp; empty: nothing kept).
"""


class Options:
    """What every subcommand reads, resolved from options, environment and defaults."""

    def __init__(self, site_info: Path, static_ldif: Tuple[str, ...], info_dir: Path, templates: Optional[Path],
                 every_case: bool, glue: str = "1", base: str = "static",
                 bdii_ldif_dir: Path = Path(BDII_LDIF_DIR), cache: Optional[RenderCache] = None) -> None:
        self.site_info = site_info
        self.static_ldif = static_ldif
        self.info_dir = info_dir
        self.templates = templates
        self.every_case = every_case
        self.glue = glue
        self.base = base
        self.bdii_ldif_dir = bdii_ldif_dir
        self.cache = cache


class Inputs:
    """Everything read, and every Problem met while reading."""

    def __init__(self, config: SiteConfig, config_error: Optional[str] = None) -> None:
        self.config = config
        self.entries: List[StaticEntry] = []
        self.tag_inputs: List[TagInput] = []
        self.problems: List[Problem] = []
        self.config_error = config_error


# -- the command line ------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    # A run lasts a moment and makes few reference cycles, but hundreds of thousands of
    # objects: the cycle collector, run as they are made, costs a third of a large site's time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return run(PROG, lambda: _main(argv, os.environ, sys.stdout))
    finally:
        if collecting:
            gc.enable()


def console_main() -> None:
    """The gip-provider command: main() on the command line, then the process ends at once
    (exit_at_once: nothing is left to do once the output is written)."""
    exit_at_once(main())


def _main(argv: Optional[Sequence[str]], environ: Mapping[str, str], stdout: IO[str]) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(command_word(words, COMMANDS)).parse_args(words)
    # Not a terminal: the BDII's log, which has no timestamps of its own per line.
    configure_logging(PROG, verbosity(args), timestamps=not sys.stderr.isatty())
    options = _options(args, environ)
    command: Callable[[argparse.Namespace, Options, IO[str]], int] = COMMANDS[args.command]
    return command(args, options, stdout)


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's (the others' options cost start-up time)."""
    parser = new_parser(PROG, DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=ArgumentParser)
    commands.required = True
    for name, add in _SUBCOMMANDS.items():
        if only is None or name == only:
            add(commands)
    return parser


def _plugin_parser(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    plugin = _subcommand(commands, "plugin", "changes for the BDII's plugin/ folder")
    _glue_option(plugin)


def _merged_parser(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    merged = _subcommand(commands, "merged", "whole entries for the BDII's provider/ folder")
    _glue_option(merged)
    _base_option(merged)


def _wrap_parser(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    wrap = _subcommand(commands, "wrap", "run the batch system's plugin and set the CE state in its output")
    wrap.add_argument("--timeout", type=_seconds, default=DEFAULT_WRAP_TIMEOUT, metavar="S",
                      help=f"stop the plugin after S seconds (default {DEFAULT_WRAP_TIMEOUT:g}; "
                           "the BDII's own limit is 300)")
    wrap.add_argument("plugin_command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                      help="the batch system's plugin and its arguments")
    _glue_option(wrap)


def _check_parser(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    check = _subcommand(commands, "check", "summary of what would be published; exit 1 if anything is skipped")
    _glue_option(check)
    _base_option(check)
    check.add_argument("--merged", action="store_true",
                       help="check the merged output (implied by --base templates): what it would skip, and "
                            "that the static files are not in the BDII's ldif/ folder")


_SUBCOMMANDS: Dict[str, Callable[["argparse._SubParsersAction[ArgumentParser]"], None]] = {
    "plugin": _plugin_parser, "merged": _merged_parser, "wrap": _wrap_parser, "check": _check_parser,
}


def _subcommand(commands: "argparse._SubParsersAction[ArgumentParser]", name: str, summary: str) -> ArgumentParser:
    parser = commands.add_parser(name, help=summary, description=summary)
    # Given after the subcommand too; SUPPRESS keeps a count given before it.
    parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="say more on stderr")
    parser.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS, help="say less on stderr")
    parser.add_argument("--site-info", metavar="FILE",
                        help="site-info.def (default: $GIP_SITE_INFO, else /etc/gip/site-info.def)")
    parser.add_argument("--static-ldif", metavar="FILE", action="append",
                        help="a static LDIF file, repeatable (default: $GIP_STATIC_LDIF, colon-separated, "
                             f"else {' and '.join(DEFAULT_STATIC_LDIF)})")
    parser.add_argument("--info-dir", metavar="DIR", type=Path,
                        help="the tag folder (default: $EDG_LOCATION_VAR/info, else /opt/edg/var/info)")
    parser.add_argument("--templates", metavar="DIR", type=Path,
                        help="site templates, looked up before gip's own (default: $GIP_TEMPLATES)")
    parser.add_argument("--bdii-ldif-dir", metavar="DIR", type=Path, default=Path(BDII_LDIF_DIR),
                        help=f"the BDII's ldif/ folder, for the merged-mode warning (default {BDII_LDIF_DIR})")
    return parser


def _glue_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--glue", choices=GLUE_VERSIONS, default="1", help="GLUE version(s) to print (default 1)")


def _base_option(parser: argparse.ArgumentParser) -> None:
    from gip.model import BASES

    parser.add_argument("--base", choices=BASES, default="static",
                        help="entries from the static LDIF (default) or rendered from site-info.def")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _options(args: argparse.Namespace, environ: Mapping[str, str]) -> Options:
    from gip.siteinfo import site_info_path

    return Options(
        site_info=site_info_path(args.site_info, environ),
        static_ldif=static_ldif_paths(args.static_ldif, environ),
        info_dir=args.info_dir or default_info_dir(environ),
        templates=args.templates or _path_from(environ, TEMPLATES_VARIABLE),
        every_case=verbosity(args) > 0,
        glue=getattr(args, "glue", "1"),
        base=getattr(args, "base", "static"),
        bdii_ldif_dir=args.bdii_ldif_dir,
        cache=RenderCache.from_environ(environ),
    )


def _path_from(environ: Mapping[str, str], variable: str) -> Optional[Path]:
    value = environ.get(variable)
    return Path(value) if value else None


def static_ldif_paths(option: Optional[Sequence[str]], environ: Mapping[str, str]) -> Tuple[str, ...]:
    """The static LDIF files: the options, else $GIP_STATIC_LDIF (colon-separated), else the BDII's two."""
    if option:
        return tuple(option)
    listed = [path for path in environ.get(STATIC_LDIF_VARIABLE, "").split(":") if path]
    return tuple(listed) if listed else DEFAULT_STATIC_LDIF


# -- reading ---------------------------------------------------------------------


def read_inputs(options: Options, static: bool, config_required: bool, printing: bool = False) -> Inputs:
    """Reads site-info.def, the static LDIF (when ``static``) and the tag files.

    An unusable site-info.def costs the state override and the VOS filter,
    never the tags, unless ``config_required`` (then it is raised: exit 3).
    A setting it cannot use costs that setting only (SiteConfig.problems).
    ``printing``: the static entries will be printed whole (merged output).
    """
    static_read: Optional[Callable[[], StaticLdif]] = None
    if static:
        from gip.model import static_questions
        from gip.staticldif import start_reading_static_ldif

        # Parsed beside the rest where it is worth it (see start_reading_static_ldif).
        static_read = start_reading_static_ldif(options.static_ldif, printing, static_questions(options.glue),
                                                options.cache)
    config, config_error = _site_config(options.site_info, config_required)
    inputs = Inputs(config=config, config_error=config_error)
    inputs.problems.extend(config.problems)
    tag_problems: List[Problem] = []
    inputs.tag_inputs = _read_tags(options.info_dir, config.vos, tag_problems)
    if static_read is not None:
        read = static_read()
        inputs.entries = read.entries
        inputs.problems += read.problems
    inputs.problems += tag_problems
    return inputs


def _site_config(path: Path, required: bool) -> Tuple[SiteConfig, Optional[str]]:
    from gip.siteconfig import load_site_config

    try:
        return load_site_config(path), None
    except (ConfigError, ConfigInputError) as error:
        if required:
            raise
        return empty_site_config(str(path)), str(error)


def _read_tags(info_dir: Path, vos: Optional[Sequence[str]], problems: List[Problem]) -> List[TagInput]:
    from gip.model import TagInput

    scan = scan_info_dir(info_dir, vos)
    problems.extend(scan.problems)
    inputs = []
    for source in scan.sources:
        try:
            tag_file = read_tag_file(source.path, source.vo)
        except OSError as error:
            reason = f"cannot read: {error.strerror or error}; VO {source.vo}'s tags from it are not published"
            problems.append(Problem(str(source.path), None, reason))
            continue
        problems.extend(tag_file.problems)
        inputs.append(TagInput(source, tag_file))
    return inputs


def build(options: Options, base: str, bdii_reads_static: bool) -> Tuple[Site, List[Problem], Optional[str]]:
    """Reads and decides: the Site, every Problem, and why site-info.def was unusable (or None).

    ``bdii_reads_static``: the static files are in the BDII's ldif/ folder and gip's
    output changes their entries (plugin, wrap), so they count as bdii-update reads them.
    """
    from gip.model import BASE_TEMPLATES, build_site

    templates = base == BASE_TEMPLATES
    # The static entries are printed whole where the BDII does not read them itself (merged output).
    inputs = read_inputs(options, static=not templates, config_required=templates, printing=not bdii_reads_static)
    site = build_site(inputs.config, inputs.entries, inputs.tag_inputs, base, options.glue, bdii_reads_static)
    return site, inputs.problems + site.problems, inputs.config_error


def application_problems(site: Site) -> List[Problem]:
    """What stops GLUE 2 ApplicationEnvironments: the static entries they need and do not find."""
    return list(site.glue2.missing) if site.glue2 is not None else []


# -- the subcommands --------------------------------------------------------------


def plugin_command(args: argparse.Namespace, options: Options, stdout: IO[str]) -> int:
    from gip.publish import MODE_PLUGIN, templates_for

    templates_for(MODE_PLUGIN, options.glue)
    site, problems, config_error = build(options, "static", bdii_reads_static=True)
    if site.glue2 is not None:
        log.warning("GLUE 2 ApplicationEnvironments are new entries, which a plugin cannot create: "
                    "gip-provider merged in the BDII's provider/ folder publishes them; this plugin sets "
                    "the ComputingShare states only")
    text = _render(site, MODE_PLUGIN, options, problems)
    return _finish(stdout, text, problems, config_error, options)


def merged_command(args: argparse.Namespace, options: Options, stdout: IO[str]) -> int:
    from gip.publish import MODE_MERGED_STATIC, MODE_MERGED_TEMPLATES, templates_for

    mode = MODE_MERGED_TEMPLATES if options.base == "templates" else MODE_MERGED_STATIC
    templates_for(mode, options.glue)
    site, problems, config_error = build(options, options.base, bdii_reads_static=False)
    problems.extend(application_problems(site))
    if options.base == "static":
        problems.extend(static_in_bdii_ldif_dir(options))
    text = _render(site, mode, options, problems)
    return _finish(stdout, text, problems, config_error, options)


def wrap_command(args: argparse.Namespace, options: Options, stdout: IO[str]) -> int:
    command = list(args.plugin_command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("wrap needs the batch system's plugin: gip-provider wrap [options] -- CMD ARGS...")
    from gip.wrap import start_plugin

    # Started first, the plugin (which may take seconds to ask the batch system) runs while gip reads.
    plugin = start_plugin(command, args.timeout)
    try:
        site, problems, config_error = build(options, "static", bdii_reads_static=True)
        parts, ok = wrapped_output(site, plugin, options, problems)
    except BaseException:
        plugin.stop()
        raise
    code = _finish(stdout, parts, problems, config_error, options)
    return code if ok else EXIT_FAILED


def check_command(args: argparse.Namespace, options: Options, stdout: IO[str]) -> int:
    merged = args.merged or options.base == "templates"
    # Without --merged, what the plugin would publish: the static files as the BDII reads them.
    site, problems, config_error = build(options, options.base, bdii_reads_static=not merged)
    problems.extend(application_problems(site))
    if merged:
        # Only the merged output prints values gip has not checked already (those of
        # the static entries, or site-info.def's): render it for what it would skip.
        from gip.publish import MODE_MERGED_STATIC, MODE_MERGED_TEMPLATES

        mode = MODE_MERGED_TEMPLATES if options.base == "templates" else MODE_MERGED_STATIC
        _render(site, mode, options, problems)
        if options.base == "static":
            problems.extend(static_in_bdii_ldif_dir(options))
    text = "\n".join(summary_lines(site, problems, config_error, options)) + "\n"
    _emit(stdout, text.encode("ascii", "backslashreplace"))
    return EXIT_FAILED if problems or config_error else EXIT_OK


COMMANDS: Dict[str, Callable[[argparse.Namespace, Options, IO[str]], int]] = {
    "plugin": plugin_command,
    "merged": merged_command,
    "wrap": wrap_command,
    "check": check_command,
}


def _render(site: Site, mode: str, options: Options, problems: List[Problem]) -> List[Part]:
    from gip.publish import Publisher, template_dirs

    publisher = Publisher(template_dirs(options.templates, problems), options.cache)
    parts = publisher.render_site_parts(site, mode, options.glue)
    problems.extend(publisher.problems)
    return parts


def static_in_bdii_ldif_dir(options: Options) -> List[Problem]:
    """Static files that the BDII also reads: their entries come first and hide gip's merged ones."""
    problems = []
    ldif_dir = _resolved(options.bdii_ldif_dir)
    for path in options.static_ldif:
        if Path(path).suffix == ".ldif" and _resolved(Path(path).parent) == ldif_dir:
            reason = ("in the BDII's ldif/ folder while gip prints merged entries: the BDII keeps the "
                      "static copy of each entry (the first it reads), without tags; move the file out")
            problems.append(Problem(path, None, reason))
    return problems


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


# -- wrap ------------------------------------------------------------------------


def wrapped_output(site: Site, plugin: StartedPlugin, options: Options,
                   problems: List[Problem]) -> Tuple[List[bytes], bool]:
    """The batch plugin's output with gip's states, then gip's tag blocks (as parts); and whether all went well."""
    from gip import wrap
    from gip.dnkey import dn_keys
    from gip.publish import Publisher, template_dirs

    publisher = Publisher(template_dirs(options.templates, problems))
    # The SubClusters' blocks carry tags, kept as parts (they are most of the output). The others set
    # states, and are made only where the plugin does not print their entry (wrap.BlocksOnDemand).
    subclusters = set(dn_keys([sc.entry.dn for sc in site.subclusters if sc.entry is not None]))
    blocks = publisher.plugin_blocks(site, options.glue, keys=subclusters)
    tags = dict(zip(dn_keys([dn for dn, _ in blocks]), [parts for _, parts in blocks]))
    problems.extend(publisher.problems)
    keys = [key for key in publisher.plugin_block_keys(site, options.glue) if key not in subclusters]

    def state_blocks() -> Dict[str, str]:
        reported = len(publisher.problems)
        made = publisher.plugin_blocks(site, options.glue, keys=set(keys))
        problems.extend(publisher.problems[reported:])
        texts = [b"".join(parts).decode("ascii").strip("\n") + "\n" for _, parts in made]
        return dict(zip(dn_keys([dn for dn, _ in made]), texts))

    fallbacks = wrap.BlocksOnDemand(keys, state_blocks)
    result = wrap.wrap(plugin.command, plugin.timeout, state_overrides(site, problems), fallbacks, watched=tags,
                       started=plugin)
    for note in result.notes:
        log.log(note.level, "%s", note.text)
    kept = _tag_blocks_to_add(tags, result.present, plugin.command[0], problems)
    return [result.data(), *_joined_blocks(result.text, kept)], result.ok


def _tag_blocks_to_add(tags: Dict[str, List[bytes]], printed: AbstractSet[str], plugin: str,
                       problems: List[Problem]) -> List[List[bytes]]:
    """gip's tag blocks for the SubClusters the plugin does not print itself (``printed``: DN keys).

    bdii-update reads only the first block of a DN in one plugin's output, so
    a tag block after the plugin's own block for that SubCluster would be lost.
    """
    kept = []
    for key, block in tags.items():
        if key in printed:
            reason = "prints a SubCluster itself, so gip cannot add its tags (bdii-update reads one block a DN)"
            problems.append(Problem(plugin, None, reason, key))
        else:
            kept.append(block)
    return kept


def state_overrides(site: Site, problems: List[Problem]) -> List[Override]:
    """One override per static GlueCE whose queue has a state set in site-info.def, then per share.

    A state that cannot be printed costs its queue's override, and is reported once.
    """
    from gip.model import STATE, state_problem
    from gip.wrap import Override

    config = site.config
    only_if = PRODUCTION if config.state_policy == POLICY_PRODUCTION_ONLY else None
    overrides = []
    for ce in site.ces:
        wanted = config.state_for(ce.queue)
        if ce.entry is None or wanted is None:
            continue
        problem = state_problem(config, ce.queue, wanted)
        if problem is not None:
            if problem not in problems:  # the model reports it where the static state would change
                problems.append(problem)
            continue
        overrides.append(Override(ce.entry.dn, STATE, wanted, only_if, ce.state))
    return overrides + _share_overrides(site)


def _share_overrides(site: Site) -> List[Override]:
    """ServingState overrides of the static shares, for a state of the GLUE 2 enumeration only.

    Another state goes into OtherInfo, which has many values that a plugin may
    print too: the share's fallback block carries it where the plugin does not
    print the share, and the wrap engine says so where it does.
    """
    from gip.model import SERVING_STATES
    from gip.wrap import GLUE2_STATE, Override

    config = site.config
    only_if = SERVING_STATES[0] if config.state_policy == POLICY_PRODUCTION_ONLY else None
    overrides = []
    for share in site.glue2.shares if site.glue2 is not None else ():
        wanted = config.state_for(share.queue)
        if share.entry is not None and wanted is not None and wanted.lower() in SERVING_STATES:
            overrides.append(Override(share.entry.dn, GLUE2_STATE, wanted.lower(), only_if, share.state))
    return overrides


def _joined_blocks(text: str, blocks: List[List[bytes]]) -> List[bytes]:
    """The blocks' parts, the blocks separated from ``text`` and from each other by one blank line."""
    from gip.wrap import separator

    if not blocks:
        return []
    parts = [separator(text).encode("ascii")]
    for block in blocks:
        parts += block
    # Each block ends with a blank line, which the last one does without.
    parts[-1] = parts[-1][:-1]
    return parts


# -- output and the report --------------------------------------------------------


def _finish(stdout: IO[str], parts: Sequence[Part], problems: List[Problem], config_error: Optional[str],
            options: Options) -> int:
    """Writes the output in one go, then the bounded report; the exit code says whether anything was skipped."""
    _emit(stdout, *parts)
    if config_error is not None:
        log.error("%s; publishing without the CE state override and the VOS filter", config_error)
    # What is wrong in site-info.def is the site admin's to mend, and stands out in the BDII's log.
    site_info = os.fspath(options.site_info)
    in_config = [problem for problem in problems if problem.path == site_info]
    for line in summarize(in_config, every_case=options.every_case):
        log.error("%s", line)
    others = [problem for problem in problems if problem.path != site_info] if in_config else problems
    for line in summarize(others, every_case=options.every_case):
        log.warning("%s", line)
    return EXIT_FAILED if problems or config_error is not None else EXIT_OK


def _emit(stdout: IO[str], *parts: Part) -> None:
    """Everything at the end, in one go: the BDII keeps nothing of a run it kills, so nothing goes out early.

    One write per part: an output of several hundred megabytes (GLUE 2
    ApplicationEnvironments) is not copied into one more buffer first. Those
    entries are made here, a chunk at a time (gip.publish.JoinedEntries):
    everything they hold was decided and checked before the first write.
    """
    chunks: Iterable[bytes]
    if all(isinstance(part, bytes) for part in parts):
        chunks = parts  # type: ignore[assignment]
    else:
        from gip.publish import parts_bytes  # loaded already: it made the parts that are not bytes

        chunks = parts_bytes(parts)
    buffer = getattr(stdout, "buffer", None)
    if buffer is None:
        stdout.write(b"".join(chunks).decode("utf-8", "surrogateescape"))
    else:
        stdout.flush()
        for chunk in chunks:
            buffer.write(chunk)
        buffer.flush()
    stdout.flush()


def summary_lines(site: Site, problems: List[Problem], config_error: Optional[str], options: Options) -> List[str]:
    """What check prints: inputs, tag counts per SubCluster and VO, CE states, every problem."""
    lines = [f"site-info.def: {site.config.path}" + (f" (unusable: {config_error})" if config_error else "")]
    lines += _tag_file_lines(site)
    lines += _subcluster_lines(site)
    lines += _ce_lines(site)
    lines += _glue2_lines(site)
    lines.append(f"skipped or wrong: {len(problems) + (1 if config_error else 0)}")
    if config_error:
        lines.append(f"  {config_error}; published without the CE state override and the VOS filter")
    lines += [f"  {line}" for line in summarize(problems, every_case=True)]
    return lines


def _tag_file_lines(site: Site) -> List[str]:
    lines = ["tag files:"]
    for tag_input in site.tag_inputs:
        where = tag_input.source.subcluster or "global"
        skipped = len(tag_input.file.problems)
        lines.append(f"  {tag_input.source.vo} ({where}): {len(tag_input.file.tags)} valid, {skipped} skipped"
                     f"  {tag_input.file.path}")
    return lines


def _subcluster_lines(site: Site) -> List[str]:
    lines = ["SubClusters:"]
    for sc in site.subclusters:
        origin = sc.entry.origin if sc.entry is not None else "rendered from site-info.def"
        lines.append(f"  {sc.unique_id} ({origin}): {len(sc.tags)} tags published, {len(sc.added)} added by gip")
        lines.append(f"    held already: {len(sc.held)}")
        for vo in sorted(set(sc.global_counts) | set(sc.own_counts)):
            lines.append(f"    {vo}: {sc.global_counts.get(vo, 0)} global, {sc.own_counts.get(vo, 0)} own")
    return lines


def _ce_lines(site: Site) -> List[str]:
    lines = [f"CEs (state policy {site.config.state_policy}):"]
    for ce in site.ces:
        before = ce.state if ce.state is not None else "(none)"
        after = ce.published_state if ce.published_state is not None else "(none)"
        change = f"{before} -> {after}" if ce.new_state is not None else f"{before} (unchanged)"
        lines.append(f"  {ce.unique_id} (queue {ce.queue}): {change}")
    return lines


def _glue2_lines(site: Site) -> List[str]:
    glue2 = site.glue2
    if glue2 is None:
        return []
    lines = [f"GLUE 2 ApplicationEnvironments: {glue2.application_count}"]
    for env in glue2.environments:
        lines.append(f"  {env.node.id} (SubCluster {env.subcluster.unique_id}, manager {env.manager.id}): "
                     f"{len(env.values)}")
    lines.append(f"GLUE 2 ComputingShares (state policy {site.config.state_policy}):")
    for share in glue2.shares:
        lines.append(f"  {share.node.id} (queue {share.queue or '(none)'}): {_share_change(share)}")
    return lines


def _share_change(share: Share) -> str:
    before = share.state if share.state is not None else "(none)"
    if share.new_state is not None:
        return f"{before} -> {share.new_state}"
    if share.ce_state is not None:
        return f"{before} (unchanged), OtherInfo CEState={share.ce_state}"
    return f"{before} (unchanged)"

