"""What the door accepts and what it writes down: a real front end on loopback, spoken to with raw sockets.

aiohttp's and http.client's clients tidy up what they send (they add a
version, a Host, percent-encode), so every request here is bytes on a
socket. The front end is the one of test_front_proxy's harness: real
upstream processes on TCP and a Unix socket, the front as its own process,
its stderr (access log and daemon log in one) read back as written.
"""
from __future__ import annotations

import re
import socket

import pytest

from tests.test_front_proxy import Setup, raw_exchange, wait_until


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    setup = Setup(tmp_path_factory.mktemp("door"))
    yield setup
    setup.close()
    assert setup.front.returncode == 0, setup.stderr_path.read_text()


def log_lines(front: Setup, needle: str) -> list[str]:
    return [line for line in front.stderr_path.read_text(errors="replace").splitlines() if needle in line]


def access_line(front: Setup, marker: str) -> str:
    """The one access log line of the request whose target holds `marker`, once written."""
    wait_until(lambda: any(re.search(r'\] "[A-Z]+ ', line) for line in log_lines(front, marker)),
               f"the access log line for {marker}")
    lines = [line for line in log_lines(front, marker) if re.search(r'\] "[A-Z]+ ', line)]
    assert len(lines) == 1, lines
    return lines[0]


# --- item 14: a client hanging up while the upstream thinks -------------------------------

def test_a_client_hanging_up_before_the_answer_is_one_499_line_and_no_traceback(front):
    log_before = front.stderr_path.stat().st_size
    for attempt in range(3):
        with socket.create_connection(("127.0.0.1", front.front_port), timeout=10) as connection:
            connection.sendall(f"GET /tcp/slow?seconds=0.5&hangup={attempt} HTTP/1.1\r\n"
                               f"Host: 127.0.0.1\r\n\r\n".encode())
        # closed at once: the front is still waiting for the upstream's answer
        line = access_line(front, f"hangup={attempt}")
        assert f'"GET /tcp/slow?seconds=0.5&hangup={attempt} HTTP/1.1" 499 - ' in line, line
    written = front.stderr_path.read_bytes()[log_before:].decode(errors="replace")
    assert " ERROR " not in written and "Traceback" not in written, written


def test_a_client_gone_before_an_error_answer_is_499_too(front):
    with socket.create_connection(("127.0.0.1", front.front_port), timeout=10) as connection:
        connection.sendall(b"GET /tcp/slow?seconds=3&gone=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    # The upstream stays silent past idle_timeout (1.5 s): a 504 nobody is left to read.
    line = access_line(front, "gone=1")
    assert '"GET /tcp/slow?seconds=3&gone=1 HTTP/1.1" 499 - ' in line, line


# --- item 15: request heads the door refuses ----------------------------------------------

def answer_status(front: Setup, head: bytes) -> tuple[int, bytes]:
    """Send one raw request head; the status and the body of the answer (the connection closes after it)."""
    answer, _ = raw_exchange(front.front_port, head)
    status_line, _, rest = answer.partition(b"\r\n")
    assert re.fullmatch(rb"HTTP/1\.[01] \d{3} .*", status_line), answer  # a status line, whatever happens
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("head", [b"GET /healthz\r\n\r\n", b"GET /healthz\r\nHost: 127.0.0.1\r\n\r\n"])
def test_a_request_line_without_a_version_gets_400_not_an_http_0_9_answer(front, head):
    status, body = answer_status(front, head)
    assert status == 400 and b"without an HTTP version" in body
    assert log_lines(front, "without an HTTP version")


GOOD_HOSTS = ["127.0.0.1", "127.0.0.1:8080", "example.org", "Example.ORG.", "xn--bcher-kva.example:443",
              "[::1]", "[::1]:8080", "[2001:db8::7]:1", "[v1.fe:x]", "a_b~c-d!$&'()*+,;=", "h%41st", "host:", ""]
BAD_HOSTS = ["a b", "evil.example/x", "user@example.org", "example.org:80x", "example.org:80:80", "[::1",
             "::1", "[zz::1]", "[fe80::1%eth0]", "[127.0.0.1]", '"q"', "ex\\ample", "h%4", "exa<mple"]


@pytest.mark.parametrize("host", GOOD_HOSTS)
def test_well_formed_host_values_pass(front, host):
    status, _ = answer_status(front, f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert status == 200


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_malformed_host_values_get_400(front, host):
    status, body = answer_status(front, f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert status == 400 and b"malformed Host header" in body, body


def test_two_hosts_or_none_get_400_but_http_1_0_needs_none(front):
    """RFC 9112 §3.2's other MUSTs, which aiohttp's parser enforces: pinned here."""
    two, _ = answer_status(front, b"GET /healthz HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n")
    none, body = answer_status(front, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert (two, none) == (400, 400) and b"Missing 'Host' header" in body
    assert answer_status(front, b"GET /healthz HTTP/1.0\r\n\r\n")[0] == 200


# --- item 15: what the door writes down ---------------------------------------------------

def test_request_derived_strings_are_escaped_in_every_log_line(front):
    log_before = front.stderr_path.stat().st_size
    # The path decodes to a NUL, a newline forging a second line, a bidi override; the agent has quotes.
    head = ("GET /refused/escape%00me%0a2026-01-01T00:00:00.000Z%20ERROR%20forged:%20x%e2%80%ae HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nUser-Agent: agent \"quoted\" \\ \u202eevil\r\nConnection: close\r\n\r\n")
    status, _ = answer_status(front, head.encode())
    assert status == 502  # nothing listens there: the door logs a warning with the path, and the access line
    access = access_line(front, "escape%00me")
    assert r'"agent \x22quoted\x22 \x5c \xe2\x80\xaeevil"' in access, access
    written = front.stderr_path.read_bytes()[log_before:]
    assert b"\x00" not in written and "\u202e".encode() not in written, written
    lines = written.decode().splitlines()
    assert not any(line.startswith("2026-01-01T00:00:00.000Z") for line in lines), lines  # no forged line
    warning = [line for line in lines if " WARNING front: GET /refused/escape" in line]
    assert len(warning) == 1 and r"escape\x00me\x0a2026-01-01" in warning[0] and r"x\xe2\x80\xae" in warning[0]


def test_share_link_tokens_are_never_logged_in_full(front):
    token = "Zq3vR8sK1mPx7Lw2Yt5Nb9Hc4Jd6Fg0A"  # the shape of a real one: token_urlsafe(24)
    status, _ = answer_status(front, f"GET /s/{token}/download HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                     f"Referer: https://door.example/s/{token}\r\nConnection: close\r\n\r\n".encode())
    assert status >= 400  # no files daemon behind this door: what matters is what was written
    line = access_line(front, "/s/Zq3v")
    assert '"GET /s/Zq3v…/download HTTP/1.1"' in line and '"https://door.example/s/Zq3v…"' in line, line
    assert token[4:12] not in front.stderr_path.read_text(), "the token is in the log"
