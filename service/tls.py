"""The listener's transport security: TLS, mTLS, and the warning when there is none.

The certificate files are checked with the standard library's ``ssl`` before
gRPC sees them, so that a wrong path, a key that does not match its
certificate or a CA file without certificates is a start-up error that names
the flag, rather than a listener that fails every handshake.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from service.config import ConfigError, ServeConfig

MAX_PEM_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ListenerSecurity:
    """What protects the listener: gRPC's server credentials (None: plaintext) and whether
    clients must present a certificate."""

    credentials: grpc.ServerCredentials | None
    client_certificates: bool


def _read_pem(path: Path, flag: str) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_PEM_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{flag} {path}: cannot read ({error.strerror})") from None
    if len(data) > MAX_PEM_BYTES or b"-----BEGIN " not in data:
        raise ConfigError(f"{flag} {path}: not a PEM file")
    return data


def load_listener_security(config: ServeConfig) -> ListenerSecurity:
    """TLS credentials from ``config`` (plaintext when no certificate is given)."""
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    if config.tls_cert is None or config.tls_key is None:
        if config.tls_client_ca is not None:
            raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS first)")
        return ListenerSecurity(credentials=None, client_certificates=False)
    cert = _read_pem(config.tls_cert, "--tls-cert")
    key = _read_pem(config.tls_key, "--tls-key")
    check = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        check.load_cert_chain(config.tls_cert, config.tls_key)
    except ssl.SSLError as error:
        raise ConfigError(
            f"--tls-cert/--tls-key: not a matching certificate and key ({error.reason})"
        ) from None
    client_ca: bytes | None = None
    if config.tls_client_ca is not None:
        client_ca = _read_pem(config.tls_client_ca, "--tls-client-ca")
        try:
            check.load_verify_locations(cadata=client_ca.decode("ascii", errors="replace"))
        except ssl.SSLError as error:
            raise ConfigError(
                f"--tls-client-ca {config.tls_client_ca}: no usable CA certificate ({error.reason})"
            ) from None
    credentials = grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
    return ListenerSecurity(credentials=credentials, client_certificates=client_ca is not None)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    name = host.strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything


def listener_risks(host: str, *, tls: bool, client_certificates: bool, tokens: bool) -> tuple[str, ...]:
    """Why a listener on ``host`` is open to anyone who reaches it; empty when it is not."""
    if is_loopback(host):
        return ()
    risks: list[str] = []
    if not tls:
        risks.append("no TLS: traffic, prompts and tokens travel in clear text")
    if not tokens and not client_certificates:
        risks.append("no authentication: anyone who reaches the port can generate")
    return tuple(risks)
