"""lcg-ManageVOTag and lcg-tags: the historical syntax of the ESM's tag commands.

Install jobs have called these two commands for years; each call here becomes
one ``gip-tags`` operation, run on this machine or on the CE over ssh
(gip.remote), and its answer is printed the way those scripts expect:

* ``lcg-ManageVOTag -host CE -vo VO`` with one of ``-list``,
  ``-add -tag T [T2 ...] [-tag T3 ...]``, ``-add -file F``, ``-remove -tag T ...``,
  ``-remove -file F``, ``-replace -tag OLD NEW``. Every option takes one dash or
  two (scripts in the wild mix them: ``--add -tag``). ``-list`` prints the tags
  comma-separated on one line; a change prints one line naming the tags, the
  grid identity (else the account) and the attribute. ``-remove`` first asks on
  stdin, as the original did: ``y`` or ``yes`` (what ``yes`` and ``echo yes``
  pipe in) goes ahead, anything else changes nothing.
* ``lcg-tags (--ce CE | --sc SUBCLUSTER) --vo VO (--list | --add | --remove |
  --clean) [--tags a,b,c | --tagfile F]``: ``--sc`` alone means this machine's
  per-SubCluster file; ``--list`` prints one tag per line; nothing is asked.

Tag files named by ``-file`` / ``--tagfile`` are read here, with the
provider's tag-file reader, and their tags sent as arguments: a remote CE never
needs the local file. VO names, SubCluster IDs and tags are checked with the
provider's rules before anything runs, so nothing that could mean something
to a shell ever leaves this machine; exit codes are gip-tags's (0 done,
1 refused, 2 usage, 3 configuration).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence, TextIO, Tuple

from gip import log
from gip.cli.program import ArgumentParser, configure_logging, new_parser, run, verbosity, write_report
from gip.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, GipError, InputError, UsageError
from gip.remote import Reply, Runner, check_host, runner_for
from gip.report import printable, shown, summarize
from gip.tags import RUNTIME_ENVIRONMENT, TagRule, subcluster_id_problem, vo_name_problem


MANAGE_VO_TAG = "lcg-ManageVOTag"
LCG_TAGS = "lcg-tags"
LIST, ADD, REMOVE, REPLACE, CLEAN = "list", "add", "remove", "replace", "clean"
YES_ANSWERS = ("y", "yes")

_TAG_SEPARATORS = re.compile(r"[\s,]+")
# What a listed tag may hold: anything else would change the meaning of the printed list.
_TAG_TEXT = re.compile(r"[A-Za-z0-9._-]+")
_REMOTE_HELP = (
    "A CE other than this machine (localhost, its host names, CE_HOST of\n"
    "site-info.def) is reached with 'ssh CE gip-tags ...' and uses its own\n"
    "settings; GIP_SSH replaces the ssh command, e.g. 'ssh -p 2222 -i KEY'."
)
_ACTION_HELP = {
    LIST: "print the tags",
    ADD: "add the tags given",
    REMOVE: "remove the tags given (matched ignoring case)",
    REPLACE: "replace -tag OLD by NEW in one change",
    CLEAN: "remove every tag: the file stays, empty",
}

# Picks where an operation runs: (host or None, environment, --site-info) -> runner.
ChooseRunner = Callable[[Optional[str], Mapping[str, str], Optional[str]], Runner]


@dataclass(frozen=True)
class Operation:
    """One gip-tags command on one tag file, as the legacy syntax asked for it."""

    command: str
    vo: str
    tags: Tuple[str, ...] = ()
    subcluster: Optional[str] = None
    info_dir: Optional[str] = None

    def argv(self) -> List[str]:
        """gip-tags's arguments; --info-dir only when given, so a remote CE uses its own."""
        words = ["--json", "--vo", self.vo]
        if self.subcluster is not None:
            words += ["--sc", self.subcluster]
        if self.info_dir is not None:
            words += ["--info-dir", self.info_dir]
        words.append(self.command)
        if self.command == CLEAN:
            words.append("--yes")
        return words + list(self.tags)


# Checking what is sent


def check_names(vo: str, subcluster: Optional[str]) -> None:
    """Refuses a VO name or SubCluster ID that could leave the tag folder (exit 2, as gip-tags)."""
    problem = vo_name_problem(vo)
    if problem is not None:
        raise UsageError(f"invalid VO name {shown(vo)}: {problem}")
    if subcluster is not None:
        problem = subcluster_id_problem(subcluster)
        if problem is not None:
            raise UsageError(f"invalid SubCluster ID {shown(subcluster)}: {problem}")


