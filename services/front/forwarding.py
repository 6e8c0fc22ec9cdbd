"""What the door tells the service behind it: who the client is, and which headers pass.

Client address: the peer of the connection, unless that peer is one of
`[front] trusted_proxies` (the tunnel agent, cloudflared). Then
X-Forwarded-For is read from the right, skipping trusted hops, and the first
untrusted address is the client; X-Forwarded-Proto and X-Forwarded-Host are
the right-most values (the ones the trusted peer set). From anyone else those
headers are lies we cannot check: they are dropped and rewritten.

What goes upstream: `X-Forwarded-For` whose first (left-most) entry is the
client address as decided here, followed by the trusted hops and the peer, so
a service behind the door trusts only its first entry and only from the door;
`X-Forwarded-Proto` and `X-Forwarded-Host` likewise. `Host` is passed as the
client sent it, so services build links with the public name.

Hop-by-hop headers (RFC 9110 §7.6.1: Connection and every header it names,
Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade, plus the
Proxy-Authorization/-Authenticate pair and Trailer of RFC 7230) describe one
connection and are never forwarded, in either direction.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from services.core.config import ConfigError

HOP_BY_HOP = frozenset(name.lower() for name in (
    "Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    "Proxy-Authorization", "Proxy-Authenticate",
))
# Request headers the door replaces or consumes itself. Expect: the door answers
# 100-continue to the client; the upstream gets the body without the handshake.
REPLACED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded",
                      "expect"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def hop_by_hop(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    """The lower-case names not to forward: the fixed list plus whatever Connection names."""
    names = set(HOP_BY_HOP)
    for value in headers.getall("Connection", ()):
        names.update(token.strip().lower() for token in value.split(",") if token.strip())
    return names


def end_to_end(headers: CIMultiDictProxy[str], also_drop: Iterable[str] = ()) -> CIMultiDict[str]:
    """A copy of `headers` without hop-by-hop ones (and without `also_drop`, lower-case names)."""
    drop = hop_by_hop(headers) | set(also_drop)
    return CIMultiDict((name, value) for name, value in headers.items() if name.lower() not in drop)


@dataclass(frozen=True)
class Client:
    """The client as the door sees it after weighing X-Forwarded-* from trusted proxies."""

    address: str                # "" if unknown (a Unix-socket peer sent nothing we trust)
    proto: str                  # "http" or "https"
    host: str                   # the Host the client asked for
    chain: tuple[str, ...]      # X-Forwarded-For to send: client first, then trusted hops and the peer


class ForwardedPolicy:
    """Decides the client address and the X-Forwarded-* headers from `[front] trusted_proxies`."""

    def __init__(self, trusted_proxies: Iterable[str]):
        self.trusted = parse_networks(trusted_proxies)

    def is_trusted(self, address: str | None) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.trusted)

    def client(self, request: web.BaseRequest) -> Client:
        peer = request.remote or ""
        host = request.headers.get("Host", "")
        # The connection's own scheme: TLS here, or (PROXY listener) TLS the relay ended.
        scheme = request.scheme
        if not self.trusted or not self.is_trusted(peer):
            return Client(address=peer, proto=scheme, host=host, chain=(peer,) if peer else ())
        hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", ())
                for hop in value.split(",") if hop.strip()]
        hops.append(peer)
        client_index = 0  # all trusted: the left-most is the best we know
        for index in range(len(hops) - 1, -1, -1):
            if not self.is_trusted(hops[index]):
                client_index = index
                break
        chain = tuple(hops[client_index:])
        proto = _last(request.headers.getall("X-Forwarded-Proto", ())).lower() or scheme
        return Client(address=chain[0], proto=proto if proto in {"http", "https"} else scheme,
                      host=_last(request.headers.getall("X-Forwarded-Host", ())) or host, chain=chain)

    def upstream_headers(self, request: web.BaseRequest, client: Client) -> CIMultiDict[str]:
        """The request headers to send upstream: end-to-end ones, plus X-Forwarded-* as decided."""
        headers = end_to_end(request.headers, REPLACED)
        if client.chain:
            headers["X-Forwarded-For"] = ", ".join(client.chain)
        headers["X-Forwarded-Proto"] = client.proto
        if client.host:
            headers["X-Forwarded-Host"] = client.host
        return headers


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"[front] trusted_proxies: {entry!r} is not an address or CIDR") from None
    return tuple(networks)


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def _last(values: Iterable[str]) -> str:
    """The right-most element of possibly comma-separated header values."""
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    return items[-1] if items else ""
