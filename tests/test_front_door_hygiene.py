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
