"""A throwaway slapd that serves what a resource BDII serves.

Its configuration is the BDII package's own ``/etc/bdii/bdii-slapd.conf``
(the same schemas: core, cosine, nis, BDII, GLUE 1.3 and GLUE 2.0; the same
suffixes o=grid, o=glue, o=infosys) with every path moved into a private
folder and plaintext root passwords of its own, so a test sees exactly what a
site's BDII accepts and rejects. LDIF records (RFC 2849, read by
tests.support.ldifmap) are applied the way ``ldapmodify -a -c`` applies
them: plain entries are added, change records applied, errors collected.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import ldap

from gip.dnkey import dn_key
from tests.support.integration import find_program, free_port, require_files, require_programs, stop_pid
from tests.support.ldifmap import ldif_records, parse_entry, parse_modify, record_changetype, record_dn

BDII_SLAPD_CONF = Path("/etc/bdii/bdii-slapd.conf")
BDII_DEFAULT_LDIF = Path("/usr/share/bdii/default.ldif")
SCHEMA_FILES = (
    "/etc/ldap/schema/core.schema",
    "/etc/bdii/BDII.schema",
    "/etc/ldap/schema/Glue-CORE.schema",
    "/etc/ldap/schema/Glue-MDS.schema",
    "/etc/ldap/schema/Glue-CE.schema",
    "/etc/ldap/schema/Glue-CESEBind.schema",
    "/etc/ldap/schema/Glue-SE.schema",
    "/etc/ldap/schema/GLUE20.schema",
)

SearchResult = Dict[str, Dict[str, List[str]]]


def require_glue_slapd() -> None:
    """Skips the calling test (fails it under CI) unless slapd and the BDII's files are here."""
    require_programs("slapd")
    require_files(str(BDII_SLAPD_CONF), str(BDII_DEFAULT_LDIF), *SCHEMA_FILES)


class Rejected(NamedTuple):
    """One LDIF record the server (or the LDIF parser) refused."""

    dn: str
    message: str


class Database(NamedTuple):
    """One ``database`` section of a slapd.conf that has its own root account."""

    suffix: str
    rootdn: str


def databases(config_text: str) -> List[Database]:
    """The databases with a rootdn, in file order."""
    found = []
    suffix: Optional[str] = None
    for directive, value in _directives(config_text):
        if directive == "database":
            suffix = None
        elif directive == "suffix":
            suffix = value
        elif directive == "rootdn" and suffix is not None:
            found.append(Database(suffix, value))
    return found


def _directives(config_text: str) -> Iterator[Tuple[str, str]]:
    for line in config_text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and not line.startswith("#"):
            yield parts[0].lower(), parts[1].strip().strip('"')


def rewrite_config(config_text: str, folder: Path, passwords: Dict[str, str]) -> str:
    """The BDII's slapd.conf with its files under ``folder`` and rootpw from ``passwords`` (by suffix)."""
    lines = []
    suffix: Optional[str] = None
    for line in config_text.splitlines():
        parts = line.split(None, 1)
        directive = parts[0].lower() if parts and not line.startswith("#") else ""
        if directive == "suffix":
            suffix = parts[1].strip().strip('"')
        lines.append(_rewritten(line, directive, folder, passwords.get(suffix or "")))
    return "\n".join(lines) + "\n"


def _rewritten(line: str, directive: str, folder: Path, password: Optional[str]) -> str:
    if directive in ("pidfile", "argsfile"):
        return f"{directive} {folder / ('slapd.' + directive[:-4])}"
    if directive == "directory":
        return f"directory {folder / 'db' / Path(line.split(None, 1)[1].strip()).name}"
    if directive == "rootpw" and password is not None:
        return f"rootpw {password}"
    return line


