"""relay.toml: the public relay's own small config (it runs on another machine than hearth.toml's).

    public_listen = "0.0.0.0:443"      # TLS passthrough by SNI
    http_listen = "0.0.0.0:80"         # optional: redirects to https by Host ("" = off)
    control_listen = "0.0.0.0:7443"    # agents dial in here over TLS
    status_listen = "127.0.0.1:7480"   # JSON status; loopback only
    tls_cert = "relay.pem"             # the control listener's certificate (agents verify it)
    tls_key = "relay.key"
    hello_timeout = 5.0                # seconds a public client has to send its ClientHello
    max_hello_bytes = 16384            # a longer ClientHello is refused
    idle_timeout = 300.0               # seconds without a byte before a stream is closed
    wait_for_pool = 5.0                # seconds a public connection waits for a free agent connection
    max_unrouted = 1024                # connections at once that have not yet said where they go
                                       # (ClientHello, request head, agent login); more are turned away

    [agents.home]
    secret_files = ["home.secret"]     # one secret per file; several are all valid (rotation)
    hostnames = ["cloud.example.org"]  # what this agent may serve ("*.example.org": any one label)
    max_streams = 256                  # open public connections at once

    [terminate."old.example.org"]      # optional: the relay terminates TLS for this hostname
    tls_cert = "old.pem"               # (it must be one an agent serves) and proxies its HTTP,
    tls_key = "old.key"                # on :443 and on :80 alike, by Host

A [terminate] hostname is for a device that cannot speak TLS to your home's
certificate: the relay then sees that hostname's traffic in the clear, so
leave it out unless you need it. Every other hostname stays end-to-end TLS.

Paths are relative to the config file. Every key is checked at start; a wrong
one is one line naming the file, the key and what was expected.
"""
from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.errors import ConfigError

from .hostnames import covered, normalise, problem

MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class AgentSpec:
    name: str
    secrets: tuple[bytes, ...]
    hostnames: tuple[str, ...]
    max_streams: int


@dataclass(frozen=True)
class RelayConfig:
    path: Path
    public_listen: Address
    http_listen: Address | None
    control_listen: Address
    status_listen: Address | None
    tls_cert: Path
    tls_key: Path
    hello_timeout: float
    max_hello_bytes: int
    idle_timeout: float
    wait_for_pool: float
    max_unrouted: int
    agents: tuple[AgentSpec, ...]
    terminate: dict[str, tuple[Path, Path]]   # hostname -> (certificate, key) the relay serves it with

    def agent_for(self, hostname: str) -> AgentSpec | None:
        """The agent serving `hostname`: the one naming it exactly, else one whose wildcard matches it."""
        exact = next((agent for agent in self.agents if hostname in agent.hostnames), None)
        return exact or next((agent for agent in self.agents if covered(agent.hostnames, hostname)), None)


TOP_KEYS = {"public_listen", "http_listen", "control_listen", "status_listen", "tls_cert", "tls_key",
            "hello_timeout", "max_hello_bytes", "idle_timeout", "wait_for_pool", "max_unrouted", "agents",
            "terminate"}
AGENT_KEYS = {"secret_files", "hostnames", "max_streams"}
TERMINATE_KEYS = {"tls_cert", "tls_key"}


