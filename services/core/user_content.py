"""How every daemon sends a user's bytes: never as active content of this origin.

The web UI, its session cookie and its CSRF token share one origin with
/files/, /s/ share links and /sync/; a file that anyone with write access put
there (a read-write share link, a shared folder) must not run as that origin
when its owner opens it, or it could read the CSRF token and act as them.
Every response carrying a user's bytes therefore has:

- `Content-Security-Policy: sandbox`: the browser shows it in an opaque origin
  with scripts, forms, popups and plugins off; it can read no cookie and call
  no API. A photo or a text file still shows inline.
- `X-Content-Type-Options: nosniff`: the declared type is the only one used,
  so no content turns a file into HTML or a script.
- Types a browser would run as a document (HTML, and XML of any kind: XHTML,
  SVG, RSS... may all carry script) go as attachments, saved rather than
  displayed, for browsers without CSP sandbox.
- Script and style types go as text/plain: with nosniff no page of this origin
  can load them with <script src> or a stylesheet link (the UI's own
  Content-Security-Policy allows 'self').
"""
from __future__ import annotations

import mimetypes
from urllib.parse import quote

SANDBOX = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
_DOCUMENT_TYPES = frozenset({"text/html", "text/xml", "application/xml", "text/xsl"})  # and every "+xml" type
_CODE_TYPES = frozenset({"text/javascript", "application/javascript", "application/x-javascript",
                         "application/ecmascript", "text/ecmascript", "text/css", "application/wasm"})


def content_type(name: str) -> str:
    """The type a file's name suggests (application/octet-stream when none does)."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def attachment(name: str) -> str:
    """Content-Disposition for a download: an ASCII fallback and the exact UTF-8 name (RFC 6266)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%' else "_" for ch in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def user_content_headers(name: str) -> dict[str, str]:
    """Content-Type (from the name) and the headers above for sending the file `name` to a browser."""
    kind = content_type(name)
    headers = dict(SANDBOX)
    if kind in _DOCUMENT_TYPES or kind.endswith("+xml"):
        headers["Content-Disposition"] = attachment(name)
    elif kind in _CODE_TYPES:
        kind = "text/plain"
    headers["Content-Type"] = kind
    return headers