class GlueSlapd:
    """A slapd with the BDII's schemas and suffixes on a free loopback port, in a private folder."""

    def __init__(
        self,
        parent: Optional[Path] = None,
        *,
        host: str = "127.0.0.1",
        template: Path = BDII_SLAPD_CONF,
        start_timeout: float = 10.0,
    ) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="slapd-", dir=parent))
        self._owns_folder = parent is None  # a folder in the system's temp is ours to remove
        self.host = host
        self.port = free_port(host)
        self.uri = f"ldap://{host}:{self.port}/"
        self.start_timeout = start_timeout
        template_text = template.read_text()
        self.root_dn_passwords: Dict[str, Tuple[str, str]] = {
            db.suffix: (db.rootdn, secrets.token_hex(16)) for db in databases(template_text)
        }
        passwords = {suffix: pw for suffix, (_, pw) in self.root_dn_passwords.items()}
        self.config_path = self.folder / "slapd.conf"
        config_text = rewrite_config(template_text, self.folder, passwords)
        self.config_path.write_text(config_text)
        for directive, value in _directives(config_text):
            if directive == "directory":
                Path(value).mkdir(parents=True, exist_ok=True)
        self.log_path = self.folder / "slapd.log"
        self.pid: Optional[int] = None  # kept after stop(), so a test can check that it is gone
        self._process: Optional[subprocess.Popen[bytes]] = None

    def __enter__(self) -> GlueSlapd:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Checks the configuration, starts slapd and waits until it answers."""
        slapd = find_program("slapd")
        if slapd is None:
            raise RuntimeError("slapd not found (Debian package slapd)")
        self._check_config(slapd)
        with self.log_path.open("ab") as log:
            # -d 0 keeps slapd in the foreground as our child, so it is stopped and reaped by PID.
            self._process = subprocess.Popen(
                [slapd, "-d", "0", "-f", str(self.config_path), "-h", self.uri],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        self.pid = self._process.pid
        self._wait_ready()

    def _check_config(self, slapd: str) -> None:
        result = subprocess.run(
            [slapd, "-Tt", "-u", "-f", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"slapd -Tt rejects {self.config_path}:\n{result.stdout.decode(errors='replace')}"
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self._process.returncode}:\n{self.log_text()}")
            try:
                self._connect().unbind_s()
                return
            except ldap.SERVER_DOWN:
                if time.monotonic() >= deadline:
                    self.stop()
                    raise RuntimeError(f"slapd did not answer on {self.uri} in {self.start_timeout} s")
                time.sleep(0.01)

    def stop(self) -> None:
        """Stops slapd by its PID; safe to call twice. Removes the folder if it made it in the system's temp."""
        if self._process is not None:
            stop_pid(self._process.pid)
            self._process.wait()
            self._process = None
        if self._owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _connect(self, bind_suffix: Optional[str] = None) -> ldap.ldapobject.LDAPObject:
        conn = ldap.initialize(self.uri)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        conn.set_option(ldap.OPT_TIMEOUT, 30)
        if bind_suffix is None:
            conn.simple_bind_s("", "")
        else:
            rootdn, password = self.root_dn_passwords[bind_suffix]
            conn.simple_bind_s(rootdn, password)
        return conn

    def load_base(self) -> None:
        """Adds the BDII's base entries (o=grid, mds-vo-name=resource,o=grid, o=glue, ...)."""
        served = [r for r in ldif_records(BDII_DEFAULT_LDIF.read_text()) if self._suffix_of(record_dn(r))]
        rejected = self.add_ldif("\n".join(served))
        if rejected:
            raise RuntimeError(f"{BDII_DEFAULT_LDIF} does not load: {rejected}")

    def _suffix_of(self, dn: str) -> Optional[str]:
        """The served suffix ``dn`` lies under, compared as the BDII compares DNs."""
        key = dn_key(dn)
        for suffix in self.root_dn_passwords:
            suffix_key = dn_key(suffix)
            if key == suffix_key or key.endswith("," + suffix_key):
                return suffix
        return None

    def add_ldif(self, text: str) -> List[Rejected]:
        """Applies LDIF as ``ldapmodify -a -c``: adds entries, applies changes, returns every refusal."""
        connections: Dict[str, ldap.ldapobject.LDAPObject] = {}
        try:
            return [r for r in (self._apply(record, connections) for record in ldif_records(text)) if r]
        finally:
            for conn in connections.values():
                conn.unbind_s()

    def _apply(self, record: str, connections: Dict[str, ldap.ldapobject.LDAPObject]) -> Optional[Rejected]:
        dn = record_dn(record)
        suffix = self._suffix_of(dn)
        if suffix is None:
            return Rejected(dn, "no database serves this DN")
        if suffix not in connections:
            connections[suffix] = self._connect(suffix)
        try:
            _send(connections[suffix], record)
        except ValueError as error:
            return Rejected(dn, f"LDIF: {error}")
        except ldap.LDAPError as error:
            return Rejected(dn, _ldap_message(error))
        return None

    def search(
        self,
        base: str = "o=grid",
        filterstr: str = "(objectClass=*)",
        attrs: Optional[Sequence[str]] = None,
    ) -> SearchResult:
        """DN -> attribute name (lower case) -> values, for the subtree under ``base``."""
        conn = self._connect()
        try:
            found = conn.search_s(base, ldap.SCOPE_SUBTREE, filterstr, None if attrs is None else list(attrs))
        except ldap.NO_SUCH_OBJECT:
            return {}
        finally:
            conn.unbind_s()
        return {dn: _text_attributes(entry) for dn, entry in found if dn is not None}


def _text_attributes(entry: Dict[str, List[bytes]]) -> Dict[str, List[str]]:
    result: Dict[str, List[str]] = {}
    for name, values in entry.items():
        result.setdefault(name.lower(), []).extend(v.decode("utf-8") for v in values)
    return result


def _send(conn: ldap.ldapobject.LDAPObject, record: str) -> None:
    """Sends one LDIF record; ValueError if it does not parse."""
    changetype = record_changetype(record)
    if changetype == "add":
        dn, entry = parse_entry(record)
        conn.add_s(dn, list(entry.items()))
    elif changetype == "modify":
        dn, modops = parse_modify(record)
        conn.modify_s(dn, modops)
    elif changetype == "delete":
        conn.delete_s(record_dn(record))
    else:
        raise ValueError(f"changetype {changetype!r} is not supported here")


def _ldap_message(error: ldap.LDAPError) -> str:
    details = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    parts = [str(details.get("desc", error)), str(details.get("info", ""))]
    return ": ".join(part for part in parts if part)
