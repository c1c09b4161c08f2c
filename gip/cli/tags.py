"""gip-tags: the Experiment Software Manager's command for a VO's tag files.

``gip-tags [--info-dir D] [--vo VO] [--sc SUBCLUSTER] [--json] [--dry-run]
[--lock-timeout S] [-v|-q] COMMAND ...``: the program's options come before
the command word, the command's own after it. Every change goes through
gip.store (lock, atomic write, history); this module reads argv and the
environment, and turns results into the JSON document of ``--json`` or a
short line for a person.

``invoke(argv)`` runs a command and returns its exit code and the document
``--json`` prints, printing nothing on stdout: lcg-ManageVOTag, lcg-tags and
``ssh HOST gip-tags --json ...`` are built on it: it reports the error in the
document and logs nothing of its own about it (warnings, such as skipped
tokens of a hand-edited file, go to the ``gip`` logger).

``clean`` without ``--yes`` is a usage error (exit 2): the confirmation is a
missing argument. ``--dry-run`` writes nothing, not even the lock or the
history, and does not run a ``--validate`` command. The grid identity is read
only when a history record is written (``identity`` is null otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from gip import log
from gip.cli.program import command_word, configure_logging, new_parser, program_words, run, verbosity, write_report
from gip.errors import EXIT_OK, ConfigError, GipError, UsageError
from gip.identity import Who
from gip.report import Problem, shown, summarize
from gip.tagtree import default_info_dir

if TYPE_CHECKING:  # the store is imported where a command needs it: start-up time is benchmarked
    from gip.store import Plan, Transaction, TagPaths

    Planner = Callable[[Transaction], Plan]

PROG = "gip-tags"
DEFAULT_LOCK_TIMEOUT = 30.0
COMMANDS = ("list", "add", "remove", "replace", "clean", "history", "restore", "export", "import", "init")
TREE_COMMANDS = ("export", "import")
_OUTPUT_TAIL = 2000
_PAST = {"add": "added", "remove": "removed"}


DESCRIPTION = """\
Manage a VO's software tags (GlueHostApplicationSoftwareRunTimeEnvironment)
in the tag files that gip-provider publishes: <info-dir>/<vo>/<vo>.ldif, or
<info-dir>/<SubCluster>/<vo>/<vo>.ldif with --sc.

commands (options of the program go before the command word):
  list                         the tags, one per line
  add TAG... [--from-file F|-] [--validate -- CMD ARGS...]
  remove TAG... [--ignore-missing]
  replace OLD NEW
  clean --yes                  remove every tag (the file stays)
  history                      every recorded change, oldest first
  restore (--before TIME | --steps N)
  export [-o FILE]             the whole tag tree as one JSON document
  import FILE [--force]
  init --owner USER [--group GROUP]   (site admins: create the folder and file)

clean without --yes is a usage error (exit 2). --dry-run writes nothing and
does not run a --validate command.

