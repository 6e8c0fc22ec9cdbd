"""What the door refuses in a request head that aiohttp's parser lets through.

- A request line without an HTTP version (`GET /`) is HTTP/0.9: no headers,
  no status line in the answer. Nothing hearth serves speaks it, and a
  response without a status line is what request-smuggling tricks feed on.
- The Host header's value (RFC 9112 §3.2): `uri-host [ ":" port ]` in
  RFC 3986's grammar (§3.2.2: an IP-literal in brackets, or a reg-name, which
  covers IPv4 addresses); a server MUST answer 400 otherwise. Routing,
  X-Forwarded-Host and upstreams all trust this value. (An HTTP/1.1 request
  with no Host, or with two, aiohttp's parser refuses itself: the tests pin it.)
"""
from __future__ import annotations

import ipaddress
import re

from aiohttp.http import HttpVersion10, RawRequestMessage

# RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ); port = *DIGIT (§3.2.3).
_REG_NAME = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
_HOST = re.compile(rf"(?:\[(?P<literal>[^\]]*)\]|{_REG_NAME})(?::[0-9]*)?")
# IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
_IP_FUTURE = re.compile(r"v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+")


def head_problem(message: RawRequestMessage) -> str | None:
    """Why this parsed request head must get 400, or None if it may pass."""
    if message.version < HttpVersion10:
        return "request line without an HTTP version (HTTP/0.9 is not served)"
    host = message.headers.get("Host")
    if host is not None and not valid_host(host):
        return "malformed Host header"
    return None


def valid_host(value: str) -> bool:
    """Whether `value` is `uri-host [ ":" port ]` (RFC 3986 §3.2.2, §3.2.3); empty is allowed (RFC 9112 §3.2)."""
    match = _HOST.fullmatch(value)
    if match is None:
        return False
    literal = match["literal"]
    if literal is None:
        return True
    if _IP_FUTURE.fullmatch(literal):
        return True
    if "%" in literal:  # Python would take a zone id (fe80::1%eth0); RFC 3986 has none
        return False
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True
