"""One line per request on stderr, in combined log format plus duration and upstream.

    203.0.113.7 - ann [21/Nov/2026:22:02:27 +0000] "GET /api/v1/me HTTP/1.1" 200 123 "-" "curl/8.5.0" 0.004 api

The fields are Apache's combined format (client, identd "-", user, time,
request line, status, body bytes or "-", Referer, User-Agent) so goaccess,
fail2ban and friends read it, followed by the seconds the request took and
the upstream that answered ("-" when the door answered itself). The user is
the name in a Basic Authorization header, unverified (like nginx's
$remote_user): good for reading logs, not for trusting. Times are UTC.
Every field is escaped as nginx does (core.log.escape), and a share link's
token is cut to its first characters in the request line and the Referer:
the log must not open anyone's share.

The lines go to stderr, which the supervisor's wrapper writes into
var/log/front.log (and rotates); they are written whole, so lines never mix.
"""
from __future__ import annotations

import base64
import binascii
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from aiohttp import web

from services.core.http import request_line
from services.core.log import escape, hide_share_tokens

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class Exchange:
    """What the log line needs to know about one request, filled in as it is handled."""

    started: float
    client: str = "-"
    status: int = 0
    sent: int = 0            # body bytes sent to the client
    upstream: str = "-"


class AccessLog:
    """Writes one combined-format line per request to a text stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def log(self, request: web.BaseRequest, exchange: Exchange) -> None:
        stream = self.stream or sys.stderr
        duration = time.monotonic() - exchange.started
        headers = request.headers
        line = (f"{exchange.client or '-'} - {escape(remote_user(request))} [{_now()}] "
                f'"{escape(hide_share_tokens(request_line(request)))}" {exchange.status} {exchange.sent or "-"} '
                f'"{escape(hide_share_tokens(headers.get("Referer", "-")))}" '
                f'"{escape(headers.get("User-Agent", "-"))}" {duration:.3f} {escape(exchange.upstream)}\n')
        try:
            stream.write(line)
            stream.flush()
        except (OSError, ValueError):
            pass  # stderr gone (wrapper dying): the request itself must not fail for its log line


def remote_user(request: web.BaseRequest) -> str:
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return "-"
    try:
        user = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return "-"
    return user.replace(" ", "%20") or "-"


def _now() -> str:
    t = time.gmtime()
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
