"""Who is changing a tag file: the account, and the grid identity where one is known.

The account is the login name of the real uid (what ``id -un`` says for a
process that is not set-uid; gip refuses to run set-uid anyway).

The grid identity is the subject of the X.509 proxy at ``$X509_USER_PROXY``
(else ``/tmp/x509up_u<uid>``, the Globus default), written the way grid people
know it: OpenSSL's one-line form, ``/DC=ch/DC=cern/OU=Users/CN=Jane Doe``,
components in certificate (DER) order. A proxy certificate (RFC 3820, or the
older Globus ones) is named after its issuer plus one ``CN`` (``CN=<digits>``,
``CN=proxy``, ``CN=limited proxy``); those components are stripped by walking
from the proxy to its issuer, so the identity is the end-entity subject.

Reading a proxy needs the ``cryptography`` package. It is imported only when
an identity is asked for (that is, when a history record is written), never
when tags are listed; without it, or without a readable proxy, the identity
is None.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

# OpenSSL's short names for the attributes seen in grid subjects.
_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.42": "GN",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
}
_COMMON_NAME = "2.5.4.3"
_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_END = b"-----END CERTIFICATE-----"

# One attribute of a name: (dotted OID, value); a name is a list of RDNs.
Attribute = Tuple[str, str]
Rdn = Tuple[Attribute, ...]


def account_name(uid: int) -> str:
    """The login name of ``uid``, or the number itself where no account has it."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def default_proxy_path(environ: Mapping[str, str], uid: int) -> Path:
    """``$X509_USER_PROXY``, else the Globus default ``/tmp/x509up_u<uid>``."""
    configured = environ.get("X509_USER_PROXY")
    return Path(configured) if configured else Path(f"/tmp/x509up_u{uid}")


def oneline(rdns: Sequence[Rdn]) -> str:
    """A name in OpenSSL's one-line form: ``/DC=ch/DC=cern/CN=Jane Doe``."""
    parts = []
    for rdn in rdns:
        for oid, value in rdn:
            parts.append(f"/{_SHORT_NAMES.get(oid, oid)}={_printable(value)}")
    return "".join(parts)


def is_proxy_of(subject: Sequence[Rdn], issuer: Sequence[Rdn]) -> bool:
    """True when ``subject`` is a proxy name of ``issuer``: the issuer plus one CN."""
    if len(subject) != len(issuer) + 1 or tuple(subject[:-1]) != tuple(issuer):
        return False
    last = subject[-1]
    return len(last) == 1 and last[0][0] == _COMMON_NAME


def end_entity(chain: Sequence[Tuple[Sequence[Rdn], Sequence[Rdn]]]) -> Optional[Sequence[Rdn]]:
    """The end-entity subject of a proxy file's chain of (subject, issuer) pairs, first first.

    Walks from the first certificate to its issuer while the certificate is a
    proxy; an issuer missing from the file is taken as it is named.
    """
    if not chain:
        return None
    issuers: Dict[Tuple[Rdn, ...], Sequence[Rdn]] = {tuple(s): i for s, i in chain}
    subject, issuer = chain[0]
    for _ in range(len(chain) + 1):
        if not is_proxy_of(subject, issuer):
            return subject
        subject = issuer
        found = issuers.get(tuple(subject))
        if found is None:
            return subject
        issuer = found
    return subject


def grid_identity(proxy: Path) -> Optional[str]:
    """The end-entity subject of the proxy at ``proxy``, or None where it cannot be read."""
    try:
        with open(proxy, "rb") as stream:
            data = stream.read()
    except OSError:
        return None
    chain = _certificate_names(data)
    if chain is None:
        return None
    subject = end_entity(chain)
    return oneline(subject) if subject else None


class Who:
    """The account running a command and, asked for once and kept, its grid identity."""

    def __init__(self, account: str, proxy: Optional[Path]) -> None:
        self.account = account
        self._proxy = proxy
        self._identity: Optional[str] = None
        self._asked = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Who:
        uid = os.getuid()
        return cls(account_name(uid), default_proxy_path(environ, uid))

    def identity(self) -> Optional[str]:
        """The grid identity, read from the proxy the first time it is asked for."""
        if not self._asked:
            self._asked = True
            self._identity = grid_identity(self._proxy) if self._proxy is not None else None
        return self._identity

    @property
    def known_identity(self) -> Optional[str]:
        """The identity if it has been read already; never reads the proxy."""
        return self._identity


def _certificate_names(data: bytes) -> Optional[List[Tuple[List[Rdn], List[Rdn]]]]:
    """(subject, issuer) of every PEM certificate in ``data``; None without ``cryptography``."""
    try:
        from cryptography import x509
    except ImportError:
        return None
    names = []
    for block in _pem_blocks(data):
        try:
            certificate = x509.load_pem_x509_certificate(block)
        except ValueError:
            continue
        names.append((_rdns(certificate.subject), _rdns(certificate.issuer)))
    return names


def _pem_blocks(data: bytes) -> List[bytes]:
    """Each certificate block of a PEM file; a proxy file also holds a key, skipped here."""
    blocks = []
    start = data.find(_PEM_BEGIN)
    while start >= 0:
        end = data.find(_PEM_END, start)
        if end < 0:
            break
        end += len(_PEM_END)
        blocks.append(data[start:end] + b"\n")
        start = data.find(_PEM_BEGIN, end)
    return blocks


def _rdns(name: Any) -> List[Rdn]:
    return [tuple((a.oid.dotted_string, _text(a.value)) for a in rdn) for rdn in name.rdns]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _printable(value: str) -> str:
    """Control characters escaped as OpenSSL does (``\\xNN``): the identity lands in log lines."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else f"\\x{ord(c):02X}" for c in value)