environment: EDG_LOCATION_VAR (info dir is $EDG_LOCATION_VAR/info),
GIP_LOCK_TIMEOUT (seconds), X509_USER_PROXY (the grid identity recorded).
"""


class Outcome(NamedTuple):
    """What a command did: its exit code, the --json document, and the lines a person sees."""

    exit_code: int
    document: Dict[str, Any]
    text: List[str]


class Context:
    """One run: the parsed arguments and what they resolve to."""

    def __init__(self, args: argparse.Namespace, info_dir: Path, lock_timeout: float, who: Who,
                 stdin: Optional[BinaryIO], document: Dict[str, Any], text: List[str]) -> None:
        self.args = args
        self.info_dir = info_dir
        self.lock_timeout = lock_timeout
        self.who = who
        self.stdin = stdin
        self.document = document
        self.text = text

    def paths(self) -> TagPaths:
        from gip.store import locate

        if not self.args.vo:
            raise UsageError(f"{self.args.command} works on one VO's file: give --vo VO before the command word")
        paths = locate(self.info_dir, self.args.vo, self.args.sc)
        self.document["file"] = str(paths.tags)
        return paths

    def read_stdin(self) -> bytes:
        return (self.stdin or sys.stdin.buffer).read()


def main(argv: Optional[Sequence[str]] = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    return run(PROG, lambda: _main(arguments))


def invoke(
    argv: Sequence[str], *, environ: Optional[Mapping[str, str]] = None, stdin: Optional[BinaryIO] = None
) -> Outcome:
    """Runs ``gip-tags ARGV`` and returns its outcome; prints nothing on stdout."""
    return _invoke(list(argv), os.environ if environ is None else environ, stdin, None)


def _main(argv: List[str]) -> int:
    try:
        outcome = _invoke(argv, os.environ, None, lambda level: configure_logging(PROG, level))
    except SystemExit as done:  # --help and --version, printed by argparse
        return done.code if isinstance(done.code, int) else EXIT_OK
    if outcome.document["error"]:
        log.error("%s", outcome.document["error"])
    if _wants_json(argv):
        import json

        text = json.dumps(outcome.document) + "\n"
    else:
        text = "\n".join(outcome.text) + "\n" if outcome.text else ""
    written = write_report(sys.stdout, text, bool(outcome.document.get("changed")))
    # What was asked is done where it was a change; where it was the printing, it failed.
    return outcome.exit_code or written


def _invoke(
    argv: List[str], environ: Mapping[str, str], stdin: Optional[BinaryIO],
    configure: Optional[Callable[[int], None]],
) -> Outcome:
    who = Who.from_environment(environ)
    document = _blank_document(argv, who)
    text: List[str] = []
    context = None
    try:
        _refuse_set_id()
        args = parse_arguments(argv)
        if configure is not None:
            configure(verbosity(args))
        context = Context(args, _info_dir(args, environ), _lock_timeout(args, environ), who, stdin, document, text)
        document.update(command=args.command, vo=args.vo, subcluster=args.sc, dry_run=args.dry_run)
        _COMMANDS[args.command](context)
    except GipError as error:
        _failed(document, error, context)
    except OSError as error:
        # Every expected failure is a GipError; this one still gets its document and exit code 1.
        log.debug("unexpected", exc_info=True)
        _failed(document, GipError(f"{error.filename or PROG}: {error.strerror or error}"), context)
    document["identity"] = who.known_identity
    return Outcome(document["exit_code"], document, text)


def _failed(document: Dict[str, Any], error: GipError, context: Optional[Context]) -> None:
    """The document of a command that failed: the error, its details, and the tags left as they were."""
    document.update(ok=False, exit_code=error.exit_code, error=str(error), changed=False)
    document.update(getattr(error, "details", {}))
    if context is None or not document.get("file") or document["tags"]:
        return
    from gip.store import read_state

    try:
        document["tags"] = read_state(context.paths()).tags
    except (GipError, OSError):
        pass  # the error said already what is wrong; the tags are then unknown


def _blank_document(argv: Sequence[str], who: Who) -> Dict[str, Any]:
    options, word = program_words(argv, _VALUE_OPTIONS)
    return {
        "command": word if word in COMMANDS else "", "ok": True, "exit_code": EXIT_OK, "error": None,
        "vo": None, "subcluster": None, "file": None, "dry_run": "--dry-run" in options, "changed": False,
        "added": [], "removed": [], "tags": [], "account": who.account, "identity": None,
    }


def _wants_json(argv: Sequence[str]) -> bool:
    """--json among the program's options, found even when the rest does not parse."""
    return "--json" in program_words(argv, _VALUE_OPTIONS)[0]


def _refuse_set_id() -> None:
    if os.getuid() != os.geteuid() or os.getgid() != os.getegid():
        raise ConfigError(f"{PROG} refuses to run set-uid or set-gid: give the tag folder to the "
                          "software-manager account instead (see init)")


# Arguments.


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's (building all ten costs start-up time)."""
    parser = new_parser(PROG, DESCRIPTION)
    parser.add_argument("--info-dir", type=Path, metavar="D",
                        help="the tag folder (default $EDG_LOCATION_VAR/info, else /opt/edg/var/info)")
    parser.add_argument("--vo", help="the VO whose file to work on")
    parser.add_argument("--sc", metavar="SUBCLUSTER", help="the SubCluster's own file instead of the VO's global one")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout, failures included")
    parser.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    parser.add_argument("--lock-timeout", type=_seconds, metavar="S",
                        help="seconds to wait for another writer "
                             f"(default $GIP_LOCK_TIMEOUT, else {DEFAULT_LOCK_TIMEOUT:g})")
    # Naming prog here spares argparse a help formatter (and its imports) on every run.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", prog=PROG)
    commands.required = True
    for name in [only] if only else COMMANDS:
        _COMMAND_OPTIONS[name](commands)
    return parser


