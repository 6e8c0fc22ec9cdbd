"""The tunnel in a real topology: three network namespaces on this machine, wired like the internet.

    phone 10.77.2.2 ── 10.77.2.1 public 10.77.1.1 ── 10.77.1.2 home
                                 (relay)                (front end with TLS, API, files, DAV, agent)

Nothing is routed between the two links: phone reaches only public, home only
public. home runs a firewall rule that drops every new inbound connection, so
the only way in is the connection its agent dialled out to the relay. The
phone speaks HTTPS to home.test resolved to the relay's address (curl
--resolve) and trusts only the home's own CA: TLS ends at home. The relay's
byte tap (HEARTH_RELAY_TAP) records everything it passes and must never hold
the plaintext marker the phone sent in a header and in a file's body.

In the same topology: ten slow downloads do not hold up a small request; a
wrong agent secret (from home), an unknown SNI and garbage (from the phone)
are each refused and logged once while the relay goes on serving; and a
killed relay comes back with the agent reconnecting on its own.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import trustme

from services.tunnel.agent_state import read_agent_state
from tests.daemons import PASSWORDS
from tests.installation import listening
from tests.interop.netns import Network, firewall_tool, unavailable
from tests.test_tunnel import Process, wait_until

pytestmark = pytest.mark.timeout(300)

SITE = "home.test"
SECRET = "netns-home-agent-secret-0123456789"
FRONT_PORT, PROXIED_PORT, PUBLIC_PORT, CONTROL_PORT, STATUS_PORT = 8443, 8444, 443, 7443, 7480
BIG_FILE_MB = 32  # more than every socket buffer between home and the phone can hold
SLOW_DOWNLOADS, SLOW_FILE_MB, SLOW_RATE = 10, 2, "400K"   # ten phone downloads of ~5 s each

# An agent's first words from a raw TLS client: argv is CA file, relay address, port, agent, secret.
# It prints the relay's answer and then whether the relay hung up after it.
RAW_AGENT = """
import json, socket, ssl, sys
ca, host, port, agent, secret = sys.argv[1:6]
context = ssl.create_default_context(cafile=ca)
with socket.create_connection((host, int(port)), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname="relay.test") as tls:
        tls.sendall(json.dumps({"agent": agent, "secret": secret, "hostnames": ["home.test"]}).encode() + b"\\n")
        stream = tls.makefile("rb")
        print(stream.readline().decode().strip())
        try:
            print(json.dumps({"closed": stream.read() == b""}))
        except ConnectionResetError:
            print(json.dumps({"closed": True}))
