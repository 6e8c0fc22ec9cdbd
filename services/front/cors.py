"""CORS answered at the door, from a route's `cors` table.

Preflights (OPTIONS with Origin and Access-Control-Request-Method) are always
answered here and never reach the upstream. A refused preflight still gets a
plain 204, only without any Access-Control-Allow-* header: the browser then
blocks the real request, and the reason goes to the debug log, never to the
(possibly hostile) page.

The door is the single source of truth for CORS: on routes with a `cors`
table, Access-Control-* headers sent by the upstream are dropped, so an app
cannot widen (or accidentally contradict) what the config allows.

Origins are compared as the Fetch standard serializes them: scheme, host and
port, lowercase, default port omitted. An entry may be exact
(`https://app.example.org`), a subdomain wildcard (`https://*.example.org`:
any depth of subdomain, never the bare domain, same scheme and port), the
literal "null", or "*" (any origin; then the answer is `*` and credentials are
impossible: config loading already refuses "*" with credentials).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from multidict import CIMultiDict

from services.core.config import ConfigError

log = logging.getLogger("front.cors")

SAFELISTED_METHODS = ("GET", "HEAD", "POST")
DEFAULT_MAX_AGE = 600
DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
# Readable by scripts anyway (CORS-safelisted response headers) or never (cookies).
_NEVER_EXPOSED = frozenset({"cache-control", "content-language", "content-length", "content-type",
                            "expires", "last-modified", "pragma", "set-cookie", "set-cookie2", "vary",
                            "access-control-allow-origin", "access-control-allow-credentials"})


@dataclass(frozen=True)
class Origin:
    """A tuple origin (scheme, host, port) as the Fetch standard compares them."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> Origin | None:
        """The origin of `scheme://host[:port]`; None for anything else (paths, userinfo, "null")."""
        try:
            parts = urlsplit(text.strip())
            port = parts.port
        except ValueError:
            return None
        if (not parts.scheme or not parts.hostname or parts.username is not None
                or parts.path not in ("", "/") or parts.query or parts.fragment):
            return None
        scheme = parts.scheme.lower()
        host = parts.hostname.lower().rstrip(".")
        if not _HOST.fullmatch(host) and ":" not in host:  # a name or IPv4, else an IPv6 literal
            return None
        if port == DEFAULT_PORTS.get(scheme):
            port = None
        return cls(scheme, host, port)


@dataclass(frozen=True)
class _Wildcard:
    """`scheme://*.suffix[:port]`: strict subdomains of suffix, at any depth."""

    scheme: str
    suffix: str  # ".example.org"
    port: int | None

    def matches(self, origin: Origin) -> bool:
        return (origin.scheme == self.scheme and origin.port == self.port
                and origin.host.endswith(self.suffix) and len(origin.host) > len(self.suffix))