def _list_options(commands: Any) -> None:
    commands.add_parser("list", help="print the tags, one per line")


def _add_options(commands: Any) -> None:
    add = commands.add_parser("add", help="add tags (--validate -- CMD ARGS... runs CMD first)",
                              description="Add tags. --validate -- CMD ARGS... (last) runs CMD first and "
                              "publishes only if it exits 0.")
    add.add_argument("tags", nargs="*", metavar="TAG")
    add.add_argument("--from-file", metavar="F",
                     help="also add the tags of file F ('-': stdin), read as the provider reads")


def _remove_options(commands: Any) -> None:
    remove = commands.add_parser("remove", help="remove tags, matched ignoring case")
    remove.add_argument("tags", nargs="+", metavar="TAG")
    remove.add_argument("--ignore-missing", action="store_true", help="remove those there, ignore the others")


def _replace_options(commands: Any) -> None:
    replace = commands.add_parser("replace", help="replace OLD by NEW in one change")
    replace.add_argument("old", metavar="OLD")
    replace.add_argument("new", metavar="NEW")


def _clean_options(commands: Any) -> None:
    clean = commands.add_parser("clean", help="remove every tag")
    clean.add_argument("--yes", action="store_true", help="really remove every tag")


def _history_options(commands: Any) -> None:
    commands.add_parser("history", help="every recorded change, oldest first")


def _restore_options(commands: Any) -> None:
    restore = commands.add_parser("restore", help="put the file back as it was")
    when = restore.add_mutually_exclusive_group(required=True)
    when.add_argument("--before", metavar="TIME", help="ISO 8601; without a zone, UTC")
    when.add_argument("--steps", type=_steps, metavar="N", help="undo the last N changes")


def _export_options(commands: Any) -> None:
    export = commands.add_parser("export", help="the whole tag tree as one JSON document")
    export.add_argument("-o", "--output", metavar="FILE", help="write it to FILE (default stdout)")


def _import_options(commands: Any) -> None:
    imported = commands.add_parser("import", help="put back a tree saved with export")
    imported.add_argument("file", metavar="FILE", help="the export ('-': stdin)")
    imported.add_argument("--force", action="store_true", help="even over changes recorded after the export")


def _init_options(commands: Any) -> None:
    init = commands.add_parser("init", help="site admins: create the folder and an empty file for an sgm account")
    init.add_argument("--owner", required=True, metavar="USER")
    init.add_argument("--group", metavar="GROUP", help="pooled sgm accounts: folder 0775, file 0664")


_COMMAND_OPTIONS: Dict[str, Callable[[Any], None]] = {
    "list": _list_options, "add": _add_options, "remove": _remove_options, "replace": _replace_options,
    "clean": _clean_options, "history": _history_options, "restore": _restore_options,
    "export": _export_options, "import": _import_options, "init": _init_options,
}
_VALUE_OPTIONS = ("--info-dir", "--vo", "--sc", "--lock-timeout")


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """Parses as main does; ``--validate`` takes everything after it (and after ``--``)."""
    argv, validate = _split_validate(list(argv))
    args = build_parser(command_word(argv, COMMANDS, _VALUE_OPTIONS)).parse_args(argv)
    args.validate = validate
    if validate is not None and args.command != "add":
        raise UsageError("--validate goes with add")
    if args.command in TREE_COMMANDS and (args.vo or args.sc):
        raise UsageError(f"{args.command} works on the whole tag tree: drop --vo and --sc")
    return args