"""


def _skip_reason() -> str | None:
    reason = unavailable()
    if reason is None and firewall_tool() is None:
        reason = "neither nft nor iptables is installed (Debian package nftables; .ci/run installs it)"
    return reason


class Deployment:
    """The namespaces, the certificates and configs, and every process of both sides."""

    def __init__(self, root: Path):
        self.root = root
        self.network = Network()
        self.home_dir, self.public_dir, self.phone_dir = root / "home", root / "public", root / "phone"
        for directory in (self.home_dir, self.public_dir, self.phone_dir):
            directory.mkdir()
        self.tap = self.public_dir / "tap.bin"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        self.processes: list[Process] = []

    # -- wiring ---------------------------------------------------------------------------------

    def build(self) -> None:
        network = self.network
        self.home, self.public, self.phone = (network.host(name) for name in ("home", "public", "phone"))
        network.link(self.public, self.home)       # 10.77.1.1 public, 10.77.1.2 home
        network.link(self.public, self.phone)      # 10.77.2.1 public, 10.77.2.2 phone
        network.refuse_inbound(self.home)
        self.home_address = self.home.addresses["public"]
        self.relay_for_home = self.public.addresses["home"]
        self.relay_for_phone = self.public.addresses["phone"]
        self.phone_address = self.phone.addresses["public"]
        self.write_certificates()
        self.write_configs()

    def write_certificates(self) -> None:
        home_ca, relay_ca = trustme.CA(), trustme.CA()
        site = home_ca.issue_cert(SITE)
        site.private_key_and_cert_chain_pem.write_to_path(str(self.home_dir / "site.pem"))
        site.private_key_pem.write_to_path(str(self.home_dir / "site.key"))
        home_ca.cert_pem.write_to_path(str(self.phone_dir / "home-ca.pem"))  # all the phone trusts
        relay = relay_ca.issue_cert("relay.test")
        relay.cert_chain_pems[0].write_to_path(str(self.public_dir / "relay.pem"))
        relay.private_key_pem.write_to_path(str(self.public_dir / "relay.key"))
        relay_ca.cert_pem.write_to_path(str(self.home_dir / "relay-ca.pem"))
        (self.home_dir / "agent.secret").write_text(SECRET + "\n")
        (self.public_dir / "home.secret").write_text(SECRET + "\n")

    def write_configs(self) -> None:
        self.config = self.home_dir / "hearth.toml"
        # The front end listens on home's own address, not only loopback: it is the firewall that
        # must keep the public out, and the test proves it does.
        self.config.write_text(f'''data_dir = "var"
[front]
listen = "{self.home_address}:{FRONT_PORT}"
tls_cert = "site.pem"
tls_key = "site.key"
proxy_protocol_listen = "127.0.0.1:{PROXIED_PORT}"
[tunnel]
relay = "{self.relay_for_home}:{CONTROL_PORT}"
name = "home"
secret_file = "agent.secret"
relay_ca = "relay-ca.pem"
relay_name = "relay.test"
hostnames = ["{SITE}"]
pool_size = 4
backoff_max = 2.0
''')
        (self.public_dir / "relay.toml").write_text(f'''public_listen = "{self.relay_for_phone}:{PUBLIC_PORT}"
http_listen = ""
control_listen = "{self.relay_for_home}:{CONTROL_PORT}"
status_listen = "127.0.0.1:{STATUS_PORT}"
tls_cert = "relay.pem"
tls_key = "relay.key"
hello_timeout = 5.0
idle_timeout = 60.0

[agents.home]
secret_files = ["home.secret"]
hostnames = ["{SITE}"]
max_streams = 64
''')

    # -- processes ------------------------------------------------------------------------------

    def in_home(self, name: str, module: str) -> Process:
        process = Process(name, self.home.argv(sys.executable, "-m", module, "--config", str(self.config)),
                          self.home_dir, self.env)
        self.processes.append(process)
        return process

    def start(self) -> None:
        self.build()
        for user in ("alice",):
            added = self.home.run(sys.executable, "-m", "services.cli", "--config", str(self.config), "user", "add",
                                  user, "--password-stdin", input=PASSWORDS[user] + "\n")
            assert added.returncode == 0, added.stderr
        daemons = [self.in_home(name, f"services.{name}").start() for name in ("api", "files", "dav")]
        self.front = self.in_home("front", "services.front").start()
        for daemon, probe in zip(daemons, ("/api/openapi.json", "/files/", "/dav/")):
            wait_until(f"{daemon.name} behind the front end", lambda: self.home_probe(probe) not in ("000", "502", "503"),
                       timeout=30, process=daemon)
        wait_until("the front's PROXY-protocol port", lambda: listening(PROXIED_PORT, self.front.process.pid),
                   process=self.front)
        self.relay = Process("relay", self.public.argv(sys.executable, "-m", "services.cli", "relay", "--config",
                                                       str(self.public_dir / "relay.toml")),
                             self.public_dir, {**self.env, "HEARTH_RELAY_TAP": str(self.tap)})
        self.processes.append(self.relay)
        self.start_relay()
        self.agent = self.in_home("agent", "services.tunnel").start()
        wait_until("the agent to connect", lambda: self.agent_state().get("state") == "connected",
                   timeout=30, process=self.agent)
        wait_until("the relay to see the agent", lambda: self.relay_agent().get("idle_connections", 0) >= 1)

    def start_relay(self) -> None:
        self.relay.start()
        wait_until("the relay", lambda: self.relay_status() is not None, process=self.relay)

    def stop(self) -> None:
        try:
            for process in reversed(self.processes):
                if process.process is not None and process.process.poll() is None:
                    process.stop()
        finally:
            self.network.close()

    # -- looking at it --------------------------------------------------------------------------

    def home_probe(self, path: str) -> str:
        """The HTTP status of GET path at the front end, asked from inside home (where it may be asked)."""
        return self.home.run("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                             f"https://{self.home_address}:{FRONT_PORT}{path}").stdout

    def relay_status(self) -> dict | None:
        result = self.public.run("curl", "-sf", "--max-time", "2", f"http://127.0.0.1:{STATUS_PORT}/")
        return json.loads(result.stdout) if result.returncode == 0 else None

    def relay_agent(self) -> dict:
        return ((self.relay_status() or {}).get("agents") or {}).get("home") or {}

    def agent_state(self) -> dict:
        return read_agent_state(self.home_dir / "var") or {}

    def tapped(self) -> bytes:
        return self.tap.read_bytes() if self.tap.exists() else b""

    def phone_curl(self, method: str, path: str, *args: str, body: bytes | None = None,
                   timeout: float = 30) -> tuple[int, str, bytes]:
        """curl on the phone, HTTPS to home.test at the relay's address, trusting the home's CA only:
        (curl's exit code, HTTP status, body)."""
        out = self.phone_dir / "response.bin"
        out.unlink(missing_ok=True)
        argv = ["curl", "-sS", "-X", method, "--resolve", f"{SITE}:{PUBLIC_PORT}:{self.relay_for_phone}",
                "--cacert", str(self.phone_dir / "home-ca.pem"), "-u", f"alice:{PASSWORDS['alice']}",
                "-o", str(out), "-w", "%{http_code}", "--max-time", str(timeout), *args]
        if body is not None:
            (self.phone_dir / "request.bin").write_bytes(body)
            argv += ["--data-binary", f"@{self.phone_dir / 'request.bin'}"]
        result = self.phone.run(*argv, f"https://{SITE}{path}", timeout=timeout + 10)
        return result.returncode, result.stdout, out.read_bytes() if out.exists() else result.stderr.encode()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    deployment = Deployment(tmp_path_factory.mktemp("tunnel-netns"))
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


def new_marker() -> str:
    return "plaintext-marker-" + base64.b32encode(os.urandom(10)).decode()


# -- the tests -------------------------------------------------------------------------------

def test_home_accepts_no_inbound_connection(deployment):
    d = deployment
    # The front end is listening on home's address: from inside home it answers…
    assert d.home_probe("/healthz") == "200"
    dropped = d.network.dropped_inbound(d.home)
    # …but a connection from the relay's machine is dropped by home's firewall (a timeout, not a refusal:
    # the SYN arrived and was thrown away)…
    direct = d.public.run("curl", "-sk", "--connect-timeout", "3", "-o", "/dev/null",
                          f"https://{d.home_address}:{FRONT_PORT}/healthz")
    assert direct.returncode == 28, (direct.returncode, direct.stderr)
    assert d.network.dropped_inbound(d.home) > dropped
    # …and the phone has no way to home at all.
    direct = d.phone.run("curl", "-sk", "--connect-timeout", "3", "-o", "/dev/null",
                         f"https://{d.home_address}:{FRONT_PORT}/healthz")
    assert direct.returncode != 0, direct.stderr
    # The agent's own connection out is what carries the tunnel.
    assert d.agent_state()["state"] == "connected"


def test_api_webdav_and_caldav_from_the_phone_through_the_relay_and_never_in_the_clear(deployment):
    d = deployment
    marker = new_marker()
    tapped_before = len(d.tapped())

    code, status, body = d.phone_curl("GET", "/api/v1/me", "-H", f"X-Marker: {marker}")
    assert (code, status) == (0, "200"), body
    me = json.loads(body)
    assert me["name"] == "alice" and me["auth"] == "password", me

    code, status, body = d.phone_curl("MKCOL", "/files/alice/Phone/")
    assert (code, status) == (0, "201"), (status, body)
    content = f"a file from the phone\n{marker}\n".encode()
    code, status, body = d.phone_curl("PUT", f"/files/alice/Phone/{marker[:24]}.txt", "-H", f"X-Marker: {marker}",
                                      body=content)
    assert (code, status) == (0, "201"), (status, body)
    code, status, body = d.phone_curl("GET", f"/files/alice/Phone/{marker[:24]}.txt")
    assert (code, status, body) == (0, "200", content)

    propfind = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/>'
                b'<D:displayname/></D:prop></D:propfind>')
    code, status, body = d.phone_curl("PROPFIND", "/dav/calendars/alice/", "-H", "Depth: 1",
                                      "-H", "Content-Type: application/xml", "-H", f"X-Marker: {marker}",
                                      body=propfind)
    assert (code, status) == (0, "207"), (status, body)
    assert b"multistatus" in body and b"/dav/calendars/alice/" in body

    tapped = d.tapped()[tapped_before:]
    assert len(tapped) > 4000, len(tapped)                  # five TLS connections went through the relay…
    assert marker.encode() not in tapped                    # …and not one byte of them in the clear
    for plaintext in (b"PUT /files", b"PROPFIND", b"Authorization", PASSWORDS["alice"].encode(),
                      base64.b64encode(f"alice:{PASSWORDS['alice']}".encode())):
        assert plaintext not in tapped, plaintext
    # The front end knows the phone's address: the agent's PROXY header carried it across.
    access = [line for line in d.front.log().splitlines() if "/api/v1/me" in line]
    assert access and access[-1].startswith(f"{d.phone_address} - "), access


