"""hearth.toml, declared once.

`SCHEMA` is the only list of options: the loader, the `HEARTH_…` environment
overrides, `hearth config --help`, `hearth config --markdown` (the README
table) and the docs test all read it. Load once with `load_config`, which
returns a frozen `Config`; pass that in, never re-read the file.
"""
from __future__ import annotations

import os
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .errors import CommandError
from .exitcodes import ExitStatus

DEFAULT_CONFIG_NAME = "hearth.toml"


@dataclass(frozen=True)
class Option:
    section: str  # "" for a top-level key
    key: str
    type: type
    default: Any
    help: str

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.key}" if self.section else self.key

    @property
    def env(self) -> str:
        return "HEARTH_" + self.dotted.replace(".", "_").upper()


SCHEMA: tuple[Option, ...] = (
    Option("", "data_dir", str, "./var",
           "Data directory (db/, blobs/, run/, log/). Relative to the config file's directory."),
    Option("", "log_level", str, "info", "Log level of every daemon: debug, info, warning or error."),
    Option("api", "listen", str, "unix:run/api.sock",
           "Where the API daemon listens: HOST:PORT, or unix:PATH (relative to data_dir). "
           "The front end routes /api here."),
    Option("front", "listen", str, "127.0.0.1:8080", "The one door: where the front end listens (HOST:PORT)."),
    Option("front", "tls_cert", str, "", "PEM certificate chain; with tls_key, the front end speaks HTTPS. Reloaded on SIGHUP."),
    Option("front", "tls_key", str, "", "PEM private key for tls_cert."),
    Option("front", "hsts_max_age", int, 31536000, "Strict-Transport-Security max-age sent when TLS is on (0: none)."),
    Option("front", "trusted_proxies", list, [],
           "Addresses or CIDRs (e.g. the tunnel agent, cloudflared) whose X-Forwarded-For/Proto/Host are believed."),
    Option("front", "connect_timeout", float, 5.0, "Seconds to connect to an upstream before answering 502/503."),
    Option("front", "idle_timeout", float, 60.0, "Seconds without a byte from the upstream before answering 504 (or cutting a stream)."),
    Option("front", "total_timeout", float, 0.0, "Longest time for one proxied request in seconds (0: no limit, for big transfers)."),
    Option("front", "header_timeout", float, 10.0, "Seconds a client has to send its request headers (slowloris); then 408."),
    Option("front", "keepalive_timeout", float, 75.0, "Seconds an idle client connection is kept open."),
    Option("front", "max_header_kb", int, 16, "Largest request line or header block in KiB; larger gets 431."),
    Option("front", "max_body_kb", int, 0, "Default request body limit in KiB for routes without their own (0: no limit); larger gets 413."),
    Option("front", "rate_limit", float, 100.0, "Requests per second per client address (sustained); more gets 429."),
    Option("front", "rate_burst", int, 400, "Requests a client address may make in a burst above rate_limit."),
    Option("front", "max_connections", int, 256, "Open connections per client address; more gets 429 and is closed."),
    Option("front", "retry_after", int, 2, "Retry-After seconds on a 503 while a supervised upstream restarts."),
    Option("auth", "max_failures", int, 10,
           "Failed logins from one client address before it gets 429 Too Many Requests."),
    Option("auth", "failure_window", int, 300,
           "Seconds over which failed logins are counted; an address is refused until its oldest failure ages out."),
    Option("supervisor", "user", str, "",
           "Run every daemon as this user (needs root). Empty: as the user who runs hearth up."),
    Option("supervisor", "restart_delay", float, 1.0, "Seconds before the first restart of a crashed daemon."),
    Option("supervisor", "backoff_max", float, 60.0, "Ceiling in seconds for the doubling restart delay."),
    Option("supervisor", "stable_after", float, 60.0,
           "A daemon that stayed up this many seconds counts as healthy again: the delay resets."),
    Option("supervisor", "max_restarts", int, 5, "Give up on a daemon after this many restarts within restart_window."),
    Option("supervisor", "restart_window", float, 300.0, "Seconds over which restarts are counted."),
    Option("supervisor", "stop_timeout", float, 10.0, "Seconds between SIGTERM and SIGKILL when stopping a daemon."),
    Option("supervisor", "ready_timeout", float, 30.0,
           "Seconds hearth up waits for a daemon to become healthy before reporting failure."),
    Option("rotate", "interval", int, 60, "Seconds between the supervisor's own log rotation runs."),
    Option("rotate", "count", int, 7, "Archives kept per log file."),
    Option("rotate", "size_kb", int, 10240, "Rotate a log once it reaches this many KiB."),
    Option("rotate", "when", str, "@T00", "Also rotate on this newsyslog.conf(5) schedule (@T00: daily at midnight)."),
    Option("rotate", "flags", str, "CZ", "newsyslog.conf(5) flags of the generated entries (Z: gzip, C: create)."),
)

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

