"""The three ways the tunnel benchmark reaches one home front end, all on loopback.

* direct: the client speaks TLS to the front end's own listener.
* hearth: client → the relay's public port (SNI passthrough) → the agent's pool
  connection → the front end's PROXY-protocol listener, TLS ending at the front.
* ssh -R: client → a port sshd forwards over an SSH session → `ssh` at home →
  the front end's TLS listener. sshd is started here with a throwaway host key,
  one authorized key and a config of its own, so nothing of the machine's SSH
  setup is read or changed.

Every path ends at the same front end, which serves /healthz itself and routes
/up/ to ORIGIN, a small aiohttp process that streams N bytes and counts uploads.
Each process writes its output to a file in the work directory; `stop()` ends
the ones started here, by pid.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.bench.conftest import Tool
from tests.bench.test_front_throughput import Daemon, free_port

SITE = "home.test"
SECRET = "tunnel-benchmark-agent-secret-0123456789"
POOL_SIZE = 8
START_TIMEOUT = 20.0

ORIGIN = Path(__file__).with_name("origin.py")   # GET /download?n=N, POST /upload


@dataclass(frozen=True)
class Entrance:
    """One way in: the local port a client connects to (always with SNI home.test), or why there is none."""

    name: str
    port: int | None
    reason: str = ""


def connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(what: str, check, daemon: Daemon | None = None, timeout: float = START_TIMEOUT) -> str:
    """'' once check() is true, or why it never was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon is not None and daemon.process.poll() is not None:
            return f"{daemon.name} exited with {daemon.process.returncode}: {daemon.tail(5)}"
        if check():
            return ""
        time.sleep(0.05)
    return f"timed out after {timeout:g} s waiting for {what}" + (f": {daemon.tail(5)}" if daemon else "")