def timed_phone_get(d: Deployment, path: str) -> float:
    """Seconds the phone takes for one small GET through the relay (curl's start-up included)."""
    started = time.monotonic()
    code, status, body = d.phone_curl("GET", path, timeout=20)
    assert (code, status) == (0, "200"), (code, status, body[:200])
    return time.monotonic() - started


def test_a_small_request_is_not_held_up_by_ten_slow_downloads(deployment):
    d = deployment
    size = SLOW_FILE_MB * 1024 * 1024
    assert d.phone_curl("MKCOL", "/files/alice/Slow/")[:2] == (0, "201")
    code, status, body = d.phone_curl("PUT", "/files/alice/Slow/slow.bin", body=os.urandom(size), timeout=60)
    assert (code, status) == (0, "201"), (status, body)
    alone = sorted(timed_phone_get(d, "/api/v1/me") for _ in range(3))

    # Ten downloads the phone reads slowly: home can send faster than that, so each fills its own
    # buffers along the way, which is what would hold up a stream sharing a connection with them.
    downloads = [Process(f"slow{n}", d.phone.argv(
        "curl", "-sS", "--fail", "--resolve", f"{SITE}:{PUBLIC_PORT}:{d.relay_for_phone}",
        "--cacert", str(d.phone_dir / "home-ca.pem"), "-u", f"alice:{PASSWORDS['alice']}",
        "--limit-rate", SLOW_RATE, "-o", str(d.phone_dir / f"slow{n}.bin"),
        f"https://{SITE}/files/alice/Slow/slow.bin"), d.phone_dir, d.env) for n in range(SLOW_DOWNLOADS)]
    d.processes.extend(downloads)
    started = time.monotonic()
    for download in downloads:
        download.start()
    wait_until("every download to be under way", lambda: all(
        (d.phone_dir / f"slow{n}.bin").exists() and (d.phone_dir / f"slow{n}.bin").stat().st_size > 0
        for n in range(SLOW_DOWNLOADS)), timeout=20)
    assert d.relay_agent()["open_streams"] >= SLOW_DOWNLOADS
    loaded = sorted(timed_phone_get(d, "/api/v1/me") for _ in range(3))
    still_running = sum(1 for download in downloads if download.process.poll() is None)

    for download in downloads:
        assert download.process.wait(timeout=60) == 0, download.log()
    took = time.monotonic() - started
    print(f"small request alone {alone[1] * 1000:.0f} ms, behind {SLOW_DOWNLOADS} slow downloads "
          f"{loaded[1] * 1000:.0f} ms (worst {loaded[-1] * 1000:.0f} ms); the downloads took {took:.1f} s")
    assert still_running == SLOW_DOWNLOADS, "a download ended before the small requests were done"
    for n in range(SLOW_DOWNLOADS):
        assert (d.phone_dir / f"slow{n}.bin").stat().st_size == size
    assert took > 3                                     # the slow ones really were slow…
    # …and the small one did not wait behind them: generous bounds, a queue would cost seconds.
    assert loaded[1] < 3 * alone[1] + 0.5, (alone, loaded)
    assert loaded[-1] < 2.0, (alone, loaded)


