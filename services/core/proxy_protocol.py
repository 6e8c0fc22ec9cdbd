"""PROXY protocol v2 (haproxy's proxy-protocol.txt §2.2): how the tunnel agent tells the front end the client's address.

The agent writes the header (proxy_v2_header); the front end's PROXY listener
(services/front/proxy_listener.py) reads it with these same constants.
"""
from __future__ import annotations

import ipaddress
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
VERSION_2_LOCAL, VERSION_2_PROXY = 0x20, 0x21   # version 2 with the LOCAL or PROXY command
TCP_OVER_IPV4 = 0x11
TCP_OVER_IPV6 = 0x21
ADDRESS_BYTES = {TCP_OVER_IPV4: 12, TCP_OVER_IPV6: 36}   # both addresses and both ports
# The SSL TLV (§2.2.5): present when the sender itself ended the client's TLS (or there was none),
# so what follows the header is plain; its PP2_CLIENT_SSL bit says whether the client used TLS.
PP2_TYPE_SSL = 0x20
PP2_CLIENT_SSL = 0x01
NOT_VERIFIED = 1   # `verify`: non-zero, as no client certificate was checked


def proxy_v2_header(client: tuple[str, int], server: tuple[str, int], *, plain_after: str | None = None) -> bytes:
    """The header for a TCP connection from `client` to `server` (both the same IP family, or mapped).

    `plain_after` ("http" or "https", what the client spoke to the relay) adds the SSL TLV: the
    bytes after the header are plain HTTP, not the client's own TLS.
    """
    source = ipaddress.ip_address(client[0])
    destination = ipaddress.ip_address(server[0])
    if source.version != destination.version:  # the relay may listen on v6 for a v4 client or back
        source, destination = _as_v6(source), _as_v6(destination)
    family = TCP_OVER_IPV4 if source.version == 4 else TCP_OVER_IPV6
    body = source.packed + destination.packed + struct.pack("!HH", client[1], server[1])
    if plain_after is not None:
        value = struct.pack("!BI", PP2_CLIENT_SSL if plain_after == "https" else 0, NOT_VERIFIED)
        body += struct.pack("!BH", PP2_TYPE_SSL, len(value)) + value
    return SIGNATURE + struct.pack("!BBH", VERSION_2_PROXY, family, len(body)) + body


def _as_v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    if address.version == 6:
        return address
    return ipaddress.IPv6Address("::ffff:" + str(address))
