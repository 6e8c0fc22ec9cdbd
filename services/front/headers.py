"""The security headers the door adds to responses (route option `security_headers`).

They are defaults, not overrides: `apply_defaults` leaves any header the
upstream set itself alone, so an app that needs framing, a camera or its own
Content-Security-Policy can say so.

Choices a reader could not guess:
- Referrer-Policy `same-origin`, not `strict-origin-when-cross-origin`: the
  latter is already every current browser's default, so sending it changes
  nothing, and it tells every third-party site a user follows a link to the
  name of their home server. `same-origin` keeps the full Referer for the
  server's own pages (Django's HTTPS CSRF check needs it) and sends none
  elsewhere.
- Framing is refused twice: `X-Frame-Options: DENY` for old browsers and
  `Content-Security-Policy: frame-ancestors 'none'` for new ones. That CSP has
  no other directive, so it restricts nothing else an app does.
- Strict-Transport-Security without `includeSubDomains` (nor `preload`): the
  server's name is often a subdomain, or the apex, of a household domain whose
  other hosts (router, printer, NAS admin page) have no TLS; includeSubDomains
  would lock browsers out of them for max-age seconds, with no way back.
"""
from __future__ import annotations

from typing import Mapping, MutableMapping

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=()"


def security_headers(tls: bool, hsts_max_age: int) -> dict[str, str]:
    """The headers to add to a response; `tls` is whether the client's connection is HTTPS.

    Behind a relay or cloudflared that terminates TLS, that is the trusted
    X-Forwarded-Proto, not the socket.
    """
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "frame-ancestors 'none'",
        "Permissions-Policy": PERMISSIONS_POLICY,
    }
    if tls and hsts_max_age > 0:
        headers["Strict-Transport-Security"] = f"max-age={int(hsts_max_age)}"
    return headers


def apply_defaults(headers: MutableMapping[str, str], defaults: Mapping[str, str]) -> None:
    """Add each default the response does not already carry (case-insensitive names expected)."""
    for name, value in defaults.items():
        if name not in headers:
            headers[name] = value