RESERVED_SERVICE_NAMES = frozenset({"api", "front", "sync", "dav", "files", "tunnel", "rotate", "relay"})


class ConfigError(CommandError):
    """The config file or environment is wrong: exit code 2, one line naming where."""

    def __init__(self, message: str):
        super().__init__(message, ExitStatus.CONFIG)


class Section(Mapping[str, Any]):
    """A frozen mapping with attribute access: `config.api.listen`."""

    def __init__(self, values: dict[str, Any]):
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


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


@dataclass(frozen=True)
class Config:
    path: Path | None          # the file that was read, if any
    base_dir: Path             # relative paths in the config resolve against this
    values: Mapping[str, Section]
    services: tuple[ServiceSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "values")
        if name in values:
            return values[name]
        top = values[""]
        if name in top:
            return top[name]
        raise AttributeError(name)

    @property
    def data_dir(self) -> Path:
        return (self.base_dir / self.values[""]["data_dir"]).resolve()

    def resolve(self, path: str | Path) -> Path:
        """A path from the config, made absolute against the config's directory."""
        return (self.base_dir / path).resolve()

    def data_path(self, *parts: str) -> Path:
        return self.data_dir.joinpath(*parts)


def _convert(option: Option, raw: Any, where: str) -> Any:
    """Check a TOML value (or coerce an env string) against the option's type."""
    kind = option.type
    if isinstance(raw, str) and kind is not str and where.startswith("$"):
        raw = _from_env_string(option, raw, where)
    if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if kind is list:
        if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            return tuple(raw)
    elif isinstance(raw, kind) and (kind is bool or not isinstance(raw, bool)):
        return raw
    raise ConfigError(f"{where}: {option.dotted}: expected {_type_name(kind)}, got {raw!r}")


def _from_env_string(option: Option, raw: str, where: str) -> Any:
    try:
        if option.type is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if option.type is list:
            return [part.strip() for part in raw.split(",") if part.strip()]
        return option.type(raw)
    except ValueError:
        raise ConfigError(f"{where}: expected {_type_name(option.type)}, got {raw!r}") from None


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "a list of strings"}[kind]


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


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
        if name in RESERVED_SERVICE_NAMES or name in known:
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


def find_config_path(explicit: str | Path | None = None, environ: Mapping[str, str] = os.environ) -> tuple[Path, bool]:
    """The config file to read and whether its absence is an error (it is when named explicitly)."""
    if explicit:
        return Path(explicit), True
    if environ.get("HEARTH_CONFIG"):
        return Path(environ["HEARTH_CONFIG"]), True
    return Path(DEFAULT_CONFIG_NAME), False


def load_config(explicit: str | Path | None = None, environ: Mapping[str, str] = os.environ) -> Config:
    """Read hearth.toml (if any), apply HEARTH_… overrides, check every key and type."""
    path, required = find_config_path(explicit, environ)
    data: dict[str, Any] = {}
    if path.exists() or required:
        data = _read_file(path)
        base_dir = path.resolve().parent
        used_path: Path | None = path
    else:
        base_dir = Path.cwd()
        used_path = None

    by_section: dict[str, dict[str, Option]] = {}
    for option in SCHEMA:
        by_section.setdefault(option.section, {})[option.key] = option

    values: dict[str, dict[str, Any]] = {section: {} for section in by_section}
    services_raw = data.pop("service", [])
    routes_raw = data.pop("route", [])
    for name, raw in data.items():
        if name in by_section.get("", {}):
            values[""][name] = _convert(by_section[""][name], raw, str(path))
        elif name in by_section and name != "":
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: {name}: expected a [{name}] table")
            for key, value in raw.items():
                option = by_section[name].get(key)
                if option is None:
                    known = ", ".join(by_section[name])
                    raise ConfigError(f"{path}: [{name}] {key}: unknown key (known: {known})")
                values[name][key] = _convert(option, value, str(path))
        else:
            raise ConfigError(f"{path}: {name}: unknown key")

    for option in SCHEMA:
        if option.env in environ:
            values[option.section][option.key] = _convert(option, environ[option.env], f"${option.env}")
        values[option.section].setdefault(option.key, option.default)

    level = values[""]["log_level"].lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"{used_path or '$HEARTH_LOG_LEVEL'}: log_level: expected debug, info, warning or error, got {level!r}")

    services = _parse_services(services_raw, path, base_dir, set())
    routes = _parse_routes(routes_raw, path)
    known_targets = RESERVED_SERVICE_NAMES | {s.name for s in services} | {
        f"{s.name}@{label}" for s in services if s.slots for label in ("prod", "staging")}
    for index, route in enumerate(routes, 1):
        if route.service and route.service not in known_targets:
            raise ConfigError(f"{path}: [[route]] #{index}: service: no service named {route.service!r}")
    frozen = MappingProxyType({section: Section(v) for section, v in values.items()})
    return Config(path=used_path, base_dir=base_dir, values=frozen, services=services, routes=routes)


