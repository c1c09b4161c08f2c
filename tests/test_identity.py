from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from gip.identity import Who, account_name, default_proxy_path, end_entity, grid_identity, is_proxy_of, oneline

CN, DC, OU, O, C = "2.5.4.3", "0.9.2342.19200300.100.1.25", "2.5.4.11", "2.5.4.10", "2.5.4.6"
EMAIL, UID = "1.2.840.113549.1.9.1", "0.9.2342.19200300.100.1.1"

JANE = [((DC, "ch"),), ((DC, "cern"),), ((OU, "Organic Units"),), ((OU, "Users"),), ((CN, "jdoe"),),
        ((CN, "123456"),), ((CN, "Jane Doe"),)]
JANE_LINE = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=jdoe/CN=123456/CN=Jane Doe"


@pytest.mark.parametrize("rdns, expected", [
    (JANE, JANE_LINE),
    ([((C, "UK"),), ((O, "eScience"),), ((OU, "Manchester"),), ((CN, "john smith"),)],
     "/C=UK/O=eScience/OU=Manchester/CN=john smith"),
    ([((CN, "a"), (UID, "u1"))], "/CN=a/UID=u1"),
    ([((EMAIL, "x@y.org"),)], "/emailAddress=x@y.org"),
    ([(("1.2.3.4", "v"),)], "/1.2.3.4=v"),
    ([((CN, "line\nbreak"),)], "/CN=line\\x0Abreak"),
    ([], ""),
])
def test_oneline(rdns, expected):
    assert oneline(rdns) == expected


@pytest.mark.parametrize("subject, issuer, expected", [
    (JANE + [((CN, "1234567890"),)], JANE, True),
    (JANE + [((CN, "proxy"),)], JANE, True),
    (JANE + [((OU, "proxy"),)], JANE, False),
    (JANE + [((CN, "1"), (CN, "2"))], JANE, False),
    (JANE, JANE[:-1], True),
    (JANE, [((DC, "org"),)], False),
    (JANE, JANE, False),
])
def test_is_proxy_of(subject, issuer, expected):
    assert is_proxy_of(subject, issuer) is expected


CA = [((DC, "ch"),), ((DC, "cern"),), ((CN, "CERN Grid CA"),)]
PROXY1 = JANE + [((CN, "111"),)]
PROXY2 = PROXY1 + [((CN, "222"),)]


@pytest.mark.parametrize("chain, expected", [
    ([(PROXY1, JANE), (JANE, CA)], JANE),
    ([(PROXY1, JANE)], JANE),                       # the end-entity certificate left out of the file
    ([(PROXY2, PROXY1), (PROXY1, JANE), (JANE, CA)], JANE),
    ([(JANE, CA)], JANE),                           # a plain certificate: its own subject
    ([], None),
])
def test_end_entity(chain, expected):
    assert end_entity(chain) == expected


def test_an_end_entity_whose_last_cn_is_digits_keeps_it():
    # Only a proxy's own component goes: CN=123456 of the person stays.
    person = JANE[:-1]
    assert end_entity([(person + [((CN, "999"),)], person), (person, CA)]) == person
    assert end_entity([(person, CA)]) == person


def test_default_proxy_path():
    assert default_proxy_path({"X509_USER_PROXY": "/p/x"}, 5) == Path("/p/x")
    assert default_proxy_path({}, 501) == Path("/tmp/x509up_u501")
    assert default_proxy_path({"X509_USER_PROXY": ""}, 7) == Path("/tmp/x509up_u7")


def test_account_name():
    assert account_name(0) == "root"
    assert account_name(2_000_000_123) == "2000000123"


# Real certificates: a CA, a person's certificate and an RFC 3820-style proxy of it.

crypto = pytest.importorskip("cryptography")


def _name(rdns: List[Tuple[str, str]]):
    from cryptography import x509

    return x509.Name([x509.NameAttribute(x509.ObjectIdentifier(oid), value) for oid, value in rdns])


def _certificate(subject, issuer, key, signer):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(signer, hashes.SHA256()))


@pytest.fixture(scope="module")
def proxy_file(tmp_path_factory) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key, user_key, proxy_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = [(DC, "ch"), (DC, "cern"), (CN, "CERN Grid CA")]
    person = [(DC, "ch"), (DC, "cern"), (OU, "Organic Units"), (OU, "Users"), (CN, "jdoe"), (CN, "123456"),
              (CN, "Jane Doe")]
    user = _certificate(person, ca, user_key, ca_key)
    proxy = _certificate(person + [(CN, "1234567890")], person, proxy_key, user_key)
    key = proxy_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())
    path = tmp_path_factory.mktemp("proxy") / "x509up_u1000"
    path.write_bytes(proxy.public_bytes(serialization.Encoding.PEM) + key + user.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o600)
    return path


def test_grid_identity_of_a_proxy_is_the_person(proxy_file):
    assert grid_identity(proxy_file) == JANE_LINE


def test_grid_identity_of_a_proxy_without_the_person_certificate(proxy_file, tmp_path):
    data = proxy_file.read_bytes()
    only_proxy = data[:data.index(b"-----END CERTIFICATE-----") + 26]
    path = tmp_path / "proxy"
    path.write_bytes(only_proxy)
    assert grid_identity(path) == JANE_LINE


@pytest.mark.parametrize("content", [None, b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_grid_identity_is_none_without_a_readable_proxy(tmp_path, content: Optional[bytes]):
    path = tmp_path / "x509up"
    if content is not None:
        path.write_bytes(content)
    assert grid_identity(path) is None


def test_who_reads_the_proxy_once_and_only_when_asked(proxy_file, tmp_path):
    copy = tmp_path / "proxy"
    copy.write_bytes(proxy_file.read_bytes())
    who = Who("jdoe", copy)
    assert who.known_identity is None
    assert who.identity() == JANE_LINE
    os.unlink(copy)
    assert who.identity() == JANE_LINE
    assert who.known_identity == JANE_LINE
    assert Who("x", None).identity() is None


def test_who_from_environment_names_the_real_account(tmp_path):
    who = Who.from_environment({"X509_USER_PROXY": str(tmp_path / "none")})
    assert who.account == account_name(os.getuid())
    assert who.identity() is None
