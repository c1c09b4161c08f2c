"""A throwaway OpenSSH server for tests: Debian's sshd on a free loopback port.

Everything lives in one private folder: the server's own host key, its
sshd_config, an ed25519 client key made for the test and authorized there, a
known_hosts file pinning the host key, the pid file and the log. The server
runs in the foreground (``sshd -D``) as a child of the test and is stopped by
its PID. The sessions it starts get the environment given to it (``SetEnv``),
so a test decides the PATH and the settings the "remote" host sees.

``ssh_command()`` is the client side: the words to put in ``GIP_SSH``, which
trust only the pinned host key and read no user or system ssh configuration.
"""

from __future__ import annotations

import getpass
import shlex
import subprocess
import time
from pathlib import Path
from typing import List, Mapping, Optional

from tests.support.integration import free_port, stop_pid

PROGRAMS = ("sshd", "ssh", "ssh-keygen")
# sshd's privilege separation needs this empty folder; systemd makes it at boot.
PRIVILEGE_SEPARATION_DIR = Path("/run/sshd")
START_DEADLINE = 10.0
_ATTEMPTS = 3


class SshdError(RuntimeError):
    """The test server could not be set up or started; the message holds its log."""


class Sshd:
    """One sshd in ``folder``; use as a context manager or call start() and stop().

    ``programs`` maps sshd, ssh and ssh-keygen to their paths, as
    tests.support.integration.require_programs returns them.
    """

    def __init__(self, folder: Path, environment: Mapping[str, str], programs: Mapping[str, str]) -> None:
        self.folder = folder
        self.programs = dict(programs)
        # A HOME of its own: the sessions read no dotfiles of the real account.
        self.environment = {"HOME": str(folder / "home"), **environment}
        self.port = 0
        self.user = getpass.getuser()
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.host_key = folder / "ssh_host_ed25519_key"
        self.client_key = folder / "id_ed25519"
        self.authorized_keys = folder / "authorized_keys"
        self.known_hosts = folder / "known_hosts"
        self.config = folder / "sshd_config"
        self.log = folder / "sshd.log"
        self.pid_file = folder / "sshd.pid"

    def __enter__(self) -> Sshd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        Path(self.environment["HOME"]).mkdir(exist_ok=True)
        try:
            PRIVILEGE_SEPARATION_DIR.mkdir(mode=0o755, exist_ok=True)
        except PermissionError:
            raise SshdError(f"sshd needs {PRIVILEGE_SEPARATION_DIR}, which this user cannot create") from None
        self._make_keys()
        for _ in range(_ATTEMPTS):
            # The free port may be taken between probing and binding: try another.
            self.port = free_port()
            self._write_config()
            if self._launch():
                return
        raise SshdError(f"sshd did not start:\n{self.log_text()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_pid(process.pid)
            process.wait()

    def ssh_command(self) -> List[str]:
        """ssh with this server's port, key and pinned host key, and nothing else."""
        return [
            self.programs["ssh"], "-F", "/dev/null", "-p", str(self.port), "-i", str(self.client_key),
            "-l", self.user,
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
        ]

    def gip_ssh(self) -> str:
        """The value of GIP_SSH that reaches this server."""
        return shlex.join(self.ssh_command())

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def _make_keys(self) -> None:
        for key in (self.host_key, self.client_key):
            if not key.exists():
                _run([self.programs["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", "gip-test", "-f", str(key)])
        self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        self.authorized_keys.chmod(0o600)

    def _write_config(self) -> None:
        host_public = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_public[0]} {host_public[1]}\n")
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            # The tests may run as root; the tmp folders' modes would fail StrictModes.
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "PrintMotd no",
            "LogLevel VERBOSE",
        ]
        if self.environment:
            pairs = " ".join(_setenv_word(name, value) for name, value in self.environment.items())
            lines.append(f"SetEnv {pairs}")
        self.config.write_text("\n".join(lines) + "\n")
        _run([self.programs["sshd"], "-t", "-f", str(self.config)])

    def _launch(self) -> bool:
        """Starts sshd and waits until it listens; False when it lost the port."""
        self.log.write_text("")
        self.process = subprocess.Popen(
            [self.programs["sshd"], "-D", "-f", str(self.config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if f"listening on 127.0.0.1 port {self.port}" in text:
                return True
            if self.process.poll() is not None:
                self.process = None
                return False
            time.sleep(0.02)
        self.stop()
        raise SshdError(f"sshd not listening after {START_DEADLINE} s:\n{self.log_text()}")


def _setenv_word(name: str, value: str) -> str:
    """sshd_config quotes with double quotes and has no escapes: refuse what it cannot hold."""
    if '"' in value or "\n" in value:
        raise SshdError(f"cannot pass {name}={value!r} through sshd_config")
    return f'"{name}={value}"'


def _run(command: List[str]) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SshdError(f"{shlex.join(command)} failed: {completed.stderr.strip()}")