def describe_options() -> str:
    """Plain-text list of every option, for `hearth config --help`."""
    lines = []
    for option in SCHEMA:
        lines.append(f"  {option.dotted} ({option.type.__name__}, default {option.default!r}, env {option.env})")
        lines.append(f"      {option.help}")
    lines.append("  [[service]] tables: " + ", ".join(SERVICE_KEYS))
    lines.append("  [[route]] tables: " + ", ".join(ROUTE_KEYS))
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| key | type | default | environment | meaning |", "| --- | --- | --- | --- | --- |"]
    for option in SCHEMA:
        section = f"[{option.section}] " if option.section else ""
        rows.append(f"| `{section}{option.key}` | {option.type.__name__} | `{option.default!r}` "
                    f"| `{option.env}` | {option.help} |")
    rows.append("")
    rows.append("| `[[service]]` key | meaning |")
    rows.append("| --- | --- |")
    for key, meaning in SERVICE_KEYS.items():
        rows.append(f"| `{key}` | {meaning} |")
    rows += ["", "| `[[route]]` key | meaning |", "| --- | --- |"]
    for key, meaning in ROUTE_KEYS.items():
        rows.append(f"| `{key}` | {meaning} |")
    return "\n".join(rows)


def example_toml() -> str:
    """deploy/hearth.toml.example: every key, commented, at its default."""
    out = ["# hearth.toml: every key with its default. Generated by `hearth config --example`.",
           "# Each key can be overridden by the environment variable shown above it.", ""]
    section = None
    for option in SCHEMA:
        if option.section != section:
            section = option.section
            if section:
                out += ["", f"[{section}]"]
        value = option.default
        rendered = str(value).lower() if isinstance(value, bool) else (
            f'"{value}"' if isinstance(value, str) else repr(value))
        out += [f"# {option.help}", f"# ({option.env})", f"{option.key} = {rendered}"]
    out += ["", "# Your own programs, supervised like hearth's daemons. One table per service.",
            "# [[service]]"]
    out += [f"#   {key}: {meaning}" for key, meaning in SERVICE_KEYS.items()]
    out += ['# name = "hello"',
            '# command = ["python3", "-m", "http.server", "9001", "--bind", "127.0.0.1"]',
            '# env = { GREETING = "hi" }',
            '# env_file = "hello.env"',
            '# health = "http://127.0.0.1:9001/"',
            '# requires = ["api"]',
            '# description = "a static file server"',
            '#',
            '# A service with staging and production slots (see `hearth deploy`, `hearth promote`):',
            '# [[service]]',
            '# name = "shop"',
            '# command = "sh -c \'exec ./shop-server --port $PORT\'"',
            '# slots = true',
            '# listen_slots = ["127.0.0.1:9101", "127.0.0.1:9102"]',
            '# route = "/shop/"',
            '# staging_route = "/shop-staging/"',
            '# health = "/healthz"']
    out += ["", "# Extra front-end routes, matched in order before the built-in ones. One table per route.",
            "# [[route]]"]
    out += [f"#   {key}: {meaning}" for key, meaning in ROUTE_KEYS.items()]
    out += ['# host = "*.example.org"', '# path = "/hooks/"', '# upstream = "127.0.0.1:9100"',
            '# strip_prefix = true', '# max_body_kb = 1024',
            '# cors = { origins = ["https://app.example.org"], methods = ["GET", "POST"], credentials = true }']
    return "\n".join(out) + "\n"
