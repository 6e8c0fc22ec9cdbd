"""The table-shaped parts of hearth.toml: `[[service]]` and `[[route]]` (with CORS and slots).

config.py loads the file and hands these tables here; each is checked whole,
and a problem is a ConfigError naming the file, the table and the key.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .errors import ConfigError

SERVICE_KEYS: Mapping[str, str] = MappingProxyType({
    "name": "Service name (letters, digits, _; used for hearth_NAME, NAME.log, NAME.pid).",
    "command": "Command to run, as a list of strings or one shell-quoted string.",
    "env": "Table of environment variables for the command (written to a 0600 file, never logged).",
    "env_file": "KEY=VALUE file merged into the environment (relative to the config file).",
    "user": "Run as this user (needs root); defaults to supervisor.user.",
    "health": "URL that answers 2xx when the service is ready (checked by hearth up); with slots, a path "
              "such as \"/healthz\", asked of each slot's own address.",
    "requires": "Names of services (ours or yours) that must start first.",
    "description": "One line shown by hearth status.",
    "listen": "Where the service listens (HOST:PORT or unix:PATH); the front end proxies its route there.",
    "route": "Path prefix the front end sends to this service, e.g. \"/hello/\" (needs listen).",
    "host": "Only route requests for this host (exact, or *.example.org).",
    "strip_prefix": "Remove the route's prefix before proxying (default false).",
    "max_body_kb": "Request body limit for this service's route in KiB.",
    "cors": "CORS table answered at the door: origins, methods, headers, credentials, max_age, expose.",
    "slots": "true: run two instances, NAME@prod and NAME@staging, for hearth deploy and hearth promote "
             "(needs route and staging_route or staging_host; no listen).",
    "listen_slots": "With slots: the two instances' addresses, [\"HOST:PORT\", \"HOST:PORT\"] "
                    "(default: unix:run/NAME_blue.sock and NAME_green.sock); the command gets its own in "
                    "$HEARTH_LISTEN, and $HOST and $PORT.",
    "staging_route": "With slots: path prefix the front end sends to NAME@staging, e.g. \"/hello-staging/\".",
    "staging_host": "With slots: host the front end sends to NAME@staging (with staging_route, or route's path).",
})

ROUTE_KEYS: Mapping[str, str] = MappingProxyType({
    "path": "Path prefix to match (default \"/\": everything); the longest match does not win, the first does.",
    "host": "Host to match: exact (example.org) or a wildcard (*.example.org); absent: any host.",
    "upstream": "Where to proxy: HOST:PORT or unix:PATH (relative to data_dir).",
    "service": "Instead of upstream: the name of a hearth daemon (api, …) or a [[service]] with listen "
               "(with slots: NAME or NAME@prod, NAME@staging).",
    "redirect": "Instead of proxying: answer 301 to this URL.",
    "strip_prefix": "Remove the matched prefix before proxying (default false).",
    "max_body_kb": "Request body limit in KiB (default: [front] max_body_kb).",
    "cors": "CORS table answered at the door: origins, methods, headers, credentials, max_age, expose.",
    "security_headers": "Add the standard security headers to responses (default true).",
})

CORS_KEYS: Mapping[str, type] = MappingProxyType({
    "origins": list, "methods": list, "headers": list, "expose": list, "credentials": bool, "max_age": int,
})

# hearth's daemons, and the words `hearth deploy` takes instead of a service name.
RESERVED_SERVICE_NAMES = frozenset({"api", "front", "sync", "dav", "files", "tunnel", "rotate", "relay",
                                    "cloudflared", "caddy"})


@dataclass(frozen=True)
class ServiceSpec:
    """A user's own program from a `[[service]]` table."""

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    env_file: Path | None = None
    user: str | None = None
    health: str | None = None
    requires: tuple[str, ...] = ()
    description: str = ""
    listen: str | None = None
    route: RouteSpec | None = None
    slots: bool = False                  # two instances, prod and staging (services.core.slots)
    listen_slots: tuple[str, ...] = ()   # with slots: blue's and green's address; empty: Unix sockets
    staging_route: RouteSpec | None = None