def _split_validate(argv: List[str]) -> Tuple[List[str], Optional[List[str]]]:
    """Takes ``--validate [--] CMD ARGS...`` off the end; a ``--`` before it makes it a plain word."""
    at = next((i for i, word in enumerate(argv) if word in ("--", "--validate")), None)
    if at is None or argv[at] == "--":
        return argv, None
    command = argv[at + 1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("--validate needs a command: add TAG... --validate -- CMD ARGS...")
    return argv[:at], command


def _steps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds, 0 or more: {text!r}")
    return value


def _info_dir(args: argparse.Namespace, environ: Mapping[str, str]) -> Path:
    return Path(args.info_dir) if args.info_dir else default_info_dir(environ)


def _lock_timeout(args: argparse.Namespace, environ: Mapping[str, str]) -> float:
    if args.lock_timeout is not None:
        return float(args.lock_timeout)
    configured = environ.get("GIP_LOCK_TIMEOUT")
    if not configured:
        return DEFAULT_LOCK_TIMEOUT
    try:
        return _seconds(configured)
    except argparse.ArgumentTypeError:
        raise ConfigError(f"GIP_LOCK_TIMEOUT={configured!r}: not a number of seconds") from None


# Commands.


def _list(ctx: Context) -> None:
    from gip.store import read_state

    state = read_state(ctx.paths())
    _warn_problems(state.problems, ctx)
    ctx.document.update(file=str(state.path), tags=state.tags)
    ctx.text.extend(state.tags)


def _add(ctx: Context) -> None:
    from gip.store import plan_add, refuse_invalid

    paths = ctx.paths()
    wanted = list(ctx.args.tags) + _tags_from_file(ctx)
    if not wanted:
        raise UsageError("add needs at least one tag, or --from-file F")
    refuse_invalid(paths.vo, wanted)
    plan = _edit(ctx, "add", lambda transaction: plan_add(transaction.state.tags, wanted), ctx.args.validate)
    _say(ctx, plan.added, "add", "to", f"nothing to add: {_count(len(wanted))} there already in {ctx.document['file']}")


def _remove(ctx: Context) -> None:
    from gip.store import plan_remove

    ignore = bool(ctx.args.ignore_missing)
    plan = _edit(ctx, "remove", lambda transaction: plan_remove(transaction.state.tags, ctx.args.tags, ignore))
    ctx.document["missing"] = plan.missing
    _say(ctx, plan.removed, "remove", "from", f"nothing to remove from {ctx.document['file']}")
    if plan.missing:
        ctx.text.append(f"not there (ignored): {' '.join(shown(t) for t in plan.missing)}")


def _replace(ctx: Context) -> None:
    from gip.store import plan_replace, refuse_invalid

    old, new = ctx.args.old, ctx.args.new
    refuse_invalid(ctx.paths().vo, [new])
    plan = _edit(ctx, "replace", lambda transaction: plan_replace(transaction.state.tags, old, new))
    verb = "would replace" if ctx.args.dry_run else "replaced"
    ctx.text.append(f"{verb} {old} with {new} in {ctx.document['file']}" if plan.changed
                    else f"nothing to replace: {new} is there already in {ctx.document['file']}")


def _clean(ctx: Context) -> None:
    from gip.store import plan_set

    if not ctx.args.yes:
        raise UsageError("clean removes every tag of the file: add --yes to do it")
    plan = _edit(ctx, "clean", lambda transaction: plan_set(transaction.state.tags, []))
    _say(ctx, plan.removed, "remove", "from", f"nothing to remove: {ctx.document['file']} holds no tags")


def _history(ctx: Context) -> None:
    from gip import history
    from gip.store import inspect

    transaction = inspect(ctx.paths(), ctx.who)
    read = history.read_history(transaction.paths.history)
    _warn_problems(read.problems, ctx)
    records = read.records + [dict(r, recorded=False) for r in transaction.pending]
    ctx.document.update(history=records, tags=transaction.state.sorted_tags)
    ctx.text.extend(history.describe(r) + (" (found now, not recorded yet)" if r.get("recorded") is False else "")
                    for r in records)


def _restore(ctx: Context) -> None:
    from gip import history
    from gip.store import plan_set

    args = ctx.args
    moment = _moment(args.before) if args.before is not None else None
    restored: Dict[str, Any] = {}

    def planner(transaction: Transaction) -> Plan:
        records = transaction.records()
        current = transaction.state.tags
        if moment is None:
            target = history.target_by_steps(records, int(args.steps), current)
        else:
            target = history.target_before_time(records, moment, current)
        restored.update(time=target.time, sha256=target.sha256, record=target.position + 1,
                        description=target.description)
        _refuse_what_was_never_a_tag(target.tags, args.vo, target.description)
        return plan_set(transaction.state.tags, target.tags)

    plan = _edit(ctx, "restore", planner, extra={"restored_to": restored})
    ctx.document["restored_to"] = restored
    verb = "would restore" if args.dry_run else "restored"
    when = restored.get("description")
    ctx.text.append(f"{verb} {ctx.document['file']} to its state {when}: "
                    f"{_count(len(plan.added))} back, {_count(len(plan.removed))} taken out" if plan.changed
                    else f"nothing to restore: {ctx.document['file']} is already as it was {when}")


def _refuse_what_was_never_a_tag(tags: Sequence[str], vo: str, when: str) -> None:
    """gip records only valid tags, unique ignoring case: a history that says otherwise was edited."""
    from gip.store import Refused
    from gip.tags import TagRule

    rule = TagRule(vo)
    bad = [tag for tag in tags if not rule.is_valid(tag)]
    if bad or len({tag.lower() for tag in tags}) != len(tags):
        what = f"{shown(bad[0])}, which is no tag of VO {vo}" if bad else "two spellings of one tag"
        raise Refused(f"the history gives the file's state {when} as holding {what}; gip never wrote that, "
                      "so the history was edited: nothing was changed")


def _export(ctx: Context) -> None:
    import time

    from gip import archive, history

    exported = archive.export_tree(ctx.info_dir, history.format_time(time.time()))
    text = archive.dump(exported)
    files = sum(len(folder["files"]) for folder in exported["folders"])
    ctx.document.update(file=ctx.args.output, files=files, folders=len(exported["folders"]))
    if ctx.args.output in (None, "-"):
        ctx.document["export"] = exported
        ctx.text.append(text.rstrip("\n"))
        return
    if not ctx.args.dry_run:
        archive.save(Path(ctx.args.output), text)
    ctx.text.append(f"{'would export' if ctx.args.dry_run else 'exported'} {files} files from {ctx.info_dir} "
                    f"to {ctx.args.output}")


def _import(ctx: Context) -> None:
    from gip import archive

    source = ctx.args.file
    data = ctx.read_stdin() if source == "-" else _read_bytes(Path(source))
    loaded = archive.load(data, source)
    written = archive.import_tree(ctx.info_dir, loaded, ctx.who, ctx.lock_timeout,
                                  force=bool(ctx.args.force), dry_run=bool(ctx.args.dry_run))
    ctx.document.update(file=source, changed=bool(written) and not ctx.args.dry_run, files=[str(p) for p in written],
                        exported=loaded.created, forced=bool(ctx.args.force))
    verb = "would import" if ctx.args.dry_run else "imported"
    ctx.text.append(f"{verb} {len(written)} files into {ctx.info_dir} (export made {loaded.created})")


def _init(ctx: Context) -> None:
    from gip.store import init_tag_file, resolve_owner

    paths = ctx.paths()
    owner = resolve_owner(ctx.args.owner, ctx.args.group)
    if ctx.args.dry_run:
        ctx.text.append(f"would make {paths.tags} {owner.describe()}")
        return
    created = init_tag_file(paths, owner, ctx.who, ctx.lock_timeout)
    ctx.document.update(changed=created, owner=owner.user, group=owner.group,
                        folder_mode=f"{owner.folder_mode:04o}", file_mode=f"{owner.file_mode:04o}")
    ctx.text.append(f"{'created' if created else 'kept'} {paths.tags}, {owner.describe()}")


_COMMANDS: Dict[str, Callable[[Context], None]] = {
    "list": _list, "add": _add, "remove": _remove, "replace": _replace, "clean": _clean, "history": _history,
    "restore": _restore, "export": _export, "import": _import, "init": _init,
}


# The edit every writing command shares.


def _edit(ctx: Context, command: str, planner: Planner,
          validate: Optional[List[str]] = None, extra: Optional[Dict[str, Any]] = None) -> Plan:
    """Plans under the lock and commits; --dry-run plans on what is there, unlocked."""
    from gip.store import editing, inspect

    paths = ctx.paths()
    if ctx.args.dry_run or validate is not None:
        # Refusals and no-ops are found before the ESM's script runs: it may take long.
        preview = planner(inspect(paths, ctx.who))
        if ctx.args.dry_run or not preview.changed:
            return _previewed(ctx, preview, validate)
    validation = None if validate is None else run_validation(validate)
    if validation is not None:
        ctx.document["validation"] = validation
    with editing(paths, ctx.who, ctx.lock_timeout) as transaction:
        _warn_problems(transaction.state.problems, ctx)
        plan = _plan_noting(transaction, command, planner, validation)
        if plan.changed:
            transaction.commit(plan, command, _merged(extra, validation))
        elif validation is not None:
            transaction.note(command, {"validation": validation})
    _report(ctx, plan, written=True)
    return plan


def _previewed(ctx: Context, plan: Plan, validate: Optional[List[str]]) -> Plan:
    """A plan shown, not made: a dry run, or a no-op whose validation need not run."""
    _report(ctx, plan, written=False)
    if validate is not None and ctx.args.dry_run:
        ctx.document["validation"] = {"command": validate, "run": False}
    return plan


def _plan_noting(transaction: Transaction, command: str, planner: Planner,
                 validation: Optional[Dict[str, Any]]) -> Plan:
    """The plan, after a validation that failed (or a refusal) has been recorded."""
    from gip.store import Refused

    try:
        plan = planner(transaction)
    except Refused:
        if validation is not None:
            transaction.note(command, {"validation": validation})
        raise
    if validation is not None and validation["exit_code"] != 0:
        transaction.note(command, {"validation": dict(validation, tags=plan.added)})
        _log_tail(validation)
        raise Refused(f"the validation command {validation['command'][0]} exited {validation['exit_code']}: "
                      "nothing was published (its output is in the history)", {"validation": validation})
    return plan


def _merged(extra: Optional[Dict[str, Any]], validation: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    merged = dict(extra or {})
    if validation is not None:
        merged["validation"] = validation
    return merged


def _report(ctx: Context, plan: Plan, written: bool) -> None:
    ctx.document.update(changed=written and plan.changed, added=plan.added, removed=plan.removed, tags=plan.tags)


def _say(ctx: Context, tags: List[str], verb: str, preposition: str, nothing: str) -> None:
    if not tags:
        ctx.text.append(nothing)
        return
    said = f"would {verb}" if ctx.args.dry_run else _PAST[verb]
    ctx.text.append(f"{said} {_count(len(tags))} {preposition} {ctx.document['file']}")


def _count(number: int) -> str:
    return f"{number} tag" if number == 1 else f"{number} tags"


def run_validation(command: List[str]) -> Dict[str, Any]:
    """Runs the ESM's validation command (argv, no shell); its exit code and the tail of its output."""
    import subprocess

    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, check=False)
    except OSError as error:
        code = 127 if isinstance(error, FileNotFoundError) else 126
        return {"command": command, "exit_code": code, "output_tail": f"cannot run {command[0]}: {error.strerror}"}
    tail = done.stdout[-_OUTPUT_TAIL:].decode("utf-8", "replace")
    return {"command": command, "exit_code": done.returncode, "output_tail": tail}


def _log_tail(validation: Dict[str, Any]) -> None:
    for line in str(validation.get("output_tail", "")).splitlines()[-10:]:
        log.warning("validation: %s", line)


def _tags_from_file(ctx: Context) -> List[str]:
    from gip.store import refuse_problems
    from gip.tagfile import parse_tags

    source = ctx.args.from_file
    if source is None:
        return []
    data = ctx.read_stdin() if source == "-" else _read_bytes(Path(source))
    read = parse_tags(data, ctx.args.vo, "<stdin>" if source == "-" else source)
    refuse_problems(read.problems)
    return read.tags


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise GipError(f"cannot read {path}: {error.strerror}") from None


def _moment(text: str) -> float:
    from gip.history import parse_time

    try:
        return parse_time(text)
    except (ValueError, IndexError):
        raise UsageError(f"--before {text!r}: not an ISO 8601 time such as 2024-05-01T12:00:00Z") from None


def _warn_problems(problems: Sequence[Problem], ctx: Context) -> None:
    for line in summarize(problems, every_case=verbosity(ctx.args) > 0):
        log.warning("%s", line)
