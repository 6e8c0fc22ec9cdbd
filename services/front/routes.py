"""Which request goes where: the route table built from hearth.toml.

Order decides, not specificity: the user's `[[route]]` tables (in file order),
then the routes of `[[service]]` tables, then the suite's built-ins (`/api/`,
`/sync/`, `/dav/`, `/files/`, the Nextcloud apps'
`/status.php`, `/index.php/` (but for the thumbnails, the files daemon's), `/ocs/` and
`/remote.php/dav/avatars/`, the `/.well-known/` redirects, the redirects of
their `/remote.php/dav/` calendars and contacts to `/dav/`) and, last of all,
`/` for the web UI, which the API daemon serves. The first route whose host
and path prefix match wins, so the web UI gets only what nothing else claims,
and a user's own `path = "/"` route replaces it. `/healthz` is the front
end's own and sits before everything: it is the door's readiness check, which
a user's `path = "/"` route must not be able to take away. So does PROPFIND /,
which DAV clients given the bare server address send: a 308 to `/dav/`.

Matching rules:
- host: case-insensitive, port ignored; `*.example.org` matches
  `a.example.org` and `a.b.example.org`, not `example.org`; no host: any.
- path prefix, on segment boundaries: `/hello` and `/hello/` both match
  `/hello`, `/hello/` and `/hello/x`, never `/helloworld`. A request for
  `/hello` on a route written `/hello/` is answered by the front with a 308
  redirect to `/hello/` (see `Route.wants_slash`): relative links in the app
  then resolve under its prefix, and 308 keeps the method and the body.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping
from urllib.parse import quote

from services.core import instances
from services.core.config import Config, ConfigError, RouteSpec, ServiceSpec
from services.core.slots import COLOURS, LABELS, instance_name, slot_listen

from .upstream import UpstreamAddress, parse_upstream

Kind = Literal["proxy", "redirect", "health"]

# The Nextcloud apps' discovery, OCS and login flows, which the API daemon answers: named here, not
# left to the web UI's catch-all, so that a user's own `path = "/"` route does not take them away.
NEXTCLOUD_PREFIXES = (("/status.php", "api"), ("/index.php/", "api"), ("/ocs/", "api"),
                      ("/remote.php/dav/avatars/", "api"))
# The apps' thumbnails are drawn from the files' bytes, which the files daemon serves
# (services/files/previews.py): listed before the API daemon's /index.php/, which they are below.
NEXTCLOUD_PREVIEW_PREFIXES = (("/index.php/core/preview", "files"), ("/index.php/core/preview.png", "files"),
                              ("/index.php/apps/files/api/v1/thumbnail/", "files"))
# The suite's daemons and where they listen when their config section says nothing:
# a Unix socket in var/run, named after the daemon.
SUITE_PREFIXES = (("/api/", "api"), ("/sync/", "sync"), ("/dav/", "dav"), ("/files/", "files"), ("/s/", "files"),
                  # the Nextcloud apps' file tree and chunked uploads (services/files/namespace.py, chunked.py)
                  ("/remote.php/dav/files/", "files"), ("/remote.php/dav/uploads/", "files"),
                  ("/remote.php/dav/trashbin/", "files"),
                  ("/remote.php/dav/versions/", "files"),
                  ("/remote.php/webdav/", "files"), *NEXTCLOUD_PREVIEW_PREFIXES, *NEXTCLOUD_PREFIXES)
WELL_KNOWN_REDIRECTS = (("/.well-known/caldav", "/dav/"), ("/.well-known/carddav", "/dav/"))
HEALTH_PATH = "/healthz"
# hearth daemons a route may name with `service =` that do not speak HTTP.
NOT_HTTP = frozenset({"front", "rotate", "tunnel", "relay"})


@dataclass(frozen=True)
class Route:
    """One resolved route: where matching requests go, and the door's policy for them."""

    kind: Kind
    path: str = "/"
    host: str | None = None
    upstream: UpstreamAddress | None = None
    redirect: str | None = None
    redirect_status: int = 301
    strip_prefix: bool = False
    max_body_kb: int | None = None
    cors: Mapping[str, Any] | None = None
    security_headers: bool = True
    origin: str = "built-in"    # where it came from, for messages: "[[route]] #2", "service 'hello'"
    method: str | None = None   # only requests with this method, at exactly `path` (DAV discovery)
    keeps_rest: bool = False    # a redirect whose target gets what followed `path` (and the query)

    def matches_host(self, host: str) -> bool:
        if self.host is None:
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host

    def matches_path(self, path: str) -> bool:
        prefix = self.path
        if self.method is not None:
            return path == prefix
        if prefix == "/" or path == prefix.rstrip("/") or path == prefix:
            return True
        return path.startswith(prefix if prefix.endswith("/") else prefix + "/")

    def location(self, raw_path: str) -> str:
        """Where a redirect sends `raw_path` (the target as the client sent it)."""
        target = self.redirect or "/"
        if not self.keeps_rest:
            return target
        base, sep, query = raw_path.partition("?")
        rest = base[len(self.path):] if base.startswith(self.path) else ""
        return target + rest + sep + query

    def wants_slash(self, path: str) -> bool:
        """The request is `/hello` on a `/hello/` route: answer 308 to `/hello/`."""
        return len(self.path) > 1 and self.path.endswith("/") and path == self.path[:-1]

    def upstream_path(self, path: str, raw_path: str) -> str:
        """The request target to send upstream: the raw path and query, minus the prefix if asked.

        `path` is the decoded path the route matched, `raw_path` the target as the
        client sent it (percent-encoding and query intact), which is what goes
        upstream. A client that percent-encoded part of the prefix itself gets the
        decoded remainder re-encoded instead.
        """
        if not self.strip_prefix or self.path == "/":
            return raw_path
        prefix = self.path.rstrip("/")
        if raw_path.startswith(prefix):
            rest = raw_path[len(prefix):]
        else:
            query = raw_path.partition("?")[2]
            rest = quote(path[len(prefix):], safe="/:@!$&'()*+,;=-._~") + (f"?{query}" if query else "")
        return rest if rest.startswith("/") else "/" + rest