def relay_lines(d: Deployment, since: int, text: str) -> int:
    """How many relay log lines written after offset `since` contain `text`."""
    return sum(1 for line in d.relay.log()[since:].splitlines() if text in line)


def test_bad_secret_unknown_sni_and_garbage_are_each_refused_and_logged_once(deployment):
    d = deployment
    log_from = len(d.relay.log())
    refused_before = d.relay_status()["refused"]

    # A bad agent secret, from home (its only way to the relay is out, like the real agent's).
    answer = d.home.run(sys.executable, "-c", RAW_AGENT, str(d.home_dir / "relay-ca.pem"), d.relay_for_home,
                        str(CONTROL_PORT), "home", "not-the-secret-but-long-enough")
    assert answer.returncode == 0, answer.stderr
    reply, hung_up = (json.loads(line) for line in answer.stdout.splitlines())
    assert reply["ok"] is False and "wrong secret" in reply["error"], reply
    assert hung_up == {"closed": True}
    # An unknown SNI, from the phone: the relay cuts the handshake (curl: SSL connect error).
    unknown = d.phone.run("curl", "-sS", "-o", "/dev/null", "--max-time", "10", "--resolve",
                          f"unknown.test:{PUBLIC_PORT}:{d.relay_for_phone}", "--cacert",
                          str(d.phone_dir / "home-ca.pem"), "https://unknown.test/")
    assert unknown.returncode in (35, 56), (unknown.returncode, unknown.stderr)   # cut, not timed out
    # Garbage instead of a ClientHello: plain HTTP to the TLS port (curl: empty reply).
    garbage = d.phone.run("curl", "-sS", "-o", "/dev/null", "--max-time", "10", "-H", f"Host: {SITE}",
                          f"http://{d.relay_for_phone}:{PUBLIC_PORT}/")
    assert garbage.returncode in (52, 56), (garbage.returncode, garbage.stderr)

    # The relay keeps serving the phone…
    code, status, body = d.phone_curl("GET", "/api/v1/me")
    assert (code, status) == (0, "200"), body
    assert d.relay.process.poll() is None
    # …and said each no once, in one line each (the log is written as it goes: wait for the last one).
    wait_until("the relay's log lines", lambda: relay_lines(d, log_from, "not a TLS handshake record") >= 1,
               timeout=5)
    log = d.relay.log()[log_from:]
    lines = {text: [line for line in log.splitlines() if text in line]
             for text in ("unknown agent or wrong secret", "no agent serves 'unknown.test'",
                          "not a TLS handshake record")}
    for text, found in lines.items():
        assert len(found) == 1, (text, log)
    # Each line names who was refused: home's address for the agent, the phone's for the others.
    assert f"{d.home_address}:" in lines["unknown agent or wrong secret"][0], log
    assert f"{d.phone_address}:" in lines["no agent serves 'unknown.test'"][0], log
    assert f"{d.phone_address}:" in lines["not a TLS handshake record"][0], log
    assert relay_lines(d, log_from, "refused") == 3, log            # and nothing else was refused
    refused = d.relay_status()["refused"]
    for kind in ("agent", "sni", "garbage"):
        assert refused.get(kind, 0) == refused_before.get(kind, 0) + 1, (kind, refused_before, refused)


