"""Every string a client can put into a log line is escaped, and share tokens are never written whole.

core.log.escape is the one function; the formatter applies it to each argument
of every record and the access logs to each field. A real daemon process is
asked with raw bytes (http.client would refuse to send them) and its stderr
read back.
"""
from __future__ import annotations

import logging
import socket

from services.core.log import OneLineFormatter, escape, hide_share_tokens
from tests.daemons import LoopbackDaemon

TOKEN = "Zq3vR8sK1mPx7Lw2Yt5Nb9Hc4Jd6Fg0A"


def formatted(message: str, *args) -> str:
    return OneLineFormatter().format(logging.LogRecord("files", logging.INFO, __file__, 1, message, args, None))


def test_escape_writes_what_could_forge_or_hide_a_line_as_hex_bytes():
    assert escape('a\x00b\nc\r\t"q"\\ \x7f\x85') == r"a\x00b\x0ac\x0d\x09\x22q\x22\x5c \x7f\xc2\x85"
    assert escape("evil\u202etxt.exe \u200b") == r"evil\xe2\x80\xaetxt.exe \xe2\x80\x8b"
    assert escape("Café 日記.txt") == "Café 日記.txt"          # printable letters of any script stay readable
    assert escape(b"\xff".decode("utf-8", "surrogateescape")) == r"\xff"   # a byte that was not UTF-8
    assert escape('say "hi"', quotes=False) == 'say "hi"'


def test_the_formatter_escapes_every_argument_and_what_slips_through_otherwise():
    line = formatted("%s %s -> %d: %s", "PUT", "/files/ann/a\x00b\n2026 INFO forged", 404, 'no "x"')
    assert "\n" not in line and "\x00" not in line
    assert line.endswith(r'PUT /files/ann/a\x00b\x0a2026 INFO forged -> 404: no \x22x\x22')
    assert formatted("%r", "a\x00").endswith(r"files: 'a\x00'")
    assert formatted("%(path)s", {"path": "a\rb"}).endswith(r"files: a\x0db")
    assert formatted(f"built with an f-string: {'a' + chr(0)}").endswith(r"built with an f-string: a\x00")


def test_share_tokens_are_cut_to_four_characters_wherever_they_appear():
    assert hide_share_tokens(f"GET /s/{TOKEN}/download HTTP/1.1") == "GET /s/Zq3v…/download HTTP/1.1"
    assert hide_share_tokens(f'"https://door.example/s/{TOKEN}?x=1"') == '"https://door.example/s/Zq3v…?x=1"'
    assert hide_share_tokens(f"/s/{TOKEN}") == "/s/Zq3v…"
    assert hide_share_tokens("/files/ann/docs/s/readme") == "/files/ann/docs/s/readme"  # a folder named s
    assert TOKEN not in formatted("%s %s -> %d: %s", "GET", f"/s/{TOKEN}", 404, "no such link")


class ApiDaemon(LoopbackDaemon):
    module, section = "services.api", "api"

    def healthy(self) -> bool:
        return self.exchange("GET", "/healthz")[0] == 200


def test_a_daemons_log_holds_no_raw_control_character_quote_or_share_token(tmp_path):
    daemon = ApiDaemon(tmp_path).start()
    try:
        head = (f"GET /s/{TOKEN}/x%00y%0a2026-01-01T00:00:00.000Z%20ERROR%20forged HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nUser-Agent: agent \"quoted\" \u202eevil\r\n"
                f"Referer: https://door.example/s/{TOKEN}\r\nConnection: close\r\n\r\n")
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as connection:
            connection.sendall(head.encode())
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 404 ")
    finally:
        assert daemon.stop() == 0, daemon.log()
    written = daemon.log_path.read_bytes()
    assert b"\x00" not in written and "\u202e".encode() not in written and TOKEN[4:].encode() not in written, written
    lines = written.decode().splitlines()
    assert not any(line.startswith("2026-01-01T00:00:00.000Z") for line in lines), lines
    access = [line for line in lines if "aiohttp.access" in line and "/s/" in line]
    assert len(access) == 1, lines
    assert (r'"GET /s/Zq3v…/x%00y%0a2026-01-01T00:00:00.000Z%20ERROR%20forged HTTP/1.1" 404 ' in access[0]
            and r'"https://door.example/s/Zq3v…" "agent \x22quoted\x22 \xe2\x80\xaeevil"' in access[0]), access