# A DAV client given only the server's address asks PROPFIND / for its principal:
# send it to the DAV root. 308 keeps the method and the body; no web page uses PROPFIND.
DAV_DISCOVERY = Route("redirect", path="/", redirect="/dav/", redirect_status=308, method="PROPFIND",
                      origin="built-in: DAV discovery at the server root")
# The Nextcloud apps (and DAVx⁵'s "log in with Nextcloud") look for calendars and contacts under
# /remote.php/dav/: the DAV daemon serves them at /dav/, so each address goes to its /dav/ twin.
# 308 keeps the method and the body (PROPFIND, REPORT, PUT), and the DAV daemon's hrefs are /dav/ ones,
# so a client asks there directly from then on. DAVx⁵'s "log in with Nextcloud" asks the root without its
# slash (its LoginTypeNextcloud.DAV_PATH, "/remote.php/dav"); dav4jvm repeats a PROPFIND at a 301, 302,
# 307 or 308's Location.
NEXTCLOUD_DAV_REDIRECTS = (
    *(Route("redirect", path=root, redirect="/dav/", redirect_status=308, method="PROPFIND",
            origin="built-in: DAV discovery at the Nextcloud apps' DAV root")
      for root in ("/remote.php/dav/", "/remote.php/dav")),
    *(Route("redirect", path=f"/remote.php/dav/{space}/", redirect=f"/dav/{space}/", redirect_status=308,
            keeps_rest=True, origin="built-in: the Nextcloud apps' calendars and contacts")
      for space in ("calendars", "addressbooks", "principals")))


def normalise_host(header: str | None) -> str:
    """The Host header without port, trailing dot or case: `Example.org.:8080` -> `example.org`."""
    if not header:
        return ""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