def check_operation(operation: Operation) -> None:
    """Refuses names and tags the provider would refuse, before anything runs anywhere."""
    check_names(operation.vo, operation.subcluster)
    rule = TagRule(operation.vo)
    for index, tag in enumerate(operation.tags):
        problem = _tag_problem(rule, tag, _names_existing(operation.command, index))
        if problem is not None:
            raise GipError(f"tag {shown(tag)} refused: {problem}; nothing changed")


def _names_existing(command: str, index: int) -> bool:
    """Tags to remove, and the OLD of replace, name tags already held."""
    return command == REMOVE or (command == REPLACE and index == 0)


def _tag_problem(rule: TagRule, tag: str, existing: bool) -> Optional[str]:
    # gip-tags finds held tags ignoring case, the VO- prefix included.
    if existing and tag[:len(rule.prefix)].lower() == rule.prefix.lower():
        tag = rule.prefix + tag[len(rule.prefix):]
    return rule.problem(tag)


def split_tags(values: Sequence[str]) -> Tuple[str, ...]:
    """``--tags a,b,c`` (repeatable): commas or blanks between tags."""
    return tuple(tag for value in values for tag in _TAG_SEPARATORS.split(value) if tag)


def read_tags(path: str, vo: str) -> Tuple[str, ...]:
    """The tags of a local tag file, read as the provider reads one; any bad token refuses all."""
    from gip.tagfile import read_tag_file

    try:
        found = read_tag_file(Path(path), vo)
    except OSError as error:
        raise InputError(path, None, f"cannot read: {error.strerror or error}") from None
    if found.problems:
        for line in summarize(found.problems, every_case=True):
            log.info("%s", line)
        more = len(found.problems) - 1
        extra = f" (and {more} more; -v lists them)" if more else ""
        raise GipError(f"{found.problems[0]}{extra}; nothing changed")
    if not found.tags:
        raise InputError(path, None, "holds no tags; nothing changed")
    return tuple(found.tags)


# Running and reporting


def perform(operation: Operation, runner: Runner) -> Reply:
    log.debug("gip-tags %s", " ".join(operation.argv()))
    reply = runner(operation.argv())
    for line in reply.messages:
        log.info("remote: %s", printable(line))
    return reply


def identity(document: Mapping[str, object]) -> str:
    """Who made the change: the grid identity where gip-tags knew one, else the account."""
    for key in ("identity", "account"):
        value = document.get(key)
        if value:
            return printable(str(value))
    return "unknown"


def listed_tags(reply: Reply) -> List[str]:
    """The tags of a reply; a value that is no tag (from a remote gip-tags that is not one) is left out, and said."""
    tags = reply.document.get("tags")
    if not isinstance(tags, list):
        return []
    return _only_tags(tags)


def _only_tags(values: List[object]) -> List[str]:
    kept = [value for value in values if isinstance(value, str) and _TAG_TEXT.fullmatch(value)]
    if len(kept) != len(values):
        log.warning("the answer lists %d values that are not tags; left out", len(values) - len(kept))
    return kept


def failure(reply: Reply) -> int:
    """Reports a refused or failed operation in one line; returns its exit code."""
    said = printable(reply.error) if reply.error else f"failed with exit code {reply.exit_code}; nothing changed"
    log.error("%s", said)
    # gip-tags's own codes pass through; any other (a remote that is not gip-tags) is a failure.
    return reply.exit_code if reply.exit_code in (EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG) else EXIT_FAILED


def bracketed(tags: Sequence[str]) -> str:
    return "[" + ", ".join(tags) + "]"


def manage_vo_tag_summary(operation: Operation, reply: Reply) -> str:
    """The line lcg-ManageVOTag prints after a change."""
    who = identity(reply.document)
    if operation.command == ADD:
        return (f"{MANAGE_VO_TAG}: {bracketed(operation.tags)} submitted for addition by {who} "
                f"to {RUNTIME_ENVIRONMENT}")
    if operation.command == REMOVE:
        removed = reply.document.get("removed")
        tags = _only_tags(removed) if isinstance(removed, list) and removed else list(operation.tags)
        return f"{MANAGE_VO_TAG}: {bracketed(tags)} removed by {who} from {RUNTIME_ENVIRONMENT}"
    old, new = operation.tags
    return (f"{MANAGE_VO_TAG}: {bracketed([old])} replaced with {bracketed([new])} by {who} "
            f"in {RUNTIME_ENVIRONMENT}")


