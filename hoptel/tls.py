"""TLS settings for the metrics endpoint, and the server ``SSLContext`` built from them.

The three files come from ``HOPTEL_METRICS_TLS_CERT``, ``HOPTEL_METRICS_TLS_KEY`` and
``HOPTEL_METRICS_TLS_CLIENT_CA``. Every file is read and parsed up front, so a missing, unreadable or
malformed file is a ``ValueError`` at ``setup()`` that names the variable and the path, never a failed scrape
later. With a client CA the endpoint requires mutual TLS: a scraper must present a certificate signed by
that CA.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

__all__ = ["CERT_VARIABLE", "CLIENT_CA_VARIABLE", "KEY_VARIABLE", "TLSFiles", "server_context"]

CERT_VARIABLE = "HOPTEL_METRICS_TLS_CERT"
KEY_VARIABLE = "HOPTEL_METRICS_TLS_KEY"
CLIENT_CA_VARIABLE = "HOPTEL_METRICS_TLS_CLIENT_CA"


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """PEM files for serving metrics over HTTPS.

    Attributes:
        cert: The server certificate, optionally followed by its intermediates (``HOPTEL_METRICS_TLS_CERT``).
        key: The unencrypted private key of ``cert`` (``HOPTEL_METRICS_TLS_KEY``).
        client_ca: CA certificates that sign the scrapers' client certificates
            (``HOPTEL_METRICS_TLS_CLIENT_CA``). When set, mutual TLS is required.
    """

    cert: str
    key: str
    client_ca: str | None = None

    @classmethod
    def from_settings(cls, cert: str | None, key: str | None, client_ca: str | None = None) -> TLSFiles | None:
        """Combine the three optional settings; ``None`` when none of them is set (plain HTTP).

        >>> TLSFiles.from_settings(None, None) is None
        True
        >>> TLSFiles.from_settings("cert.pem", "key.pem")
        TLSFiles(cert='cert.pem', key='key.pem', client_ca=None)

        Raises:
            ValueError: a partial combination (a key without a certificate, a client CA without both, ...);
                the message names the variable that is missing.
        """
        cert, key, client_ca = cert or None, key or None, client_ca or None
        if cert is None and key is None and client_ca is None:
            return None
        if cert is None:
            given = KEY_VARIABLE if key is not None else CLIENT_CA_VARIABLE
            raise ValueError(f"{CERT_VARIABLE} is not set: {given} needs a server certificate")
        if key is None:
            raise ValueError(f"{KEY_VARIABLE} is not set: {CERT_VARIABLE}={cert!r} needs its private key")
        return cls(cert, key, client_ca)

    @property
    def mutual(self) -> bool:
        """Whether scrapers must present a client certificate."""
        return self.client_ca is not None


def _read(variable: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ValueError(f"{variable}={path!r}: cannot read the file ({reason})") from None


def _refuse_password() -> bytes:
    raise _EncryptedKeyError


class _EncryptedKeyError(Exception):
    """Raised from the password callback: an encrypted key would otherwise prompt on the terminal."""


def _load_certificates(context: ssl.SSLContext, variable: str, path: str) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise ValueError(f"{variable}={path!r}: not a PEM certificate file ({exc.reason or exc})") from None


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """Build a TLS 1.2+ server context from ``files``; with a client CA, client certificates are required.

    Raises:
        ValueError: a file is missing, unreadable or not valid PEM, the key is encrypted, or the key does not
            belong to the certificate; the message names the variable and the path.
    """
    for variable, path in ((CERT_VARIABLE, files.cert), (KEY_VARIABLE, files.key)):
        _read(variable, path)
    if files.client_ca is not None:
        _read(CLIENT_CA_VARIABLE, files.client_ca)

    # Parse the certificate on its own first, so a failure of load_cert_chain below is the key's fault.
    _load_certificates(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), CERT_VARIABLE, files.cert)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert, files.key, password=_refuse_password)
    except _EncryptedKeyError:
        raise ValueError(
            f"{KEY_VARIABLE}={files.key!r}: the private key is encrypted; give an unencrypted key"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            why = f"the private key does not belong to the certificate {CERT_VARIABLE}={files.cert!r}"
        else:
            why = f"not a PEM private key ({exc.reason or exc})"
        raise ValueError(f"{KEY_VARIABLE}={files.key!r}: {why}") from None

    if files.client_ca is not None:
        _load_certificates(context, CLIENT_CA_VARIABLE, files.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
