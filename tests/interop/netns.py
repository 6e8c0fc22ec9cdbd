"""Network namespaces for tests: a few named hosts joined by veth links, created per run and always removed.

`Network(tag)` names every namespace `hearth-TAG-NAME`, so two runs (or a
crashed earlier one) never collide. `link()` joins two hosts with a veth pair
on a /30; nothing is routed between links, so a host reaches only the hosts
it is wired to. `close()` ends what is still running in each namespace (the
processes this test started there, by pid) and deletes the namespaces; the
veth pairs go with them.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

NFT_TABLE = "hearth_no_inbound"


def unavailable() -> str | None:
    """Why namespaces cannot be used here (None: they can), found by trying one."""
    if os.geteuid() != 0:
        return "network namespaces need root (make interop runs as root in .ci/run)"
    if shutil.which("ip") is None:
        return "ip(8) is not installed (Debian package iproute2; .ci/run installs it)"
    probe = f"hearth-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"this environment does not permit `ip netns add`: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def firewall_tool() -> str | None:
    return "nft" if shutil.which("nft") else "iptables" if shutil.which("iptables") else None


def ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Host:
    """One namespace; `addresses[peer]` is this host's address on the link to `peer`."""

    name: str
    namespace: str
    addresses: dict[str, str] = field(default_factory=dict)

    def argv(self, *command: str) -> list[str]:
        """`command` as run inside this namespace (ip netns exec replaces itself with it: same pid)."""
        return ["ip", "netns", "exec", self.namespace, *command]

    def run(self, *command: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*command), capture_output=True, text=True, timeout=timeout, input=input)

    def pids(self) -> list[int]:
        return [int(pid) for pid in ip("netns", "pids", self.namespace).split()]


class Network:
    def __init__(self, tag: str | None = None):
        self.tag = tag or secrets.token_hex(3)
        self.hosts: dict[str, Host] = {}
        self.links = 0

    def host(self, name: str) -> Host:
        host = Host(name, f"hearth-{self.tag}-{name}")
        ip("netns", "add", host.namespace)
        self.hosts[name] = host
        ip("-n", host.namespace, "link", "set", "lo", "up")
        return host

    def link(self, a: Host, b: Host) -> None:
        """A veth pair between a and b on 10.77.N.0/30: a is .1, b is .2."""
        self.links += 1
        n = self.links
        # Interface names are at most 15 bytes; created straight inside the namespaces, so the
        # host's own namespace never holds them, even briefly.
        end_a, end_b = f"v{self.tag}{n}a", f"v{self.tag}{n}b"
        ip("link", "add", end_a, "netns", a.namespace, "type", "veth", "peer", "name", end_b, "netns", b.namespace)
        for host, end, address in ((a, end_a, f"10.77.{n}.1"), (b, end_b, f"10.77.{n}.2")):
            ip("-n", host.namespace, "addr", "add", f"{address}/30", "dev", end)
            ip("-n", host.namespace, "link", "set", end, "up")
            host.addresses[(b if host is a else a).name] = address

    def refuse_inbound(self, host: Host) -> None:
        """Drop every new connection into `host` that does not come from itself; replies to its own
        outgoing connections still pass (conntrack's established state)."""
        tool = firewall_tool()
        if tool == "nft":
            rules = (f"table inet {NFT_TABLE} {{\n"
                     "  chain input {\n"
                     "    type filter hook input priority 0; policy accept;\n"
                     "    ct state established,related accept\n"
                     '    iif "lo" accept\n'
                     "    ct state new counter drop\n"
                     "  }\n"
                     "}\n")
            result = host.run("nft", "-f", "-", input=rules)
            assert result.returncode == 0, result.stderr
        elif tool == "iptables":
            for rule in (["-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
                         ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
                         ["-A", "INPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]):
                result = host.run("iptables", *rule)
                assert result.returncode == 0, result.stderr
        else:
            raise RuntimeError("neither nft nor iptables is installed (Debian package nftables; .ci/run installs it)")

    def dropped_inbound(self, host: Host) -> int:
        """Packets the refuse_inbound rule has dropped so far."""
        if firewall_tool() == "nft":
            listing = host.run("nft", "list", "chain", "inet", NFT_TABLE, "input").stdout
            words = next(line for line in listing.splitlines() if "drop" in line).split()
            return int(words[words.index("packets") + 1])       # "... counter packets N bytes M drop"
        listing = host.run("iptables", "-L", "INPUT", "-v", "-x", "-n").stdout
        return int(next(line for line in listing.splitlines() if "DROP" in line).split()[0])

    def close(self) -> None:
        """Stop what still runs in each namespace (TERM, then KILL), then delete the namespaces."""
        for host in self.hosts.values():
            _end(host)
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
        self.hosts.clear()


def _end(host: Host) -> None:
    try:
        pids = host.pids()
    except RuntimeError:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pids = host.pids()
            if not pids:
                return
            time.sleep(0.1)
