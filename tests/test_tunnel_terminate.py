"""Hostnames the relay terminates TLS for ([terminate] in relay.toml), on loopback.

The topology is test_tunnel's (relay, agent, front end with TLS, API), with
a second site, old.test, that the relay serves with its own certificate
(from a CA only the phone trusts for it) and passes on as plain HTTP by
Host, on :443 and on :80. home.test stays end-to-end TLS and its :80 still
redirects. The front end learns from the agent's PROXY header (the SSL TLV)
that plain HTTP follows and which scheme the client used.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import sys

import pytest
import trustme

from services.core.errors import ConfigError
from services.core.proxy_protocol import proxy_v2_header
from services.tunnel.relay_config import load_relay_config
from tests.test_tunnel import PHONE, SITE, Topology, closed_by_peer, count_lines, wait_until

pytestmark = pytest.mark.timeout(120)

OLD = "old.test"
TERMINATE = f'''
[terminate."{OLD}"]
tls_cert = "old.pem"
tls_key = "old.key"
'''


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    topology = Topology(tmp_path_factory.mktemp("terminate"), sites=(SITE, OLD), relay_extra=TERMINATE)
    topology.old_ca = trustme.CA()
    certificate = topology.old_ca.issue_cert(OLD)
    certificate.cert_chain_pems[0].write_to_path(str(topology.public / "old.pem"))
    certificate.private_key_pem.write_to_path(str(topology.public / "old.key"))
    with topology:
        yield topology


def phone_socket(topology: Topology, port: str) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((PHONE, 0))
    sock.connect(("127.0.0.1", topology.ports[port]))
    return sock


def over(sock: socket.socket, host: str) -> http.client.HTTPConnection:
    """An HTTP/1.1 client on an already open (and maybe TLS) connection, so it keeps the phone's address."""
    connection = http.client.HTTPConnection(host, timeout=10)
    connection.sock = sock
    return connection


def get(connection: http.client.HTTPConnection, path: str, marker: str) -> tuple[int, str, str]:
    connection.request("GET", path, headers={"X-Marker": marker})
    response = connection.getresponse()
    return response.status, response.read().decode(), response.getheader("X-Seen-Proto", "")


def test_https_to_a_terminated_hostname_is_served_with_the_relays_certificate(topology):
    context = ssl.create_default_context()
    topology.old_ca.configure_trust(context)   # not the home's CA: the relay answers for old.test
    tls = context.wrap_socket(phone_socket(topology, "public"), server_hostname=OLD)
    assert tls.selected_alpn_protocol() in (None, "http/1.1")
    connection = over(tls, OLD)
    # Two requests on one connection: the relay passes the whole connection, not just its first request.
    assert get(connection, "/up/echo", "first") == (200, f"echo first from {PHONE}", "https")
    assert get(connection, "/up/echo", "second") == (200, f"echo second from {PHONE}", "https")
    connection.close()
    # The trade the [terminate] table makes, and says it makes: the relay sees this site in the clear.
    assert b"X-Marker: first" in topology.tap.read_bytes()


def test_http_to_a_terminated_hostname_is_proxied_by_host(topology):
    connection = over(phone_socket(topology, "http"), OLD)
    assert get(connection, "/up/echo", "plain") == (200, f"echo plain from {PHONE}", "http")
    connection.close()


def test_end_to_end_hostnames_still_redirect_and_unknown_hosts_are_refused(topology):
    connection = over(phone_socket(topology, "http"), SITE)
    connection.request("HEAD", "/files/a?b=1")
    response = connection.getresponse()
    assert response.status == 308 and response.getheader("Location") == f"https://{SITE}/files/a?b=1"
    connection.close()

    before = topology.status()["refused"].get("host", 0)
    connection = over(phone_socket(topology, "http"), "nobody.test")
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 421 and b"no site" in response.read()
    assert topology.status()["refused"]["host"] == before + 1
    wait_until("one log line", lambda: count_lines(topology.relay, "no site named 'nobody.test'") == 1)