class Home:
    """The front end (TLS, PROXY listener, a route to ORIGIN), the agent and the relay, and optionally sshd + ssh."""

    def __init__(self, root: Path):
        self.root = root
        self.daemons: list[Daemon] = []
        self.ports = {name: free_port() for name in ("origin", "front", "proxied", "control", "public", "status")}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        ca, relay_ca = trustme.CA(), trustme.CA()
        self.ca_file = root / "home-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        site = ca.issue_cert(SITE)
        site.private_key_and_cert_chain_pem.write_to_path(str(root / "site.pem"))
        relay_cert = relay_ca.issue_cert("relay.test")
        relay_cert.private_key_and_cert_chain_pem.write_to_path(str(root / "relay.pem"))
        relay_ca.cert_pem.write_to_path(str(root / "relay-ca.pem"))
        (root / "agent.secret").write_text(SECRET + "\n")
        p = self.ports
        # rate_limit 0 and no connection cap: 200 back-to-back requests from one address are the load here.
        (root / "hearth.toml").write_text(f'''data_dir = "var"
[front]
listen = "127.0.0.1:{p['front']}"
tls_cert = "site.pem"
tls_key = "site.pem"
proxy_protocol_listen = "127.0.0.1:{p['proxied']}"
rate_limit = 0
max_connections = 0

[tunnel]
relay = "127.0.0.1:{p['control']}"
name = "home"
secret_file = "agent.secret"
relay_ca = "relay-ca.pem"
relay_name = "relay.test"
hostnames = ["{SITE}"]
pool_size = {POOL_SIZE}

[[route]]
path = "/up/"
upstream = "127.0.0.1:{p['origin']}"
strip_prefix = true
''')
        (root / "relay.toml").write_text(f'''public_listen = "127.0.0.1:{p['public']}"
http_listen = ""
control_listen = "127.0.0.1:{p['control']}"
status_listen = "127.0.0.1:{p['status']}"
tls_cert = "relay.pem"
tls_key = "relay.pem"

[agents.home]
secret_files = ["agent.secret"]
hostnames = ["{SITE}"]
''')

    def _start(self, name: str, argv: list[str]) -> Daemon:
        daemon = Daemon(name, argv, self.root, self.env)
        self.daemons.append(daemon)
        return daemon

    def start(self) -> list[Entrance]:
        """Origin, front, relay and agent; fails (AssertionError) if any of them does not come up."""
        p, config = self.ports, ["--config", str(self.root / "hearth.toml")]
        origin = self._start("origin", [sys.executable, str(ORIGIN), str(p["origin"])])
        assert not (why := wait_for("the origin", lambda: connects(p["origin"]), origin)), why
        front = self._start("front", [sys.executable, "-m", "services.front", *config])
        assert not (why := wait_for("the front end", lambda: connects(p["front"]), front)), why
        relay = self._start("relay", [sys.executable, "-m", "services.cli", "relay", "--config",
                                      str(self.root / "relay.toml")])
        assert not (why := wait_for("the relay", lambda: connects(p["status"]), relay)), why
        agent = self._start("agent", [sys.executable, "-m", "services.tunnel", *config])
        assert not (why := wait_for("a full agent pool", lambda: self.idle_pool() >= POOL_SIZE, agent)), why
        return [Entrance("direct", p["front"]), Entrance("hearth", p["public"])]

    def idle_pool(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['status']}/", timeout=2) as response:
                return json.load(response)["agents"]["home"]["idle_connections"]
        except (OSError, ValueError, KeyError):
            return 0

    def start_ssh_tunnel(self, sshd: Tool) -> Entrance:
        """sshd on a free loopback port, then `ssh -N -R` to it; the path, or one saying why it is missing."""
        ssh, keygen = shutil.which("ssh"), shutil.which("ssh-keygen")
        if sshd.path is None:
            return Entrance("ssh -R", None, reason=sshd.reason)
        if ssh is None or keygen is None:
            return Entrance("ssh -R", None, reason="ssh or ssh-keygen is not installed (apt-get install "
                                                "openssh-client)")
        if os.geteuid() == 0:
            # sshd running as root needs its privilege-separation directory (Debian's package makes it at boot).
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        keys = self.root / "ssh"
        keys.mkdir(mode=0o700)
        for name in ("host_key", "client_key"):
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True,
                           stdin=subprocess.DEVNULL)
        (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())
        sshd_port, forwarded = free_port(), free_port()
        (keys / "known_hosts").write_text(f"[127.0.0.1]:{sshd_port} " + (keys / "host_key.pub").read_text())
        user = pwd.getpwuid(os.getuid()).pw_name
        (keys / "sshd_config").write_text(f"""ListenAddress 127.0.0.1:{sshd_port}
HostKey {keys / 'host_key'}
PidFile {keys / 'sshd.pid'}
AuthorizedKeysFile {keys / 'authorized_keys'}
AllowUsers {user}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding remote
GatewayPorts no
X11Forwarding no
PrintMotd no
LogLevel ERROR
""")
        # An absolute path: sshd re-executes itself and refuses to run otherwise.
        server = self._start("sshd", [os.path.abspath(sshd.path), "-D", "-e", "-f", str(keys / "sshd_config")])
        if why := wait_for("sshd", lambda: connects(sshd_port), server):
            return Entrance("ssh -R", None, reason=why)
        client = self._start("ssh", [
            ssh, "-N", "-F", "/dev/null", "-i", str(keys / "client_key"), "-p", str(sshd_port),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={keys / 'known_hosts'}", "-o", "ExitOnForwardFailure=yes",
            "-R", f"127.0.0.1:{forwarded}:127.0.0.1:{self.ports['front']}", f"{user}@127.0.0.1"])
        if why := wait_for("the ssh -R forward", lambda: connects(forwarded), client):
            return Entrance("ssh -R", None, reason=why)
        return Entrance("ssh -R", forwarded)

    def ssh_cipher(self) -> str:
        """The cipher ssh and sshd agree on by default (what a user of plain `ssh -R` gets)."""
        ssh = shutil.which("ssh")
        result = subprocess.run([ssh, "-F", "/dev/null", "-G", "127.0.0.1"], capture_output=True, text=True)
        ciphers = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("ciphers ")]
        return ciphers[0].split(",")[0] if ciphers else "unknown"

    def stop(self) -> None:
        for daemon in reversed(self.daemons):
            daemon.stop()