@dataclass(frozen=True)
class RouteSpec:
    """A `[[route]]` table, or the route a `[[service]]` asks for; checked, not yet resolved."""

    path: str = "/"
    host: str | None = None
    upstream: str | None = None
    service: str | None = None
    redirect: str | None = None
    strip_prefix: bool = False
    max_body_kb: int | None = None
    cors: Mapping[str, Any] | None = None
    security_headers: bool = True


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "a list of strings"}[kind]


def _parse_services(raw: Any, path: Path, base_dir: Path, known: set[str]) -> tuple[ServiceSpec, ...]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ConfigError(f"{path}: service: expected [[service]] tables")
    services = []
    for index, table in enumerate(raw, 1):
        where = f"{path}: [[service]] #{index}"
        unknown = sorted(set(table) - set(SERVICE_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(SERVICE_KEYS)})")
        name = table.get("name")
        if not isinstance(name, str) or not name.replace("_", "").isalnum() or not name.isascii():
            raise ConfigError(f"{where}: name: expected letters, digits and _, got {name!r}")
        where = f"{path}: service {name!r}"
        daemon, _, number = name.partition("_")
        if name in RESERVED_SERVICE_NAMES or name in known or (daemon in RESERVED_SERVICE_NAMES and number.isdigit()):
            raise ConfigError(f"{where}: name: {name!r} is already taken")
        known.add(name)
        command = table.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
            raise ConfigError(f"{where}: command: expected a non-empty list of strings or a string")
        env = table.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, (str, int, float, bool)) for v in env.values()):
            raise ConfigError(f"{where}: env: expected a table of strings")
        for key in ("env_file", "user", "health", "description", "listen", "route", "host",
                    "staging_route", "staging_host"):
            if key in table and not isinstance(table[key], str):
                raise ConfigError(f"{where}: {key}: expected a string, got {table[key]!r}")
        route_options = {k: table[k] for k in ("host", "strip_prefix", "max_body_kb", "cors") if k in table}
        route = None
        if "route" in table:
            if "listen" not in table and not table.get("slots"):
                raise ConfigError(f"{where}: route: needs listen (where the front end should send it)")
            route = _parse_route({"path": table["route"], "service": name, **route_options}, where)
        requires = table.get("requires", [])
        if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
            raise ConfigError(f"{where}: requires: expected a list of service names")
        services.append(ServiceSpec(
            name=name,
            command=tuple(command),
            env=MappingProxyType({k: str(v) for k, v in env.items()}),
            env_file=(base_dir / table["env_file"]).resolve() if "env_file" in table else None,
            user=table.get("user"),
            health=table.get("health"),
            requires=tuple(requires),
            description=table.get("description", ""),
            listen=table.get("listen"),
            route=route,
            **_parse_slots(table, where, route, route_options),
        ))
    slotted = {f"{spec.name}_{colour}": spec.name for spec in services if spec.slots for colour in ("blue", "green")}
    for spec in services:
        if spec.name in slotted:
            raise ConfigError(f"{path}: service {spec.name!r}: name: taken by a slot of service "
                              f"{slotted[spec.name]!r} (its instances are NAME_blue and NAME_green)")
    return tuple(services)


SLOT_ONLY_KEYS = ("listen_slots", "staging_route", "staging_host")


