"""hearth.toml, declared once.

`SCHEMA` is the only list of options: the loader, the `HEARTH_…` environment
overrides, `hearth config --help`, `hearth config --markdown` (the README
table, config_docs.py) and the docs test all read it. The `[[service]]` and
`[[route]]` tables are checked in config_tables.py. Load once with `load_config`, which
returns a frozen `Config`; pass that in, never re-read the file.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .config_tables import RESERVED_SERVICE_NAMES, RouteSpec, ServiceSpec, _parse_routes, _parse_services, _type_name
from .errors import ConfigError

# What the rest of hearth imports from here; the table specs live in config_tables.
__all__ = ["SCHEMA", "Config", "ConfigError", "Option", "RouteSpec", "Section", "ServiceSpec",
           "find_config_path", "load_config"]

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


# The daemons that may run as several processes behind the front end (services.core.instances).
SCALABLE = ("sync", "files", "dav")
MAX_INSTANCES = 16
INSTANCES_HELP = ("Processes of the {daemon} daemon behind the front end (1 to 16), which spreads requests over "
                  "them; instance K > 1 is supervised as {daemon}_K and listens beside listen (socket "
                  "{daemon}_K.sock, or the port + K - 1). See \"Several processes\" in the README.")

SCHEMA: tuple[Option, ...] = (
    Option("", "data_dir", str, "./var",
           "Data directory (db/, blobs/, run/, log/). Relative to the config file's directory."),
    Option("", "log_level", str, "info", "Log level of every daemon: debug, info, warning or error."),
    Option("api", "listen", str, "unix:run/api.sock",
           "Where the API daemon listens: HOST:PORT, or unix:PATH (relative to data_dir). "
           "The front end routes /api here."),
    Option("sync", "listen", str, "unix:run/sync.sock",
           "Where the sync daemon listens: HOST:PORT, or unix:PATH (relative to data_dir). "
           "The front end routes /sync here."),
    Option("sync", "instances", int, 1, INSTANCES_HELP.format(daemon="sync")),
    Option("sync", "quota_mb", int, 0,
           "Storage quota per user in MiB: the current files of the folders they own (0: no quota)."),
    Option("sync", "keep_versions_days", int, 30,
           "Days old versions, deleted files and deleted folders stay restorable; older non-current revisions "
           "and folders deleted longer ago are dropped and their chunks freed by the next garbage collection "
           "(0: keep forever)."),
    Option("sync", "gc_interval", int, 3600,
           "Seconds between the sync daemon's retention and garbage collection runs (0: never run them)."),
    Option("sync", "gc_grace", int, 86400,
           "Seconds an uploaded chunk is kept before a commit references it (the upload lease); "
           "garbage collection never removes a younger one. Keep it far above the longest upload."),
    Option("storage", "blobs", str, "local",
           "Where file chunks live: \"local\" (data_dir/blobs) or \"s3\" (an S3-compatible bucket; credentials "
           "only from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, never in this file)."),
    Option("storage", "s3_endpoint", str, "",
           "With blobs = \"s3\": the S3 endpoint URL, e.g. http://127.0.0.1:8333 (SeaweedFS) or "
           "https://s3.eu-central-1.amazonaws.com."),
    Option("storage", "s3_bucket", str, "", "With blobs = \"s3\": the bucket (it must exist)."),
    Option("storage", "s3_region", str, "us-east-1", "With blobs = \"s3\": the region requests are signed for."),
    Option("storage", "s3_prefix", str, "",
           "With blobs = \"s3\": key prefix inside the bucket (e.g. \"hearth/\"); chunks go under PREFIX chunks/."),
    Option("files", "listen", str, "unix:run/files.sock",
           "Where the WebDAV file daemon listens: HOST:PORT, or unix:PATH (relative to data_dir). "
           "The front end routes /files here."),
    Option("files", "instances", int, 1, INSTANCES_HELP.format(daemon="files")),
    Option("files", "preview_max_megapixels", int, 64,
           "Largest picture (in millions of pixels, as its header declares) the Nextcloud apps get a "
           "thumbnail of; a larger one shows its file type's icon (0: no thumbnails). Guards memory against "
           "decompression bombs."),
    Option("files", "preview_cache_mb", int, 1024,
           "Disk space (MiB) for thumbnails in data_dir/previews; past it the least recently used go "
           "(0: no limit)."),
    Option("dav", "listen", str, "unix:run/dav.sock",
           "Where the CalDAV/CardDAV daemon listens: HOST:PORT, or unix:PATH (relative to data_dir). "
           "The front end routes /dav here."),
    Option("dav", "instances", int, 1, INSTANCES_HELP.format(daemon="dav")),
    Option("dav", "mail_domain", str, "localhost",
           "Domain of local users' calendar addresses: user alice is mailto:alice@DOMAIN when she "
           "organizes or is invited (RFC 6638 scheduling)."),
    Option("dav", "smtp_host", str, "",
           "SMTP server for iMIP invitations to attendees outside hearth (empty: no email is sent)."),
    Option("dav", "smtp_port", int, 587, "Port of smtp_host."),
    Option("dav", "smtp_starttls", bool, True, "Upgrade the SMTP connection with STARTTLS before sending."),
    Option("dav", "smtp_username", str, "", "SMTP login (empty: send without logging in)."),
    Option("dav", "smtp_password_file", str, "",
           "File holding the SMTP password (relative to the config file; keep it mode 0600)."),
    Option("dav", "smtp_from", str, "",
           "Envelope sender and From of iMIP mail (empty: hearth@mail_domain); replies go to the "
           "organizer or attendee through Reply-To."),
    Option("dav", "smtp_retry", float, 30.0,
           "Seconds before a failed iMIP message is tried again; the delay doubles up to an hour, "
           "and a message still unsent after three days is dropped (and logged)."),
    Option("dav", "keep_revisions_days", int, 30,
           "Days a replaced or deleted event, task or contact (also one of a deleted calendar or address "
           "book) stays restorable with hearth dav restore; older revisions are dropped (0: keep forever)."),
    Option("dav", "gc_interval", int, 3600,
           "Seconds between the DAV daemon's runs that drop expired revisions and store events' instances "
           "for the years around now, which time-range queries read (0: never run them; queries then read "
           "older events the slow way)."),
    Option("front", "listen", str, "127.0.0.1:8080", "The one door: where the front end listens (HOST:PORT)."),
    Option("front", "tls_cert", str, "", "PEM certificate chain; with tls_key, the front end speaks HTTPS. Reloaded on SIGHUP."),
    Option("front", "tls_key", str, "", "PEM private key for tls_cert."),
    Option("front", "hsts_max_age", int, 31536000, "Strict-Transport-Security max-age sent when TLS is on (0: none)."),
    Option("front", "trusted_proxies", list, [],
           "Addresses or CIDRs (e.g. the tunnel agent, cloudflared) whose X-Forwarded-For/Proto/Host are believed."),
    Option("front", "connect_timeout", float, 5.0, "Seconds to connect to an upstream before answering 502/503."),
    Option("front", "idle_timeout", float, 60.0, "Seconds without a byte from the upstream before answering 504 (or cutting a stream)."),
    Option("front", "total_timeout", float, 0.0, "Longest time for one proxied request in seconds (0: no limit, for big transfers)."),
    Option("front", "header_timeout", float, 10.0, "Seconds a client has to send its request headers (slowloris); then 408. 0: no limit."),
    Option("front", "keepalive_timeout", float, 75.0, "Seconds an idle client connection is kept open."),
    Option("front", "max_header_kb", int, 16, "Largest request head in KiB: a longer request line gets 414, larger header fields or block 431."),
    Option("front", "max_body_kb", int, 0, "Default request body limit in KiB for routes without their own (0: no limit); larger gets 413."),
    Option("front", "rate_limit", float, 100.0,
           "Requests per second per client address (sustained) without credentials a daemon has accepted; "
           "more gets 429. Requests with accepted credentials are never limited. 0: no limit."),
    Option("front", "rate_burst", int, 400,
           "Requests without accepted credentials a client address may make in a burst above rate_limit."),
    Option("front", "max_connections", int, 256, "Open connections per client address; more gets 429 and is closed. 0: no limit; trusted_proxies are exempt."),
    Option("front", "retry_after", int, 2, "Retry-After seconds on a 503 while a supervised upstream restarts."),
    Option("front", "proxy_protocol_listen", str, "",
           "A second, loopback-only listener (HOST:PORT) where every connection must start with a PROXY "
           "protocol v2 header, whose source address becomes the client's: where the tunnel agent hands "
           "connections (empty: none)."),
    Option("tunnel", "relay", str, "",
           "The relay's agent listener (HOST:PORT) the tunnel agent dials out to (empty: the agent stays idle)."),
    Option("tunnel", "name", str, "home", "This agent's name in the relay's [agents.NAME] table."),
    Option("tunnel", "secret_file", str, "",
           "File holding this agent's secret, as listed in the relay's secret_files (keep it mode 0600)."),
    Option("tunnel", "relay_ca", str, "", "CA certificate file that the relay's certificate must chain to."),
    Option("tunnel", "relay_pin", str, "",
           "Instead of relay_ca: the relay's public key pinned as sha256/BASE64 of its SubjectPublicKeyInfo."),
    Option("tunnel", "relay_name", str, "",
           "The name the relay's certificate must carry (with relay_ca; empty: the host of relay)."),
    Option("tunnel", "hostnames", list, [], "Hostnames the relay sends to this agent (SNI; \"*.example.org\" "
           "for any one label under it); each must be covered by this agent's hostnames in the relay's config."),
    Option("tunnel", "pool_size", int, 8,
           "Idle connections the agent keeps open to the relay, each ready to carry one public connection."),
    Option("tunnel", "backoff_max", float, 30.0,
           "Ceiling in seconds for the agent's jittered, doubling delay between reconnection attempts."),
    Option("relay", "config", str, "",
           "relay.toml for `hearth relay`, run by this supervisor as hearth_relay (on the public server; "
           "empty: no relay here)."),
    Option("auth", "max_failures", int, 10,
           "Failed logins from one client address before it gets 429 Too Many Requests "
           "(counted over every daemon, kept across restarts)."),
    Option("auth", "failure_window", int, 300,
           "Seconds over which failed logins are counted; an address is refused until its oldest failure ages out."),
    Option("backup", "replica", str, "",
           "Where the database is replicated continuously by Litestream (the hearth_litestream service): a "
           "directory (relative to the config file, or file:///PATH); \"s3\": the [storage] bucket, under "
           "s3_prefix db/, with hearth.toml and the files it names under s3_prefix server/, so the bucket alone "
           "restores the server; or s3://BUCKET/PREFIX: the same in another bucket on [storage]'s s3_endpoint "
           "(credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the supervisor's environment). "
           "Empty: no replication."),
    Option("backup", "sync_interval", float, 1.0,
           "Seconds between Litestream's shipments of new changes to the replica: at most this much of the "
           "latest changes is lost with the machine."),
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


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


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

    for daemon in SCALABLE:
        if not 1 <= values[daemon]["instances"] <= MAX_INSTANCES:
            raise ConfigError(f"{used_path or f'$HEARTH_{daemon.upper()}_INSTANCES'}: [{daemon}] instances: "
                              f"expected 1 to {MAX_INSTANCES}, got {values[daemon]['instances']}")

    services = _parse_services(services_raw, path, base_dir, set())
    routes = _parse_routes(routes_raw, path)
    known_targets = RESERVED_SERVICE_NAMES | {s.name for s in services} | {
        f"{s.name}@{label}" for s in services if s.slots for label in ("prod", "staging")}
    for index, route in enumerate(routes, 1):
        if route.service and route.service not in known_targets:
            raise ConfigError(f"{path}: [[route]] #{index}: service: no service named {route.service!r}")
    frozen = MappingProxyType({section: Section(v) for section, v in values.items()})
    return Config(path=used_path, base_dir=base_dir, values=frozen, services=services, routes=routes)