class CorsPolicy:
    """One route's CORS rules; build with `from_spec(route.cors)`."""

    def __init__(self, *, origins: tuple[str, ...] = (), methods: tuple[str, ...] | None = None,
                 headers: tuple[str, ...] = (), expose: tuple[str, ...] = (),
                 credentials: bool = False, max_age: int = DEFAULT_MAX_AGE, where: str = "cors"):
        self.any_origin = "*" in origins
        if self.any_origin and credentials:
            raise ConfigError(f'{where}: origins "*" cannot be combined with credentials = true')
        self.allow_null = "null" in origins
        self.exact: set[Origin] = set()
        self.wildcards: list[_Wildcard] = []
        for entry in origins:
            if entry in ("*", "null"):
                continue
            self._add_origin(entry, where)
        listed = methods if methods is not None else SAFELISTED_METHODS
        self.any_method = "*" in listed
        self.methods = tuple(dict.fromkeys(m.upper() for m in listed if m != "*"))
        self.any_header = "*" in headers
        self.headers = tuple(dict.fromkeys(h.lower() for h in headers if h != "*"))
        self.expose = tuple(expose)
        self.credentials = credentials
        self.max_age = max_age
        # An answer that never depends on the Origin needs no Vary: Origin.
        self.origin_independent = self.any_origin and not self.exact and not self.wildcards

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None, *, where: str = "cors") -> CorsPolicy | None:
        """The policy of a route's checked `cors` table; None when the route has none."""
        if spec is None:
            return None
        return cls(origins=tuple(spec.get("origins", ())),
                   methods=tuple(spec["methods"]) if "methods" in spec else None,
                   headers=tuple(spec.get("headers", ())), expose=tuple(spec.get("expose", ())),
                   credentials=bool(spec.get("credentials", False)),
                   max_age=int(spec.get("max_age", DEFAULT_MAX_AGE)), where=where)

    def _add_origin(self, entry: str, where: str) -> None:
        scheme, sep, rest = entry.partition("://")
        if sep and rest.startswith("*."):
            parsed = Origin.parse(f"{scheme}://{rest[2:]}")
            if parsed is not None and "*" not in rest[2:]:
                self.wildcards.append(_Wildcard(parsed.scheme, "." + parsed.host, parsed.port))
                return
        else:
            parsed = Origin.parse(entry)
            if parsed is not None:
                self.exact.add(parsed)
                return
        raise ConfigError(f"{where}: origins: {entry!r} is not an origin "
                          "(scheme://host[:port], scheme://*.domain, \"null\" or \"*\")")

    def origin_allowed(self, origin: str) -> bool:
        if self.any_origin:
            return True
        if origin == "null":
            return self.allow_null
        parsed = Origin.parse(origin)
        if parsed is None:
            return False
        return parsed in self.exact or any(w.matches(parsed) for w in self.wildcards)

    def _allow_origin_value(self, origin: str) -> str:
        return "*" if self.any_origin else origin

    @staticmethod
    def is_preflight(request: web.BaseRequest) -> bool:
        headers = request.headers
        return (request.method == hdrs.METH_OPTIONS and hdrs.ORIGIN in headers
                and hdrs.ACCESS_CONTROL_REQUEST_METHOD in headers)

    def preflight(self, request: web.BaseRequest) -> web.Response | None:
        """The door's answer to a preflight; None when the request is not one (proxy it)."""
        if not self.is_preflight(request):
            return None
        headers = request.headers
        origin = headers[hdrs.ORIGIN]
        method = headers[hdrs.ACCESS_CONTROL_REQUEST_METHOD].strip()
        asked = [h.strip().lower() for h in headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "").split(",")]
        asked = [h for h in asked if h]
        response = web.Response(status=204)
        vary = [hdrs.ORIGIN, hdrs.ACCESS_CONTROL_REQUEST_METHOD, hdrs.ACCESS_CONTROL_REQUEST_HEADERS]
        if self.origin_independent:
            vary.remove(hdrs.ORIGIN)
        response.headers[hdrs.VARY] = ", ".join(vary)

        refusal = self._refusal(origin, method, asked)
        if refusal:
            log.debug("preflight %s %s from %s refused: %s", method, request.path, origin, refusal)
            return response
        out = response.headers
        out[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = self._allow_origin_value(origin)
        if self.credentials:
            out[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        # The Fetch standard compares unusual method names byte for byte:
        # echo the one asked for when it matched only case-insensitively.
        methods = list(self.methods)
        if method not in methods:
            methods.append(method)
        out[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = ", ".join(methods)
        # "*" in headers is answered by echoing what was asked: a literal "*"
        # means nothing to a browser sending credentials and never covers
        # Authorization (Fetch standard), an echo always works.
        allowed_headers = list(self.headers)
        if self.any_header:
            allowed_headers += [h for h in asked if h not in allowed_headers]
        if allowed_headers:
            out[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ", ".join(allowed_headers)
        if self.max_age > 0:
            out[hdrs.ACCESS_CONTROL_MAX_AGE] = str(self.max_age)
        return response

    def _refusal(self, origin: str, method: str, asked: list[str]) -> str | None:
        """Why this preflight is refused, or None when it is allowed."""
        if not self.origin_allowed(origin):
            return f"origin {origin} is not allowed"
        if not self.any_method and method.upper() not in self.methods:
            return f"method {method} is not allowed (allowed: {', '.join(self.methods)})"
        if not self.any_header:
            extra = [h for h in asked if h not in self.headers]
            if extra:
                return f"header {', '.join(extra)} not allowed (allowed: {', '.join(self.headers) or 'none'})"
        return None

    def decorate(self, request: web.BaseRequest, headers: CIMultiDict) -> None:
        """Set the CORS headers of an actual (non-preflight) response, in place.

        Drops every Access-Control-* header the upstream sent, adds Vary: Origin
        (unless the answer never depends on the Origin), and for an allowed
        Origin adds Allow-Origin, Allow-Credentials and Expose-Headers.
        """
        for name in [name for name in headers if name.lower().startswith("access-control-")]:
            headers.popall(name, None)
        if not self.origin_independent:
            add_vary(headers, hdrs.ORIGIN)
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or not self.origin_allowed(origin):
            return
        headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = self._allow_origin_value(origin)
        if self.credentials:
            headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        expose = list(self.expose)
        if "*" in expose and self.credentials:
            # With credentials a literal "*" exposes nothing (Fetch standard):
            # name this response's own headers instead.
            expose.remove("*")
            expose += [name for name in dict.fromkeys(headers) if name.lower() not in _NEVER_EXPOSED]
        if expose:
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = ", ".join(dict.fromkeys(expose))


def add_vary(headers: CIMultiDict, name: str) -> None:
    """Merge `name` into the Vary header (one header, no duplicates; "*" already covers all)."""
    tokens = [t.strip() for value in headers.getall(hdrs.VARY, ()) for t in value.split(",") if t.strip()]
    if "*" in tokens or name.lower() in (t.lower() for t in tokens):
        return
    headers.popall(hdrs.VARY, None)
    headers[hdrs.VARY] = ", ".join(tokens + [name])
