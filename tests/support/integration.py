"""What every test with a real process needs: the programs, a port, a clean stop.

A test that needs slapd, bdii-update or sshd skips with the name of the missing
program and the Debian package that provides it; CI sets
``GIP_REQUIRE_INTEGRATION=1`` so that a missing program fails the run instead
of passing it silently. Processes are stopped by PID only, never by name: other
slapd or bdii-update processes on the machine are not ours.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional

import pytest

REQUIRE_ENV = "GIP_REQUIRE_INTEGRATION"

# Debian's package for each program or file the integration tests start or read.
PACKAGES: Mapping[str, str] = {
    "slapd": "slapd",
    "slapcat": "slapd",
    "ldapadd": "ldap-utils",
    "ldapmodify": "ldap-utils",
    "ldapdelete": "ldap-utils",
    "ldapsearch": "ldap-utils",
    "bdii-update": "bdii",
    "gzip": "gzip",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "/etc/bdii/bdii-slapd.conf": "bdii",
    "/etc/bdii/BDII.schema": "bdii",
    "/usr/share/bdii/default.ldif": "bdii",
    "/etc/ldap/schema/Glue-CORE.schema": "glue-schema",
    "/etc/ldap/schema/Glue-MDS.schema": "glue-schema",
    "/etc/ldap/schema/Glue-CE.schema": "glue-schema",
    "/etc/ldap/schema/Glue-CESEBind.schema": "glue-schema",
    "/etc/ldap/schema/Glue-SE.schema": "glue-schema",
    "/etc/ldap/schema/GLUE20.schema": "glue-schema",
    "/etc/ldap/schema/core.schema": "slapd",
}

# sbin folders are often missing from a plain user's PATH, yet slapd and sshd live there.
SYSTEM_BIN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def find_program(name: str, search_path: Optional[str] = None) -> Optional[str]:
    """The absolute path of ``name`` from PATH, else from the system folders, else None."""
    found = shutil.which(name, path=search_path)
    if found is None:
        found = shutil.which(name, path=os.pathsep.join(SYSTEM_BIN_DIRS))
    return None if found is None else os.path.abspath(found)


def require_programs(*names: str) -> Dict[str, str]:
    """The path of each program; skips the test (fails it under CI) if one is missing."""
    paths = {name: find_program(name) for name in names}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        _missing(f"program{'s' if len(missing) > 1 else ''}", missing)
    return {name: path for name, path in paths.items() if path is not None}


def require_files(*paths: str) -> None:
    """Skips the test (fails it under CI) if one of these files is missing."""
    missing = [path for path in paths if not os.path.exists(path)]
    if missing:
        _missing(f"file{'s' if len(missing) > 1 else ''}", missing)


def _missing(kind: str, names: Iterable[str]) -> None:
    described = ", ".join(_with_package(name) for name in names)
    reason = f"integration test needs the {kind} {described}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def _with_package(name: str) -> str:
    package = PACKAGES.get(name)
    if package is None:
        return name
    return f"{name} (Debian package {package})"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago: the kernel's pick for a bind to port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def stop_pid(pid: int, timeout: float = 5.0) -> bool:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL; True if SIGTERM was enough.

    Works for our own children (reaped here, so they leave no zombie) and for
    daemons that have left us (a zombie waiting for init counts as gone).
    """
    if not _signal(pid, signal.SIGTERM):
        return True
    if _wait_gone(pid, timeout):
        return True
    _signal(pid, signal.SIGKILL)
    if not _wait_gone(pid, 5.0):
        raise RuntimeError(f"process {pid} survived SIGKILL")
    return False


def _signal(pid: int, signum: int) -> bool:
    """Sends ``signum``; False if there is no such process."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        _reap(pid)
        return False
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        if not pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: init reaps it


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie is not running."""
    fields = _proc_stat(pid)
    if fields is None:
        return False
    return fields[0] not in ("Z", "X")


def _proc_stat(pid: int) -> Optional[List[str]]:
    """Fields 3.. of /proc/PID/stat (the state first), or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or ')'.
    return text[text.rindex(")") + 2:].split()


def session_of(pid: int) -> Optional[int]:
    """The session ID of a running process (stat field 6), or None."""
    fields = _proc_stat(pid)
    return None if fields is None else int(fields[3])


def session_members(session_id: int) -> List[int]:
    """Running processes of one session: what a daemon that called setsid() started."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        # stat field 6 is the session: index 3 after state, ppid and pgrp.
        if fields is not None and fields[0] not in ("Z", "X") and fields[3] == str(session_id):
            members.append(int(entry.name))
    return members