def load_relay_config(path: str | Path) -> RelayConfig:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    base = path.resolve().parent
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(f"{path}: {key}: unknown key (known: {', '.join(sorted(TOP_KEYS))})")

    def get(key: str, kind: type, default: Any) -> Any:
        value = data.get(key, default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(f"{path}: {key}: expected {kind.__name__}, got {value!r}")
        return value

    def address(key: str, default: str) -> Address | None:
        value = get(key, str, default)
        if not value:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ConfigError(f"{path}: {key}: expected HOST:PORT, got {value!r}")
        return Address(host.strip("[]"), int(port))

    status = address("status_listen", "127.0.0.1:7480")
    if status is not None and not _is_loopback(status.host):
        raise ConfigError(f"{path}: status_listen: {status.host} is not a loopback address; "
                          "the status page is for the relay's own machine")
    agents_raw = get("agents", dict, {})
    if not agents_raw:
        raise ConfigError(f"{path}: agents: expected at least one [agents.NAME] table")
    agents = tuple(_agent(path, base, name, raw) for name, raw in agents_raw.items())
    claimed: dict[str, str] = {}
    for agent in agents:
        for hostname in agent.hostnames:
            if hostname in claimed:
                raise ConfigError(f"{path}: [agents.{agent.name}] hostnames: {hostname} is already "
                                  f"agent {claimed[hostname]!r}'s")
            claimed[hostname] = agent.name
    tls_cert, tls_key = get("tls_cert", str, ""), get("tls_key", str, "")
    if not tls_cert or not tls_key:
        raise ConfigError(f"{path}: tls_cert and tls_key: the control listener needs a certificate")
    terminate = {normalise(hostname): _terminated(path, base, hostname, raw, claimed)
                 for hostname, raw in get("terminate", dict, {}).items()}
    return RelayConfig(
        path=path,
        public_listen=address("public_listen", "0.0.0.0:443"),
        http_listen=address("http_listen", ""),
        control_listen=address("control_listen", "0.0.0.0:7443"),
        status_listen=status,
        tls_cert=base / tls_cert, tls_key=base / tls_key,
        hello_timeout=_positive(path, "hello_timeout", get("hello_timeout", float, 5.0)),
        max_hello_bytes=int(_positive(path, "max_hello_bytes", get("max_hello_bytes", int, 16384))),
        idle_timeout=_positive(path, "idle_timeout", get("idle_timeout", float, 300.0)),
        wait_for_pool=_positive(path, "wait_for_pool", get("wait_for_pool", float, 5.0)),
        max_unrouted=int(_positive(path, "max_unrouted", get("max_unrouted", int, 1024))),
        agents=agents,
        terminate=terminate,
    )


def _agent(path: Path, base: Path, name: str, raw: Any) -> AgentSpec:
    where = f"{path}: [agents.{name}]"
    _check_table(where, raw, AGENT_KEYS)
    files, hostnames = raw.get("secret_files"), raw.get("hostnames")
    for key, value in (("secret_files", files), ("hostnames", hostnames)):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where} {key}: expected a non-empty list of strings")
    max_streams = raw.get("max_streams", 256)
    if not isinstance(max_streams, int) or isinstance(max_streams, bool) or max_streams < 1:
        raise ConfigError(f"{where} max_streams: expected a positive integer, got {max_streams!r}")
    patterns = tuple(normalise(h) for h in hostnames)
    for pattern in patterns:
        if why := problem(pattern):
            raise ConfigError(f"{where} hostnames: {why}")
    return AgentSpec(name=name, secrets=tuple(read_secret(base / f, f"{where} secret_files") for f in files),
                     hostnames=patterns, max_streams=max_streams)


def _terminated(path: Path, base: Path, hostname: str, raw: Any, claimed: dict[str, str]) -> tuple[Path, Path]:
    where = f"{path}: [terminate.{hostname!r}]"
    _check_table(where, raw, TERMINATE_KEYS)
    if not covered(claimed, normalise(hostname)):
        raise ConfigError(f"{where}: no agent serves {hostname} (add it to an [agents.NAME] hostnames)")
    files = [raw.get(key) for key in ("tls_cert", "tls_key")]
    if not all(isinstance(f, str) and f for f in files):
        raise ConfigError(f"{where}: expected tls_cert and tls_key, the certificate the relay serves it with")
    return base / files[0], base / files[1]


def _check_table(where: str, raw: Any, known: set[str]) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where} {key}: unknown key (known: {', '.join(sorted(known))})")


def read_secret(path: Path, where: str) -> bytes:
    """A secret file's content without surrounding whitespace; short ones are refused."""
    try:
        secret = path.read_bytes().strip()
    except OSError as error:
        raise ConfigError(f"{where}: {path}: cannot read: {error.strerror}") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"{where}: {path}: a secret needs at least {MIN_SECRET_BYTES} characters "
                          "(e.g. `openssl rand -hex 32`)")
    return secret


def _positive(path: Path, key: str, value: float) -> float:
    if value <= 0:
        raise ConfigError(f"{path}: {key}: expected a positive number, got {value!r}")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
