"""A real resource BDII in a folder: Debian's ``bdii-update`` in daemon mode with its own slapd.

Everything the packaged BDII keeps under /var/lib/bdii, /run/bdii and
/var/log/bdii lives under one temporary folder here (DESIGN.md §3 lists the
configuration keys bdii-update requires). The cycle is the real one: static
``ldif/`` files, ``provider/`` programs, ``plugin/`` programs, diff against
the server, ldapadd/ldapmodify/ldapdelete. Only the breathe time (1 s instead
of 120 s) and the read timeout (60 s instead of 300 s) are shortened.

Debian bookworm's bdii 6.0.0 calls the OpenLDAP clients with ``-h HOST -p
PORT``, options OpenLDAP 2.5 removed, so nothing would load: small wrappers
first on its PATH turn them into ``-H ldap://HOST:PORT`` and run the real
client (a bdii that already passes ``-H`` goes through them untouched).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from tests.support.integration import find_program, pid_alive, require_programs, session_members, session_of, stop_pid
from tests.support.slapd import BDII_DEFAULT_LDIF, GlueSlapd, SearchResult, require_glue_slapd

LDAP_CLIENTS = ("ldapadd", "ldapmodify", "ldapdelete", "ldapsearch")

# Options of the OpenLDAP clients that take a value: the value is never read as -h or -p.
_VALUE_OPTIONS = "-a|-b|-D|-d|-e|-E|-f|-H|-l|-o|-O|-P|-R|-s|-S|-T|-U|-w|-X|-y|-Y|-z"

_WRAPPER = """#!/bin/sh
# bdii 6.0.0 passes -h HOST -p PORT, which OpenLDAP 2.5 clients refuse: turn them
# into -H ldap://HOST:PORT and pass every other argument through unchanged.
host= port= seen=
count=$#
while [ "$count" -gt 0 ]; do
    arg=$1; shift; count=$((count - 1))
    if [ "$count" -gt 0 ]; then
        case $arg in
            -h) host=$1; seen=1; shift; count=$((count - 1)); continue ;;
            -p) port=$1; seen=1; shift; count=$((count - 1)); continue ;;
            {value_options}) set -- "$@" "$arg" "$1"; shift; count=$((count - 1)); continue ;;
        esac
    fi
    set -- "$@" "$arg"
done
if [ -n "$seen" ]; then
    set -- -H "ldap://${{host:-localhost}}${{port:+:$port}}" "$@"