def confirm(question: str, stdin: TextIO, stderr: TextIO) -> bool:
    """Reads one answer line; EOF or anything but y/yes is no.

    The question is shown to a person at a terminal only: scripts pipe the
    answer in, and their stderr is kept for what went wrong.
    """
    if stdin.isatty():
        stderr.write(question)
        stderr.flush()
    answer = stdin.readline()
    return answer.strip().lower() in YES_ANSWERS


# lcg-ManageVOTag


def _both(name: str) -> Tuple[str, str]:
    """The one-dash and two-dash spellings of a historical option."""
    return f"-{name}", f"--{name}"


def manage_vo_tag_parser() -> ArgumentParser:
    parser = new_parser(MANAGE_VO_TAG, "Lists, adds, removes or replaces a VO's software tags on a CE.\n"
                        "-list prints them comma-separated on one line; -remove asks\n"
                        "for y or yes on stdin first.\n\n"
                        + _REMOTE_HELP)
    # '-host' must never be read as '-h ost', nor '-vo' as an abbreviation.
    parser.allow_abbrev = False
    parser.add_argument(*_both("host"), required=True, metavar="CE",
                        help="the CE: this machine's name, or another reached over ssh")
    parser.add_argument(*_both("vo"), required=True, metavar="VO", help="the VO whose tags to manage")
    action = parser.add_mutually_exclusive_group(required=True)
    for command in (LIST, ADD, REMOVE, REPLACE):
        action.add_argument(*_both(command), dest="command", action="store_const", const=command,
                            help=_ACTION_HELP[command])
    source = parser.add_mutually_exclusive_group()
    source.add_argument(*_both("tag"), dest="tags", nargs="+", action="extend", default=[], metavar="TAG",
                        help="a tag (repeatable, or several after one -tag); -replace takes OLD NEW")
    source.add_argument(*_both("file"), dest="file", metavar="F",
                        help="a local tag file whose tags to add or remove")
    _add_passthrough(parser, both=True)
    return parser


def _add_passthrough(parser: ArgumentParser, both: bool) -> None:
    """Options of gip's own: one or two dashes in lcg-ManageVOTag, like its historical ones."""
    def spelled(name: str) -> Tuple[str, ...]:
        return _both(name) if both else (f"--{name}",)

    parser.add_argument(*spelled("info-dir"), metavar="DIR",
                        help="the tag folder to use (passed to gip-tags; a remote CE uses its own otherwise)")
    parser.add_argument(*spelled("site-info"), metavar="FILE",
                        help="site-info.def, whose CE_HOST names this machine too")


def manage_vo_tag_operation(args: argparse.Namespace) -> Operation:
    command: str = args.command
    tags: List[str] = args.tags
    if command == LIST and (tags or args.file):
        raise UsageError("-list takes no -tag or -file")
    if command == REPLACE and (args.file or len(tags) != 2):
        raise UsageError("-replace takes -tag OLD NEW")
    if command in (ADD, REMOVE) and not tags and not args.file:
        raise UsageError(f"-{command} needs -tag TAG... or -file F")
    if args.file:
        check_names(args.vo, None)
        tags = list(read_tags(args.file, args.vo))
    return Operation(command, args.vo, tuple(tags), info_dir=args.info_dir)


def manage_vo_tag(
    args: argparse.Namespace, environ: Mapping[str, str], stdin: TextIO, stdout: TextIO, stderr: TextIO,
    choose: ChooseRunner = runner_for,
) -> int:
    host = check_host(args.host)
    operation = manage_vo_tag_operation(args)
    check_operation(operation)
    if operation.command == REMOVE:
        question = f"Remove {bracketed(operation.tags)} of VO {operation.vo} from {host}? [y/N] "
        if not confirm(question, stdin, stderr):
            log.error("not confirmed (answer y or yes on stdin): nothing removed")
            return EXIT_FAILED
    reply = perform(operation, choose(host, environ, args.site_info))
    if reply.exit_code != EXIT_OK:
        return failure(reply)
    if operation.command == LIST:
        return _written(stdout, ", ".join(listed_tags(reply)) + "\n", reply)
    return _written(stdout, manage_vo_tag_summary(operation, reply) + "\n", reply)


