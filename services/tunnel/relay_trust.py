"""How the agent knows it reached its relay: a CA the relay's certificate chains to, or a pinned key.

A pin is `sha256/BASE64`, the SHA-256 of the certificate's SubjectPublicKeyInfo
(as in HPKP, RFC 7469 §2.4), which survives certificate renewal with the same
key. Print it on the relay with:

    openssl x509 -in relay.pem -pubkey -noout | openssl pkey -pubin -outform der \\
        | openssl dgst -sha256 -binary | base64
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl

from services.core.errors import ConfigError

PIN_PREFIX = "sha256/"


def client_context(ca_file: str | None, pin: str | None) -> ssl.SSLContext:
    """The TLS context for dialing the relay: verified against `ca_file`, or unverified and pinned later."""
    if bool(ca_file) == bool(pin):
        raise ConfigError("[tunnel] relay_ca or relay_pin: give exactly one, so the agent knows its relay")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"[tunnel] relay_ca: {ca_file}: {error}") from None
    else:
        parse_pin(pin or "")
        # The chain is not checked: the pin, compared right after the handshake, is the whole trust.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def parse_pin(pin: str) -> bytes:
    if not pin.startswith(PIN_PREFIX):
        raise ConfigError(f"[tunnel] relay_pin: expected {PIN_PREFIX}BASE64, got {pin[:40]!r}")
    try:
        digest = base64.b64decode(pin[len(PIN_PREFIX):], validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != 32:
        raise ConfigError("[tunnel] relay_pin: not the base64 of a SHA-256 digest")
    return digest


def matches_pin(certificate_der: bytes, pin: str) -> bool:
    return hmac.compare_digest(hashlib.sha256(subject_public_key_info(certificate_der)).digest(), parse_pin(pin))


def subject_public_key_info(certificate_der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of an X.509 certificate (RFC 5280 §4.1), found by walking its TLVs."""
    certificate, _ = _element(certificate_der, 0)
    tbs, _ = _element(certificate_der, certificate.content)
    position = tbs.content
    if certificate_der[position] == 0xA0:       # [0] EXPLICIT version, absent in v1 certificates
        position = _element(certificate_der, position)[1]
    for _ in range(5):                            # serialNumber, signature, issuer, validity, subject
        position = _element(certificate_der, position)[1]
    spki, end = _element(certificate_der, position)
    return certificate_der[position:end]


class _Element:
    def __init__(self, content: int):
        self.content = content


def _element(der: bytes, position: int) -> tuple[_Element, int]:
    """The DER element at `position`: where its content starts, and where it ends."""
    if position + 2 > len(der):
        raise ValueError("truncated certificate")
    length = der[position + 1]
    content = position + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or content + count > len(der):
            raise ValueError("bad DER length")
        length = int.from_bytes(der[content:content + count], "big")
        content += count
    end = content + length
    if end > len(der):
        raise ValueError("truncated certificate")
    return _Element(content), end