fi
exec {real} "$@"
"""

_CYCLE_START = re.compile(r"\] Starting Update$", re.MULTILINE)
_CYCLE_END = re.compile(r"\] Sleeping for \d+ seconds$", re.MULTILINE)
_PROBLEM = re.compile(r": \[(WARNING|ERROR|CRITICAL)\] ")


def require_bdii() -> None:
    """Skips the calling test (fails it under CI) unless bdii-update, slapd and the clients it runs are here."""
    require_glue_slapd()
    require_programs("bdii-update", *LDAP_CLIENTS, "gzip")


def client_wrapper(real_program: str) -> str:
    """The text of a wrapper script for one OpenLDAP client at ``real_program``."""
    return _WRAPPER.format(value_options=_VALUE_OPTIONS, real=shlex.quote(real_program))


def completed_cycles(log_text: str) -> int:
    """Cycles that both started and finished within ``log_text`` (INFO lines of bdii-update)."""
    first_start = _CYCLE_START.search(log_text)
    if first_start is None:
        return 0
    return len(_CYCLE_END.findall(log_text, first_start.end()))


def bdii_config(values: Mapping[str, object]) -> str:
    """bdii.conf text: KEY=value lines (bdii-update cuts each line at '#')."""
    for key, value in values.items():
        if "#" in str(value) or "\n" in str(value):
            raise ValueError(f"bdii-update cannot read {key}={value!r}")
    return "".join(f"{key}={value}\n" for key, value in values.items())


def write_atomically(path: Path, text: str, mode: int = 0o644) -> Path:
    """Replaces ``path`` in one rename, so a running bdii-update reads the old file or the new one.

    The temporary name ends in '~', which bdii-update never runs or reads.
    """
    handle, temporary = tempfile.mkstemp(prefix="tmp-", suffix="~", dir=path.parent)
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)
    return path


class BdiiInstance:
    """bdii-update -d and its slapd, everything under a fresh folder in ``tmp_path``."""

    def __init__(
        self,
        tmp_path: Path,
        env: Optional[Mapping[str, str]] = None,
        *,
        debug: bool = False,
        breathe_time: float = 1.0,
        read_timeout: int = 60,
        default_ldif: bool = True,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bdii-", dir=tmp_path))
        self.ldif_dir = self.root / "ldif"
        self.provider_dir = self.root / "provider"
        self.plugin_dir = self.root / "plugin"
        self.var_dir = self.root / "var"
        self.run_dir = self.root / "run"
        self.bin_dir = self.root / "bin"
        self.tmp_dir = self.root / "tmp"
        for folder in (self.ldif_dir, self.provider_dir, self.plugin_dir, self.var_dir / "archive",
                       self.run_dir, self.bin_dir, self.tmp_dir):
            folder.mkdir(parents=True)
        if default_ldif:
            # The package ships it in its ldif/ folder: bdii-update itself creates o=grid and o=glue.
            shutil.copy(BDII_DEFAULT_LDIF, self.ldif_dir / "default.ldif")
        self.slapd = GlueSlapd(self.root)
        self.env: Dict[str, str] = dict(env or {})
        self.debug = debug
        self.log_path = self.root / "bdii-update.log"
        self.pid_path = self.run_dir / "bdii-update.pid"
        self.config_path = self.root / "bdii.conf"
        self.config_path.write_text(bdii_config(self._settings(breathe_time, read_timeout)))
        self.merged_log_path = self.root / "bdii-update-merged.log"
        self.merged_config_path = self.root / "bdii-merged.conf"
        # Runs of merged_ldif() log elsewhere, so they never count as cycles of the daemon.
        self.merged_config_path.write_text(bdii_config(
            {**self._settings(breathe_time, read_timeout), "BDII_LOG_FILE": self.merged_log_path}
        ))
        self.pid: Optional[int] = None
        self.session: Optional[int] = None

    def _settings(self, breathe_time: float, read_timeout: int) -> Dict[str, object]:
        return {
            "BDII_LOG_FILE": self.log_path,
            "BDII_LOG_LEVEL": "DEBUG" if self.debug else "INFO",
            "BDII_PID_FILE": self.pid_path,
            "BDII_RUN_DIR": self.run_dir,
            "BDII_LDIF_DIR": self.ldif_dir,
            "BDII_PROVIDER_DIR": self.provider_dir,
            "BDII_PLUGIN_DIR": self.plugin_dir,
            "BDII_VAR_DIR": self.var_dir,
            "BDII_HOSTNAME": self.slapd.host,
            "BDII_PORT": self.slapd.port,
            "BDII_BREATHE_TIME": breathe_time,
            "BDII_READ_TIMEOUT": read_timeout,
            "BDII_ARCHIVE_SIZE": 0,
            "BDII_DELETE_DELAY": 0,
        }

    def __enter__(self) -> BdiiInstance:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the folders ---------------------------------------------------------

    def add_static(self, name: str, text: str) -> Path:
        """Writes ``ldif/<name>`` (bdii-update reads only names ending in .ldif)."""
        return write_atomically(self.ldif_dir / name, text)

    def add_provider(self, name: str, script: str) -> Path:
        """Writes an executable ``provider/<name>``: it prints whole entries."""
        return write_atomically(self.provider_dir / name, script, 0o755)

    def add_plugin(self, name: str, script: str) -> Path:
        """Writes an executable ``plugin/<name>``: it prints changes to entries."""
        return write_atomically(self.plugin_dir / name, script, 0o755)

    def environment(self) -> Dict[str, str]:
        """bdii-update's environment, which its providers and plugins inherit.

        Ours updated with ``env``; PATH (``env``'s if given) comes after the client
        wrappers, so a test puts e.g. its venv's bin folder there to reach gip-provider.
        """
        env = dict(os.environ)
        env.update(self.env)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH") or os.defpath])
        env["SLAPD_CONF"] = str(self.slapd.config_path)
        # bdii-update keeps temporary error files in $TMPDIR: keep them in our folder.
        env["TMPDIR"] = str(self.tmp_dir)
        return env

    # -- running -------------------------------------------------------------

    def start(self) -> None:
        """Starts slapd, then ``bdii-update -c CONF -d``; returns once the daemon has written its PID."""
        self._write_wrappers()
        self.slapd.start()
        launch = self._run([_program("bdii-update"), "-c", str(self.config_path), "-d"], timeout=30)
        if launch.returncode != 0:
            self.stop()
            raise RuntimeError(f"bdii-update -d exited with {launch.returncode}:\n{launch.stderr}")
        self.pid = self._wait_pid(deadline=time.monotonic() + 10)
        # The daemon is the grandchild of a setsid(): its session, not its PID, groups what it starts.
        self.session = session_of(self.pid)

    def _write_wrappers(self) -> None:
        for name in LDAP_CLIENTS:
            write_atomically(self.bin_dir / name, client_wrapper(_program(name)), 0o755)

    def _run(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), env=self.environment(), cwd=self.root, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
        )

    def _wait_pid(self, deadline: float) -> int:
        while True:
            pid = self._read_pid()
            if pid is not None:
                return pid
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"bdii-update wrote no PID to {self.pid_path}\n{self.diagnostics()}")
            time.sleep(0.01)

    def _read_pid(self) -> Optional[int]:
        try:
            text = self.pid_path.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def stop(self) -> None:
        """Stops bdii-update and whatever it started, then slapd; safe to call twice."""
        pid = self.pid if self.pid is not None else self._read_pid()
        session = self.session if self.session is not None else (None if pid is None else session_of(pid))
        if pid is not None:
            stop_pid(pid)
        if session is not None:
            self._stop_session(session)
        self.pid = None
        self.slapd.stop()

    @staticmethod
    def _stop_session(session: int) -> None:
        # Providers, plugins and ldap clients a killed daemon leaves behind are still in its session.
        for _ in range(5):
            members = session_members(session)
            if not members:
                return
            for member in members:
                stop_pid(member, timeout=2.0)
        raise RuntimeError(f"processes of bdii-update's session {session} keep coming back")

    def processes(self) -> List[int]:
        """The running processes of the daemon's session: the daemon and what it runs right now."""
        return [] if self.session is None else session_members(self.session)

    def wait_cycles(self, n: int = 1, timeout: float = 60.0) -> None:
        """Waits until ``n`` update cycles that began after this call have finished.

        A cycle already running when this is called does not count: it may have
        read the folders before the test changed them.
        """
        offset = self._log_size()
        deadline = time.monotonic() + timeout
        while completed_cycles(self._log_from(offset)) < n:
            if self.pid is None or not pid_alive(self.pid):
                raise RuntimeError(f"bdii-update is not running\n{self.diagnostics()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{n} bdii-update cycle(s) did not finish in {timeout} s\n{self.diagnostics()}")
            time.sleep(0.02)

    def _log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def _log_from(self, offset: int) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as stream:
            stream.seek(offset)
            return stream.read().decode(errors="replace")

    def search(
        self,
        base: str = "o=grid",
        filterstr: str = "(objectClass=*)",
        attrs: Optional[Sequence[str]] = None,
    ) -> SearchResult:
        """As GlueSlapd.search, on this BDII's slapd."""
        return self.slapd.search(base, filterstr, attrs)

    def merged_ldif(self, timeout: float = 60.0) -> str:
        """What one cycle would load: ``bdii-update -c CONF`` without -d prints it and exits.

        No slapd is needed. Attribute names come out lower-cased and entries are
        not separated by blank lines (see tests.support.ldifmap.split_bdii_output).
        """
        result = self._run([_program("bdii-update"), "-c", str(self.merged_config_path)], timeout=timeout)
        if result.returncode != 0:
            log = self.merged_log_path.read_text(errors="replace") if self.merged_log_path.exists() else ""
            raise RuntimeError(f"bdii-update exited with {result.returncode}:\n{result.stderr}{log}")
        return result.stdout

    # -- what went wrong -----------------------------------------------------

    def log_text(self) -> str:
        return self._log_from(0)

    def warnings(self) -> List[str]:
        """Log lines at WARNING and above: where slapd's refusals land (``ldap_add: Type or value exists``).

        The FailedAdds/FailedModifies counters are no guide: bdii-update 6.0.0 counts
        'request' lines that OpenLDAP 2.5 clients no longer print, so they stay 0.
        """
        return [line for line in self.log_text().splitlines() if _PROBLEM.search(line)]

    def var_text(self, name: str) -> str:
        """A file bdii-update keeps in its var folder: with debug=True new.ldif, add.ldif,
        modify.ldif, delete.ldif and their .err files; always old.ldif."""
        path = self.var_dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def diagnostics(self, lines: int = 40) -> str:
        """The log tail, the error files of the last cycle and slapd's log: for failure messages."""
        parts = [f"--- {self.log_path} (last {lines} lines)", *self.log_text().splitlines()[-lines:]]
        for error_file in sorted(self.var_dir.glob("*.err")):
            text = error_file.read_text(errors="replace").strip()
            if text:
                parts += [f"--- {error_file}", *text.splitlines()[-lines:]]
        slapd_log = self.slapd.log_text().strip()
        if slapd_log:
            parts += [f"--- {self.slapd.log_path}", *slapd_log.splitlines()[-lines:]]
        return "\n".join(parts)


def _program(name: str) -> str:
    path = find_program(name)
    if path is None:
        raise RuntimeError(f"{name} not found")
    return path
