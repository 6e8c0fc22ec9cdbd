"""TLS for the door: one listening SSLContext whose certificate can be swapped on SIGHUP.

The listening context never changes (the site was given it once); each
handshake is switched, in the SNI callback, to the context of the certificate
loaded last (with or without SNI). Reloading builds a fresh context rather
than loading the new pair into the old one because OpenSSL keeps one
certificate per key type: an RSA certificate loaded into a context holding an
ECDSA one leaves the old ECDSA certificate in place, and every client that
prefers ECDSA (all current ones) goes on getting it. certbot 2 switched its
default key type, so a renewal can do exactly that. Established connections
keep the context they were handshaken with.

A bad pair at start is a ConfigError naming the file; a bad pair at reload is
logged and the previous certificate stays in service.
"""
from __future__ import annotations

import logging
import ssl
from pathlib import Path

from services.core.config import ConfigError

log = logging.getLogger("front.tls")

# Forward-secret AEAD suites for TLS 1.2 (TLS 1.3 suites are not affected by set_ciphers).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS"
ALPN = ["http/1.1"]


class TLSError(Exception):
    """A certificate or key that cannot be served; the message names the file."""


class TLSContext:
    """The front end's server-side TLS: `.ssl_context` for the site, `.reload()` on SIGHUP."""

    def __init__(self, cert_path: str | Path, key_path: str | Path):
        self.cert_path = Path(cert_path)
        self.key_path = Path(key_path)
        try:
            self._current = self._load()
        except TLSError as error:
            raise ConfigError(f"[front] tls_cert/tls_key: {error}") from None
        self.ssl_context = _server_context()
        # Also load the pair into the listening context itself, so a handshake
        # that somehow skipped the callback still gets a valid certificate.
        self.ssl_context.load_cert_chain(self.cert_path, self.key_path, password=_no_password)
        self.ssl_context.sni_callback = self._choose_context

    def reload(self) -> bool:
        """Re-read cert and key; new handshakes get them. False (and an error logged) if they are bad."""
        try:
            self._current = self._load()
        except TLSError as error:
            log.error("tls: keeping the previous certificate: %s", error)
            return False
        log.info("tls: reloaded certificate %s", self.cert_path)
        return True

    def _choose_context(self, sslobj: ssl.SSLObject, server_name: str | None, listening: ssl.SSLContext) -> None:
        sslobj.context = self._current

    def _load(self) -> ssl.SSLContext:
        for path in (self.cert_path, self.key_path):
            try:
                path.read_bytes()
            except OSError as error:
                raise TLSError(f"{path}: cannot read: {error.strerror}") from None
        context = _server_context()
        try:
            context.load_cert_chain(self.cert_path, self.key_path, password=_no_password)
        except _EncryptedKey:
            raise TLSError(f"{self.key_path}: the key is encrypted; give an unencrypted PEM key "
                           "(readable only by the front end's user)") from None
        except ssl.SSLError as error:
            raise TLSError(self._explain(error)) from None
        return context

    def _explain(self, error: ssl.SSLError) -> str:
        """Which of the two files is wrong, as far as OpenSSL lets us tell."""
        if "KEY_VALUES_MISMATCH" in str(error) or "key values mismatch" in str(error).lower():
            return f"{self.key_path} is not the private key of {self.cert_path}"
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            probe.load_verify_locations(cafile=str(self.cert_path))
        except ssl.SSLError:
            return f"{self.cert_path}: not a PEM certificate ({error.reason or error})"
        return f"{self.key_path}: not a PEM private key matching {self.cert_path} ({error.reason or error})"


class _EncryptedKey(Exception):
    pass


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal, which a daemon has not.
    raise _EncryptedKey()


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(ALPN)
    return context
