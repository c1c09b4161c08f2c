"""Where a tag operation runs: on this machine, or on a CE reached over SSH.

A host names this machine when it is ``localhost``, this machine's short or
full host name, or ``CE_HOST`` of site-info.def; any other name or address,
loopback addresses included, is remote. Local operations run ``gip-tags`` in
this process; remote ones run ``ssh HOST gip-tags --json ...`` and read the one
JSON document it prints, so the result and exit code are those of the remote
host, with its own settings.

OpenSSH's ssh(1) joins the words after the host with spaces and hands the line
to the remote user's login shell, so every word is quoted for a POSIX shell
(``shlex.quote``) and sent as one line. The host is its own argument, after
``--``, and one beginning with ``-`` or holding anything but the characters of
host names, addresses and ``user@`` is refused, so it can never be read as an
ssh option or reach a shell. ``GIP_SSH`` replaces the ``ssh`` command; it is
split as a POSIX shell splits words, never run through one.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

from gip import log
from gip.errors import EXIT_FAILED, ConfigError, GipError, UsageError
from gip.report import printable


REMOTE_PROGRAM = "gip-tags"
SSH_VARIABLE = "GIP_SSH"
LOCAL_NAME = "localhost"
SSH_FAILED = 255

# Host names, IPv4 and IPv6 addresses (with a %zone), and an optional user@.
_HOST = re.compile(r"[A-Za-z0-9_.:%@-]+")
_MAX_HOST = 255
_STDERR_TAIL_LINES = 5


@dataclass(frozen=True)
class Reply:
    """What gip-tags answered: its exit code and the document its --json prints."""

    exit_code: int
    document: Dict[str, Any]
    messages: List[str] = field(default_factory=list)

    @property
    def error(self) -> Optional[str]:
        error = self.document.get("error")
        return str(error) if error else None


Runner = Callable[[Sequence[str]], Reply]


def host_problem(host: str) -> Optional[str]:
    """Why ``host`` cannot be handed to ssh, or None."""
    if not host:
        return "a host name is empty"
    if host.startswith("-"):
        return "a host name cannot begin with '-'"
    if len(host) > _MAX_HOST or not _HOST.fullmatch(host):
        return "a host name holds only letters, digits and ._-:%@"
    return None


def check_host(host: str) -> str:
    problem = host_problem(host)
    if problem is not None:
        raise UsageError(f"invalid host {host!r}: {problem}")
    return host


def same_host(host: str, name: str) -> bool:
    """DNS names compare ignoring case and a trailing dot."""
    return bool(name) and host.rstrip(".").lower() == name.rstrip(".").lower()


def names_this_machine(host: str, names: Iterable[str]) -> bool:
    """True when ``host`` is one of ``names``; stops at the first match, as names may be costly."""
    return any(same_host(host, name) for name in names)


def local_names(environ: Mapping[str, str], site_info: Optional[str] = None) -> Iterator[str]:
    """This machine's names, cheapest first: getfqdn() may wait for DNS."""
    import socket

    yield LOCAL_NAME
    yield socket.gethostname()
    ce_host = site_ce_host(environ, site_info)
    if ce_host:
        yield ce_host
    yield socket.getfqdn()


def site_ce_host(environ: Mapping[str, str], site_info: Optional[str] = None) -> Optional[str]:
    """CE_HOST of site-info.def, or None: an unusable file only means the name is unknown."""
    try:
        from gip.siteconfig import load_site_config
        from gip.siteinfo import site_info_path

        config = load_site_config(site_info_path(site_info, environ))
    except (GipError, OSError, ImportError, ValueError) as error:
        log.debug("CE_HOST unknown, site-info.def unusable: %s", error)
        return None
    return config.ce_host


def is_local(host: str, environ: Mapping[str, str], site_info: Optional[str] = None) -> bool:
    return names_this_machine(host, local_names(environ, site_info))


def ssh_prefix(environ: Mapping[str, str]) -> List[str]:
    """The ssh command: GIP_SSH split as a shell splits words, else plain ``ssh``."""
    text = environ.get(SSH_VARIABLE)
    if text is None:
        return ["ssh"]
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise ConfigError(f"{SSH_VARIABLE}: cannot split {text!r}: {error}") from None
    if not words:
        raise ConfigError(f"{SSH_VARIABLE} is set but empty")
    return words


def remote_line(argv: Sequence[str]) -> str:
    """The command line the remote login shell runs: every word quoted."""
    return " ".join(shlex.quote(word) for word in (REMOTE_PROGRAM, *argv))


def ssh_argv(prefix: Sequence[str], host: str, line: str) -> List[str]:
    """``-n``: ssh must not read our stdin, which may hold a confirmation."""
    return [*prefix, "-n", "--", check_host(host), line]


def run_remote(host: str, argv: Sequence[str], environ: Mapping[str, str]) -> Reply:
    """Runs ``gip-tags ARGV`` on ``host``; ``argv`` must include --json."""
    import subprocess

    command = ssh_argv(ssh_prefix(environ), host, remote_line(argv))
    log.debug("running %s", shlex.join(command))
    try:
        completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except OSError as error:
        raise ConfigError(f"cannot run {command[0]!r}: {error.strerror} (see {SSH_VARIABLE})") from None
    return parse_reply(host, completed.returncode, completed.stdout, completed.stderr)


def parse_reply(host: str, returncode: int, stdout: bytes, stderr: bytes) -> Reply:
    """The remote gip-tags's document; without one, ssh or the remote shell failed."""
    messages = stderr.decode("utf-8", "replace").splitlines()
    document = _document(stdout)
    if document is None:
        raise GipError(_failure(host, returncode, messages))
    code = document.get("exit_code")
    # An exit code is 0 to 255; anything else in the document is not gip-tags's and counts as a failure.
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 255:
        return Reply(code, document, messages)
    return Reply(returncode or EXIT_FAILED, document, messages)


def _document(stdout: bytes) -> Optional[Dict[str, Any]]:
    """The JSON document; a login script may have printed a banner first, so the last line will do."""
    import json

    lines = stdout.strip().splitlines()
    for text in (stdout, lines[-1] if lines else b""):
        try:
            document = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            continue
        if isinstance(document, dict):
            return document
    return None


def _failure(host: str, returncode: int, messages: List[str]) -> str:
    tail = " | ".join(printable(line.strip()) for line in messages[-_STDERR_TAIL_LINES:] if line.strip())
    detail = f": {tail}" if tail else ""
    if returncode == SSH_FAILED:
        return f"{host}: ssh failed (exit {returncode}){detail}"
    return f"{host}: no answer from {REMOTE_PROGRAM} (exit {returncode}){detail}"


def run_local(argv: Sequence[str], environ: Mapping[str, str]) -> Reply:
    """Runs gip-tags in this process, with an empty stdin: ours may hold a confirmation."""
    import io

    from gip.cli.tags import invoke

    outcome = invoke(list(argv), environ=environ, stdin=io.BytesIO())
    return Reply(outcome.exit_code, dict(outcome.document))


def runner_for(host: Optional[str], environ: Mapping[str, str], site_info: Optional[str] = None) -> Runner:
    """Where to run: here when ``host`` is None or names this machine, else over ssh."""
    if host is None:
        return partial(run_local, environ=environ)
    check_host(host)
    if is_local(host, environ, site_info):
        log.debug("%s is this machine: working on the local tag folder", host)
        return partial(run_local, environ=environ)
    log.debug("%s is another machine: working there over ssh", host)
    return partial(run_remote, host, environ=environ)