def test_garbage_on_the_http_port_gets_400_and_one_log_line(topology):
    sock = phone_socket(topology, "http")
    sock.sendall(b"\x16\x03\x01\x00\x05hello\r\n\r\n")
    reply = sock.makefile("rb").read()
    sock.close()
    assert reply.startswith(b"HTTP/1.1 400 ")
    wait_until("one log line", lambda: count_lines(topology.relay, "http: not an HTTP request") == 1)
    # The relay still serves.
    connection = over(phone_socket(topology, "http"), OLD)
    assert get(connection, "/up/echo", "after")[0] == 200


def test_front_takes_plain_http_after_a_header_with_the_ssl_tlv_and_reports_its_scheme(topology):
    for scheme in ("https", "http"):
        sock = socket.create_connection(("127.0.0.1", topology.ports["proxied"]), timeout=5)
        sock.sendall(proxy_v2_header(("198.51.100.7", 4711), ("127.0.0.1", 443), plain_after=scheme))
        connection = over(sock, OLD)
        assert get(connection, "/up/echo", scheme) == (200, f"echo {scheme} from 198.51.100.7", scheme)
        connection.close()


def test_front_refuses_a_truncated_tlv(topology):
    header = proxy_v2_header(("198.51.100.7", 4711), ("127.0.0.1", 443))
    tlv = b"\x20\x00\x09\x01\x00"   # an SSL TLV that claims 9 bytes of value and holds 2
    broken = header[:14] + (int.from_bytes(header[14:16], "big") + len(tlv)).to_bytes(2, "big") + header[16:] + tlv
    with socket.create_connection(("127.0.0.1", topology.ports["proxied"]), timeout=5) as sock:
        sock.sendall(broken + b"GET / HTTP/1.1\r\n\r\n")
        assert closed_by_peer(sock)
    wait_until("the front's log line", lambda: count_lines(topology.front, "truncated PROXY TLV") == 1)


@pytest.mark.parametrize("table, message", [
    ('[terminate."else.test"]\ntls_cert = "old.pem"\ntls_key = "old.key"\n', "no agent serves else.test"),
    (f'[terminate."{SITE}"]\ntls_cert = "old.pem"\n', "expected tls_cert and tls_key"),
    (f'[terminate."{SITE}"]\ntls_cert = "old.pem"\ntls_key = "old.key"\ncolour = 1\n', "colour: unknown key"),
])
def test_terminate_table_mistakes_are_named(tmp_path, table, message):
    (tmp_path / "home.secret").write_text("0123456789abcdef0123\n")
    (tmp_path / "relay.toml").write_text(f'tls_cert = "r.pem"\ntls_key = "r.key"\n[agents.home]\n'
                                         f'secret_files = ["home.secret"]\nhostnames = ["{SITE}"]\n{table}')
    with pytest.raises(ConfigError, match=message):
        load_relay_config(tmp_path / "relay.toml")


def test_a_terminate_certificate_that_does_not_load_is_one_line_and_exit_2(topology, tmp_path):
    config = (topology.public / "relay.toml").read_text().replace('tls_cert = "old.pem"', 'tls_cert = "gone.pem"')
    (tmp_path / "relay.toml").write_text(config)
    for name in ("relay.pem", "relay.key", "home.secret", "home.secret.next", "old.key"):
        (tmp_path / name).write_bytes((topology.public / name).read_bytes())
    result = subprocess.run([sys.executable, "-m", "services.cli", "relay", "--config", str(tmp_path / "relay.toml")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and f"[terminate.'{OLD}']" in result.stderr


def test_status_counts_the_terminated_sites_streams(topology):
    before = topology.status()["agents"]["home"]["streams_total"]
    connection = over(phone_socket(topology, "http"), OLD)
    assert get(connection, "/up/echo", "counted")[0] == 200
    connection.close()
    status = topology.status()["agents"]["home"]
    assert status["hostnames"] == sorted([OLD, SITE]) and status["streams_total"] == before + 1