class RouteTable:
    """The routes in matching order; `match(host, path)` returns the first that fits.

    A slotted service's routes name `NAME@prod` and `NAME@staging` rather than
    an address (UpstreamAddress.slot); `slotted` holds each colour's real
    address, and the front end's Slots resolves the label per request.
    """

    def __init__(self, routes: list[Route] | tuple[Route, ...],
                 slotted: dict[str, dict[str, UpstreamAddress]] | None = None):
        self.routes = tuple(routes)
        self.slotted = slotted or {}

    @classmethod
    def from_config(cls, config: Config) -> RouteTable:
        routes = [Route("health", path=HEALTH_PATH, security_headers=False, origin="built-in /healthz"),
                  DAV_DISCOVERY]
        for index, spec in enumerate(config.routes, 1):
            routes.append(_resolve(spec, config, f"[[route]] #{index}"))
        for service in config.services:
            # staging first: its prefix or host is usually the narrower one (/hello-staging/ vs /)
            if service.staging_route is not None:
                routes.append(_resolve(service.staging_route, config, f"service {service.name!r} (staging)"))
            if service.route is not None:
                routes.append(_resolve(service.route, config, f"service {service.name!r}"))
        for prefix, daemon in SUITE_PREFIXES:
            routes.append(Route("proxy", path=prefix, upstream=suite_upstream(config, daemon)))
        for path, target in WELL_KNOWN_REDIRECTS:
            routes.append(Route("redirect", path=path, redirect=target))
        routes.extend(NEXTCLOUD_DAV_REDIRECTS)
        routes.append(Route("proxy", path="/", upstream=suite_upstream(config, "api"), origin="built-in: web UI"))
        slotted = {spec.name: slot_addresses(spec, config) for spec in config.services if spec.slots}
        return cls(routes, slotted)

    def match(self, host: str | None, path: str, method: str | None = None) -> Route | None:
        host = normalise_host(host)
        for route in self.routes:
            if route.method not in (None, method):
                continue
            if route.matches_path(path) and route.matches_host(host):
                return route
        return None

    def upstreams(self) -> list[UpstreamAddress]:
        """Every distinct real upstream, in route order (for connection pools and /healthz).

        A slot label stands for both colours of its service: either may carry it.
        """
        seen: dict[str, UpstreamAddress] = {}
        for route in self.routes:
            if route.upstream is None:
                continue
            if route.upstream.pool:
                for address in route.upstream.pool:
                    seen.setdefault(address.key, address)
            elif route.upstream.slot is None:
                seen.setdefault(route.upstream.key, route.upstream)
            else:
                for address in self.slotted[route.upstream.service or ""].values():
                    seen.setdefault(address.key, address)
        return list(seen.values())


def slot_addresses(spec: ServiceSpec, config: Config) -> dict[str, UpstreamAddress]:
    """Each colour's real address, supervised as NAME_COLOUR and shown as NAME@COLOUR."""
    addresses = {}
    for colour in COLOURS:
        address = parse_upstream(slot_listen(spec, colour), config.data_dir, service=instance_name(spec.name, colour),
                                 where=f"{config.path or 'hearth.toml'}: service {spec.name!r}: listen_slots")
        addresses[colour] = replace(address, label=f"{spec.name}@{colour}")
    return addresses


def suite_upstream(config: Config, daemon: str) -> UpstreamAddress:
    """A hearth daemon's address: its `[section] listen`, or var/run/DAEMON.sock while it has none.

    A daemon with `instances` > 1 is a pool of its instances' addresses (services.core.instances),
    each supervised under its own name (sync, sync_2, …).
    """
    section = config.values.get(daemon)
    listen = section["listen"] if section is not None and "listen" in section else f"unix:run/{daemon}.sock"
    first = parse_upstream(listen, config.data_dir, service=daemon, suite=True, where=f"[{daemon}] listen")
    if instances.count(config, daemon) == 1:
        return first
    pool = tuple(parse_upstream(instances.listen(config, instance), config.data_dir, service=instance.name,
                                suite=True, where=f"[{daemon}] listen")
                 for instance in instances.instances_of(config, daemon))
    return UpstreamAddress(label=daemon, service=daemon, suite=True, pool=pool)


def _resolve(spec: RouteSpec, config: Config, origin: str) -> Route:
    where = f"{config.path or 'hearth.toml'}: {origin}"
    common = dict(path=spec.path, host=spec.host, strip_prefix=spec.strip_prefix, max_body_kb=spec.max_body_kb,
                  cors=spec.cors, security_headers=spec.security_headers, origin=origin)
    if spec.redirect is not None:
        return Route("redirect", redirect=spec.redirect, **common)
    if spec.upstream is not None:
        return Route("proxy", upstream=parse_upstream(spec.upstream, config.data_dir, where=f"{where}: upstream"),
                     **common)
    name = spec.service or ""
    service_name, _, label = name.partition("@")
    slotted = next((s for s in config.services if s.name == service_name and s.slots), None)
    if slotted is not None and label in ("", *LABELS):
        label = label or "prod"
        return Route("proxy", upstream=UpstreamAddress(label=f"{slotted.name}@{label}", service=slotted.name,
                                                       slot=label), **common)
    if name in NOT_HTTP:
        raise ConfigError(f"{where}: service: {name!r} does not serve HTTP")
    if name in {daemon for _, daemon in SUITE_PREFIXES}:
        return Route("proxy", upstream=suite_upstream(config, name), **common)
    service = next((s for s in config.services if s.name == name), None)
    if service is None:
        raise ConfigError(f"{where}: service: no service named {name!r}")
    if not service.listen:
        raise ConfigError(f"{where}: service {name!r} has no listen: the front end cannot reach it")
    return Route("proxy", upstream=parse_upstream(service.listen, config.data_dir, service=name,
                                                  where=f"{where}: listen"), **common)