def test_killed_relay_comes_back_and_the_agent_reconnects(deployment):
    d = deployment
    size = BIG_FILE_MB * 1024 * 1024
    assert d.phone_curl("MKCOL", "/files/alice/Downloads/")[:2] == (0, "201")
    code, status, body = d.phone_curl("PUT", "/files/alice/Downloads/big.bin", body=os.urandom(size), timeout=120)
    assert (code, status) in ((0, "201"), (0, "204")), (status, body)

    # A download the phone itself reads slowly; the relay dies a second in, while most of it is still at home.
    download = Process("download", d.phone.argv(
        "curl", "-sS", "--resolve", f"{SITE}:{PUBLIC_PORT}:{d.relay_for_phone}",
        "--cacert", str(d.phone_dir / "home-ca.pem"), "-u", f"alice:{PASSWORDS['alice']}",
        "--limit-rate", "2M", "-o", str(d.phone_dir / "big.part"), f"https://{SITE}/files/alice/Downloads/big.bin"),
        d.phone_dir, d.env).start()
    d.processes.append(download)
    wait_until("the download to be under way",
               lambda: (d.phone_dir / "big.part").exists() and (d.phone_dir / "big.part").stat().st_size > 0,
               timeout=20)
    time.sleep(1.0)
    d.relay.process.send_signal(signal.SIGKILL)
    d.relay.stop()
    # The kernel still delivers what the dead relay had queued, then closes: the phone must see a cut
    # transfer, never a short one taken for whole.
    assert download.process.wait(timeout=60) != 0, download.log()
    received = (d.phone_dir / "big.part").stat().st_size
    print(f"the phone had {received / 2**20:.1f} of {BIG_FILE_MB} MiB when the relay died")
    assert received < size

    outage = wait_until("the agent to notice", lambda: d.agent_state().get("state") == "reconnecting"
                        and d.agent_state(), timeout=15, process=d.agent)
    assert outage["last_error"]
    shown = d.home.run(sys.executable, "-m", "services.cli", "--config", str(d.config), "status")
    assert f"tunnel: reconnecting to {d.relay_for_home}:{CONTROL_PORT}" in shown.stdout, shown.stdout + shown.stderr
    code, status, _ = d.phone_curl("GET", "/api/v1/me", timeout=5)
    assert code != 0                                    # nobody at the relay's address meanwhile

    time.sleep(2.0)  # the relay stays away a while: the agent keeps trying, with backoff
    d.start_relay()
    back = time.monotonic()
    wait_until("the agent to reconnect", lambda: d.agent_state().get("state") == "connected",
               timeout=15, process=d.agent)
    reconnected = time.monotonic() - back
    print(f"agent reconnected {reconnected:.2f} s after the relay came back")
    assert reconnected < 5
    wait_until("the relay to see the agent", lambda: d.relay_agent().get("idle_connections", 0) >= 1, timeout=10)

    code, status, body = d.phone_curl("GET", "/api/v1/me")
    assert (code, status) == (0, "200"), body
    code, status, body = d.phone_curl("GET", "/files/alice/Downloads/big.bin", "-r", "0-1023")
    assert (code, status) == (0, "206") and len(body) == 1024, (status, body[:200])
