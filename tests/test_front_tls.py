"""TLS at the door: real handshakes on loopback with certificates made by trustme.

The certificate is swapped by rewriting the files and calling reload() (and,
against the real daemon, by SIGHUP): new handshakes must see the new
certificate, an open keep-alive connection must keep working, and a bad pair
must leave the old certificate in service.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from services.core.config import ConfigError, load_config
from services.front.headers import security_headers
from services.front.protocol import make_server
from services.front.tls import TLSContext
from tests.installation import free_port

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ("localhost", "127.0.0.1")


def front_config(tmp_path, **front):
    lines = ["[front]"] + [f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}"
                           for key, value in front.items()]
    path = tmp_path / "hearth.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_config(path, environ={})


def write_pair(leaf: trustme.LeafCert, cert_path: Path, key_path: Path) -> bytes:
    """Write the chain and key as the front end reads them; returns the leaf's DER."""
    cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key_path))
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


@pytest.fixture
def pair(tmp_path):
    return tmp_path / "cert.pem", tmp_path / "key.pem"


async def hello(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(text="hello", headers=security_headers(request.secure, 31536000))


@asynccontextmanager
async def serving(config, ssl_context=None):
    runner = web.ServerRunner(make_server(hello, config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


class Connection:
    """One keep-alive HTTPS connection, spoken to by hand."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost"), 5)
        return cls(reader, writer)

    @property
    def peer_cert(self) -> bytes:
        return self.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)

    async def get(self) -> tuple[int, str]:
        self.writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = (await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)).decode()
        length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
        await self.reader.readexactly(length)
        return int(head.split()[1]), head

    def close(self) -> None:
        self.writer.close()


async def test_https_and_reload_swaps_the_certificate_for_new_handshakes(tmp_path, pair, caplog):
    caplog.set_level(logging.INFO)
    old_ca, new_ca = trustme.CA(), trustme.CA()
    old_der = write_pair(old_ca.issue_cert(*HOSTS, key_type=trustme.KeyType.ECDSA), *pair)
    tls = TLSContext(*pair)
    assert tls.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    async with serving(front_config(tmp_path), tls.ssl_context) as port:
        kept = await Connection.open(port, trusting(old_ca))
        assert kept.peer_cert == old_der
        assert kept.writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
        assert (await kept.get())[0] == 200

        # An ECDSA certificate replaced by an RSA one: OpenSSL keeps one per key
        # type, so loading into the old context would go on serving the ECDSA one
        # to every client that prefers ECDSA (all of them, by default).
        new_der = write_pair(new_ca.issue_cert(*HOSTS, key_type=trustme.KeyType.RSA), *pair)
        assert tls.reload()
        fresh = await Connection.open(port, trusting(new_ca))
        assert fresh.peer_cert == new_der
        assert (await fresh.get())[0] == 200
        with pytest.raises(ssl.SSLCertVerificationError):
            await Connection.open(port, trusting(old_ca))
        no_sni = trusting(new_ca)
        no_sni.check_hostname = False
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=no_sni)  # an IP: no SNI sent
        assert writer.get_extra_info("ssl_object").getpeercert(binary_form=True) == new_der
        writer.close()

        assert (await kept.get())[0] == 200  # the open connection is unaffected
        assert kept.peer_cert == old_der
        kept.close()
        fresh.close()
    assert any("reloaded certificate" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("damage, named", [
    ("garbage cert", "cert.pem"),
    ("other key", "key.pem"),
    ("missing key", "key.pem"),
])
async def test_bad_pair_at_reload_keeps_the_old_certificate(tmp_path, pair, caplog, damage, named):
    ca = trustme.CA()
    old_der = write_pair(ca.issue_cert(*HOSTS), *pair)
    tls = TLSContext(*pair)
    cert_path, key_path = pair
    if damage == "garbage cert":
        cert_path.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    elif damage == "other key":
        ca.issue_cert(*HOSTS).private_key_pem.write_to_path(str(key_path))
    else:
        key_path.unlink()
    assert not tls.reload()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "front.tls"]
    assert len(errors) == 1 and named in errors[0], errors
    async with serving(front_config(tmp_path), tls.ssl_context) as port:
        connection = await Connection.open(port, trusting(ca))
        assert connection.peer_cert == old_der
        assert (await connection.get())[0] == 200
        connection.close()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("damage, named", [
    ("missing cert", "cert.pem"),
    ("garbage cert", "cert.pem"),
    ("other key", "key.pem"),
    ("encrypted key", "key.pem"),
])
def test_bad_pair_at_start_is_a_config_error_naming_the_file(pair, damage, named):
    ca = trustme.CA()
    leaf = ca.issue_cert(*HOSTS)
    write_pair(leaf, *pair)
    cert_path, key_path = pair
    if damage == "missing cert":
        cert_path.unlink()
    elif damage == "garbage cert":
        cert_path.write_text("hello\n")
    elif damage == "other key":
        ca.issue_cert(*HOSTS).private_key_pem.write_to_path(str(key_path))
    else:  # without a password callback OpenSSL would prompt on the terminal
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(ConfigError, match=named) as error:
        TLSContext(*pair)
    if damage == "encrypted key":
        assert "encrypted" in str(error.value)


async def test_hsts_only_over_tls(tmp_path, pair):
    ca = trustme.CA()
    write_pair(ca.issue_cert(*HOSTS), *pair)
    tls = TLSContext(*pair)
    async with serving(front_config(tmp_path), tls.ssl_context) as port:
        connection = await Connection.open(port, trusting(ca))
        _, head = await connection.get()
        connection.close()
    assert "strict-transport-security: max-age=31536000\r\n" in head.lower()
    async with serving(front_config(tmp_path)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode().lower()
        writer.close()
    assert "strict-transport-security" not in head
    assert "x-content-type-options: nosniff" in head


def test_security_headers():
    assert "Strict-Transport-Security" not in security_headers(True, 0)
    assert "Strict-Transport-Security" not in security_headers(False, 100)
    headers = security_headers(True, 100)
    assert headers["Strict-Transport-Security"] == "max-age=100"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert headers["Referrer-Policy"] == "same-origin"


# the real daemon


async def wait_for_tls(port: int, context: ssl.SSLContext, process: subprocess.Popen, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await Connection.open(port, context)
        except (OSError, asyncio.TimeoutError):
            if process.poll() is not None:
                pytest.fail(f"the front end exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.mark.skipif(not (ROOT / "services" / "front" / "__main__.py").exists(),
                    reason="the front-end daemon is not written yet")
async def test_sighup_reloads_the_certificate_of_the_running_daemon(tmp_path, pair):
    old_ca, new_ca = trustme.CA(), trustme.CA()
    old_der = write_pair(old_ca.issue_cert(*HOSTS, key_type=trustme.KeyType.ECDSA), *pair)
    port = free_port()
    config = tmp_path / "hearth.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n[front]\nlisten = "127.0.0.1:{port}"\n'
                      f'tls_cert = "{pair[0]}"\ntls_key = "{pair[1]}"\n')
    env = {**os.environ, "HEARTH_CONFIG": str(config)}
    log_path = tmp_path / "front.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "services.front"], cwd=tmp_path, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    try:
        kept = await wait_for_tls(port, trusting(old_ca), process)
        assert kept.peer_cert == old_der
        status, _ = await kept.get()

        new_der = write_pair(new_ca.issue_cert(*HOSTS, key_type=trustme.KeyType.RSA), *pair)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            try:
                fresh = await Connection.open(port, trusting(new_ca))
                break
            except ssl.SSLCertVerificationError:
                assert time.monotonic() < deadline, log_path.read_text()
                await asyncio.sleep(0.1)
        assert fresh.peer_cert == new_der
        assert (await fresh.get())[0] == status
        fresh.close()
        assert (await kept.get())[0] == status  # the open keep-alive connection goes on
        assert kept.peer_cert == old_der
        kept.close()
        assert process.poll() is None, log_path.read_text()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