def _parse_slots(table: dict[str, Any], where: str, route: RouteSpec | None,
                 route_options: dict[str, Any]) -> dict[str, Any]:
    """The slot keys of a [[service]] table, checked: {} for a service without slots."""
    slots = table.get("slots", False)
    if not isinstance(slots, bool):
        raise ConfigError(f"{where}: slots: expected true or false, got {slots!r}")
    if not slots:
        for key in SLOT_ONLY_KEYS:
            if key in table:
                raise ConfigError(f"{where}: {key}: only with slots = true")
        return {}
    if "listen" in table:
        raise ConfigError(f"{where}: listen: with slots = true each instance listens on its own address: "
                          "use listen_slots = [\"HOST:PORT\", \"HOST:PORT\"], or leave both out for Unix sockets")
    if route is None:
        raise ConfigError(f"{where}: slots: needs route (the prod route) and staging_route or staging_host")
    if "staging_route" not in table and "staging_host" not in table:
        raise ConfigError(f"{where}: slots: needs staging_route or staging_host (where NAME@staging is reached)")
    health = table.get("health")
    if health is not None and not health.startswith("/"):
        raise ConfigError(f"{where}: health: with slots = true, a path such as \"/healthz\" (asked of each "
                          f"instance's own address), got {health!r}")
    listen_slots = table.get("listen_slots", [])
    if "listen_slots" in table and (
            not isinstance(listen_slots, list) or len(listen_slots) != 2 or len(set(listen_slots)) != 2
            or not all(isinstance(a, str) and _looks_like_listen(a) for a in listen_slots)):
        raise ConfigError(f"{where}: listen_slots: expected two different addresses, HOST:PORT or unix:PATH, "
                          f"got {listen_slots!r}")
    options = dict(route_options)
    if "staging_host" in table:
        options["host"] = table["staging_host"]
    staging = _parse_route({**options, "path": table.get("staging_route", route.path),
                            "service": f"{table['name']}@staging"}, where)
    if (staging.path.rstrip("/"), staging.host) == (route.path.rstrip("/"), route.host):
        raise ConfigError(f"{where}: staging_route: the same as route; staging needs a path or host of its own")
    return {"slots": True, "listen_slots": tuple(listen_slots), "staging_route": staging}


def _looks_like_listen(value: str) -> bool:
    if value.startswith("unix:"):
        return len(value) > 5
    host, sep, port = value.rpartition(":")
    return bool(sep) and port.isdigit()


def _parse_cors(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: cors: expected a table ({', '.join(CORS_KEYS)})")
    for key, value in raw.items():
        kind = CORS_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{where}: cors.{key}: unknown key (known: {', '.join(CORS_KEYS)})")
        ok = (isinstance(value, list) and all(isinstance(v, str) for v in value)) if kind is list else (
            isinstance(value, kind) and (kind is bool or not isinstance(value, bool)))
        if not ok:
            raise ConfigError(f"{where}: cors.{key}: expected {_type_name(kind)}, got {value!r}")
    if raw.get("credentials") and "*" in raw.get("origins", []):
        raise ConfigError(f"{where}: cors: origins \"*\" cannot be combined with credentials = true "
                          "(the Fetch standard forbids it); list the origins")
    return MappingProxyType({k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def _parse_route(table: dict[str, Any], where: str) -> RouteSpec:
    unknown = sorted(set(table) - set(ROUTE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(ROUTE_KEYS)})")
    for key in ("path", "host", "upstream", "service", "redirect"):
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"{where}: {key}: expected a string, got {table[key]!r}")
    for key in ("strip_prefix", "security_headers"):
        if key in table and not isinstance(table[key], bool):
            raise ConfigError(f"{where}: {key}: expected true or false, got {table[key]!r}")
    if "max_body_kb" in table and (not isinstance(table["max_body_kb"], int) or isinstance(table["max_body_kb"], bool)
                                   or table["max_body_kb"] < 0):
        raise ConfigError(f"{where}: max_body_kb: expected a whole number of KiB, got {table['max_body_kb']!r}")
    path = table.get("path", "/")
    if not path.startswith("/"):
        raise ConfigError(f"{where}: path: must start with /, got {path!r}")
    targets = [key for key in ("upstream", "service", "redirect") if key in table]
    if len(targets) != 1:
        raise ConfigError(f"{where}: needs exactly one of upstream, service or redirect")
    host = table.get("host")
    if host is not None and (not host or "*" in host.removeprefix("*.")):
        raise ConfigError(f"{where}: host: expected example.org or *.example.org, got {host!r}")
    return RouteSpec(path=path, host=host.lower() if host else None, upstream=table.get("upstream"),
                     service=table.get("service"), redirect=table.get("redirect"),
                     strip_prefix=table.get("strip_prefix", False), max_body_kb=table.get("max_body_kb"),
                     cors=_parse_cors(table["cors"], where) if "cors" in table else None,
                     security_headers=table.get("security_headers", True))


def _parse_routes(raw: Any, path: Path) -> tuple[RouteSpec, ...]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ConfigError(f"{path}: route: expected [[route]] tables")
    return tuple(_parse_route(table, f"{path}: [[route]] #{index}") for index, table in enumerate(raw, 1))
