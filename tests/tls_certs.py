"""A throwaway PKI for TLS tests, made by the system ``openssl`` command.

One CA signs a server certificate for ``localhost`` (subjectAltName
DNS:localhost, IP:127.0.0.1) and a client certificate; a second, unrelated CA
signs another client certificate for the negative mTLS tests. EC P-256 keys
(PKCS#8 PEM, which every client language's TLS stack reads), one-day validity.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

TOKEN_ALL = "tw-test-all-7f3c9a51e2d84b06"
"""A bearer token with every right (the secure fixture's tokens file grants ``all``)."""
TOKEN_MODEL_ONLY = "tw-test-model-2b8e4d7a91c0f365"
"""A bearer token with only the ``model`` right (GetModelInfo, Tokenize; not Generate)."""

_CURVE = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
_CA_EXTENSIONS = (
    "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
)
_SERVER_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid\n"
)
_CLIENT_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid\n"
)


@dataclass(frozen=True, slots=True)
class TestPki:
    """PEM files: the CA, the server's chain and key, and two client identities."""

    __test__ = False  # not a pytest test class

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    """Signed by ``ca_cert``: accepted by a server that trusts it."""
    client_key: Path
    other_client_cert: Path
    """Signed by an unrelated CA: refused by a server that trusts ``ca_cert``."""
    other_client_key: Path


def _openssl(*args: str | Path) -> None:
    done = subprocess.run(
        ["openssl", *(str(a) for a in args)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    extensions = directory / f"{name}.ext"
    extensions.write_text(_CA_EXTENSIONS)
    csr = directory / f"{name}.csr"
    _openssl("req", "-new", *_CURVE, "-keyout", key, "-out", csr, "-subj", f"/CN=tokenwire test {name}")
    _openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-signkey",
        key,
        "-days",
        "1",
        "-sha256",
        "-set_serial",
        str(secrets.randbits(63)),
        "-extfile",
        extensions,
        "-out",
        cert,
    )
    return cert, key


def _issue(
    directory: Path, name: str, subject: str, extensions_text: str, ca: tuple[Path, Path]
) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    csr, extensions = directory / f"{name}.csr", directory / f"{name}.ext"
    extensions.write_text(extensions_text)
    _openssl("req", "-new", *_CURVE, "-keyout", key, "-out", csr, "-subj", subject)
    _openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca[0],
        "-CAkey",
        ca[1],
        "-days",
        "1",
        "-sha256",
        "-set_serial",
        str(secrets.randbits(63)),
        "-extfile",
        extensions,
        "-out",
        cert,
    )
    return cert, key


def make_test_pki(directory: Path) -> TestPki:
    """Create the CA, server and client certificates under ``directory`` (which must exist)."""
    ca = _make_ca(directory, "ca")
    server = _issue(directory, "server", "/CN=localhost", _SERVER_EXTENSIONS, ca)
    client = _issue(directory, "client", "/CN=tokenwire test client", _CLIENT_EXTENSIONS, ca)
    other_ca = _make_ca(directory, "other-ca")
    other = _issue(directory, "other-client", "/CN=tokenwire other client", _CLIENT_EXTENSIONS, other_ca)
    return TestPki(
        ca_cert=ca[0],
        server_cert=server[0],
        server_key=server[1],
        client_cert=client[0],
        client_key=client[1],
        other_client_cert=other[0],
        other_client_key=other[1],
    )