def _written(stdout: TextIO, text: str, reply: Reply) -> int:
    return write_report(stdout, text, bool(reply.document.get("changed")))


def manage_vo_tag_main(argv: Sequence[str] | None = None) -> int:
    """lcg-ManageVOTag: the historical syntax, on this machine or on the CE over ssh."""

    def body() -> int:
        args = manage_vo_tag_parser().parse_args(argv)
        configure_logging(MANAGE_VO_TAG, verbosity(args))
        return manage_vo_tag(args, os.environ, sys.stdin, sys.stdout, sys.stderr)

    return run(MANAGE_VO_TAG, body)


# lcg-tags


def lcg_tags_parser() -> ArgumentParser:
    parser = new_parser(LCG_TAGS, "Lists, adds, removes or cleans a VO's software tags on a CE or SubCluster.\n"
                        "--sc alone means that SubCluster's file on this machine;\n"
                        "--list prints one tag per line.\n\n"
                        + _REMOTE_HELP)
    parser.add_argument("--ce", metavar="CE", help="the CE: this machine's name, or another reached over ssh")
    parser.add_argument("--sc", metavar="SUBCLUSTER", help="the SubCluster whose own tags to manage")
    parser.add_argument("--vo", required=True, metavar="VO", help="the VO whose tags to manage")
    action = parser.add_mutually_exclusive_group(required=True)
    for command in (LIST, ADD, REMOVE, CLEAN):
        action.add_argument(f"--{command}", dest="command", action="store_const", const=command,
                            help=_ACTION_HELP[command])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--tags", action="append", default=[], metavar="a,b,c", help="tags, comma-separated")
    source.add_argument("--tagfile", metavar="F", help="a local tag file whose tags to add or remove")
    _add_passthrough(parser, both=False)
    return parser


def lcg_tags_operation(args: argparse.Namespace) -> Operation:
    command: str = args.command
    if args.ce is None and args.sc is None:
        raise UsageError("one of --ce CE or --sc SUBCLUSTER is required")
    if command in (LIST, CLEAN) and (args.tags or args.tagfile):
        raise UsageError(f"--{command} takes no --tags or --tagfile")
    tags = split_tags(args.tags)
    if args.tagfile:
        check_names(args.vo, args.sc)
        tags = read_tags(args.tagfile, args.vo)
    if command in (ADD, REMOVE) and not tags:
        raise UsageError(f"--{command} needs --tags a,b,c or --tagfile F")
    return Operation(command, args.vo, tags, subcluster=args.sc, info_dir=args.info_dir)


def lcg_tags(
    args: argparse.Namespace, environ: Mapping[str, str], stdout: TextIO, choose: ChooseRunner = runner_for,
) -> int:
    if args.ce is not None:
        check_host(args.ce)
    operation = lcg_tags_operation(args)
    check_operation(operation)
    reply = perform(operation, choose(args.ce, environ, args.site_info))
    if reply.exit_code != EXIT_OK:
        return failure(reply)
    if operation.command == LIST:
        return _written(stdout, "".join(f"{tag}\n" for tag in listed_tags(reply)), reply)
    _say_changed(operation, reply)
    return EXIT_OK


def _say_changed(operation: Operation, reply: Reply) -> None:
    """--verbose: what changed, in which file, by whom."""
    document = reply.document
    for key in ("added", "removed"):
        tags = document.get(key)
        if isinstance(tags, list) and tags:
            log.info("%s: %s", key, ", ".join(_only_tags(tags)))
    if not document.get("changed"):
        log.info("nothing changed: the file already held what was asked")
    log.info("%s of VO %s in %s, by %s", operation.command, operation.vo, printable(str(document.get("file"))),
             identity(document))


def lcg_tags_main(argv: Sequence[str] | None = None) -> int:
    """lcg-tags: the historical syntax, on this machine or on the CE over ssh."""

    def body() -> int:
        args = lcg_tags_parser().parse_args(argv)
        configure_logging(LCG_TAGS, verbosity(args))
        return lcg_tags(args, os.environ, sys.stdout)

    return run(LCG_TAGS, body)
