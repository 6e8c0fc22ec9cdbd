"""Running the relay: rotating an agent's secret with SIGHUP, and the relay under `hearth up`.

Rotation, as README describes it: list the new secret beside the old one,
give the agent the new one, then drop the old one and send the relay SIGHUP.
An agent still holding only the old secret is then turned away on its next
login; a relay.toml broken by a typo changes nothing on SIGHUP.
"""
from __future__ import annotations

import base64
import hashlib
import json
import signal
import socket
import textwrap
import time
import urllib.request

import pytest
import trustme

from services.tunnel.relay_status import describe_relay
from services.tunnel.relay_trust import subject_public_key_info
from tests.installation import Installation, free_port, running
from tests.test_tunnel import Topology, closed_by_peer, count_lines, phone_get, run, wait_until

pytestmark = pytest.mark.timeout(180)

NEXT_SECRET = "a-second-secret-being-rotated-in"   # Topology's home.secret.next


@pytest.fixture
def topology(tmp_path):
    with Topology(tmp_path) as topology:
        yield topology


def test_sighup_finishes_a_secret_rotation_and_a_broken_file_changes_nothing(topology):
    relay_toml = topology.public / "relay.toml"
    config = relay_toml.read_text()
    assert run(phone_get(topology, "/up/echo", {"X-Marker": "before"}))[0] == 200
    # The phone has its answer a moment before the relay has closed the stream behind it.
    wait_until("the stream closed at the relay", lambda: describe_relay(relay_toml)[0].startswith(
        "relay: agent home connected for home.test: 0 open streams"))

    # The old secret leaves the relay: the agent, still on it, must log in again and is refused.
    relay_toml.write_text(config.replace('["home.secret", "home.secret.next"]', '["home.secret.next"]'))
    topology.relay.process.send_signal(signal.SIGHUP)
    wait_until("the agent to be refused", lambda: topology.agent_state().get("state") == "reconnecting"
               and "wrong secret" in (topology.agent_state().get("last_error") or ""), process=topology.agent)
    assert count_lines(topology.relay, "SIGHUP: reloaded") == 1

    # The agent given the new secret gets in again, and so does the phone.
    (topology.home / "agent.secret").write_text(NEXT_SECRET + "\n")
    topology.agent.stop()
    topology.agent.start()
    wait_until("the agent on its new secret", lambda: topology.agent_state().get("state") == "connected",
               process=topology.agent)
    wait_until("the relay to see it", lambda: topology.status()["agents"]["home"]["idle_connections"] >= 1)
    assert run(phone_get(topology, "/up/echo", {"X-Marker": "rotated"}))[0] == 200
    assert describe_relay(relay_toml)[-1].startswith("relay: refused agent ")

    # A typo in relay.toml: SIGHUP logs it once and the relay goes on as it was.
    relay_toml.write_text(config + "\nmax_streamz = 3\n")
    topology.relay.process.send_signal(signal.SIGHUP)
    wait_until("the error line", lambda: count_lines(topology.relay, "still running on the config as it was") == 1)
    assert run(phone_get(topology, "/up/echo", {"X-Marker": "after"}))[0] == 200
    assert topology.relay.process.poll() is None
    # `hearth status` tells the truth about the file on disk.
    assert "max_streamz: unknown key" in describe_relay(relay_toml)[0]


def test_hearth_up_runs_the_relay_when_hearth_toml_names_its_config(tmp_path):
    ports = {name: free_port() for name in ("front", "public", "control", "status")}
    certificate = trustme.CA().issue_cert("relay.test")
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "relay.pem"))
    certificate.private_key_pem.write_to_path(str(tmp_path / "relay.key"))
    (tmp_path / "home.secret").write_text("0123456789abcdef-home-agent-secret\n")
    (tmp_path / "relay.toml").write_text(textwrap.dedent(f"""\
        public_listen = "127.0.0.1:{ports['public']}"
        control_listen = "127.0.0.1:{ports['control']}"
        status_listen = "127.0.0.1:{ports['status']}"
        tls_cert = "relay.pem"
        tls_key = "relay.key"
        [agents.home]
        secret_files = ["home.secret"]
        hostnames = ["cloud.example.org"]
        """))
    hearth = Installation(tmp_path, textwrap.dedent(f"""\
        data_dir = "var"
        [front]
        listen = "127.0.0.1:{ports['front']}"
        [relay]
        config = "relay.toml"
        """))

    def relay_status() -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['status']}/", timeout=2) as response:
                return json.load(response)
        except OSError:
            return None

    with running(hearth):
        assert wait_until("the relay's status page", relay_status)["agents"]["home"]["connected"] is False
        status = hearth.ok("status").stdout.splitlines()
        rows = {line.split()[0]: line.split() for line in status[1:]}
        assert rows["relay"][1] == "running"
        assert "relay: agent home not connected" in status
        assert 'hearth_relay_enable="YES"' in (hearth.var / "run" / "rc.conf").read_text()
        hearth.ok("service", "relay", "reload")
        log = hearth.var / "log" / "relay.log"
        hearth.wait_for(lambda: "SIGHUP: reloaded" in log.read_text(), what="the relay's reload line")
    assert relay_status() is None


def test_without_relay_config_hearth_up_has_no_relay(tmp_path):
    from services.core.config import load_config
    from services.rc import layout
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    config = load_config(tmp_path / "hearth.toml")
    assert "hearth_relay" not in [path.name for path in layout.script_paths(config)]
    assert "hearth_tunnel" in [path.name for path in layout.script_paths(config)]


def pin_of(certificate_der: bytes) -> str:
    return "sha256/" + base64.b64encode(hashlib.sha256(subject_public_key_info(certificate_der)).digest()).decode()


def test_an_agent_with_the_relays_key_pinned_connects_and_stays_connected_and_a_wrong_pin_is_refused(topology):
    hearth_toml = topology.home / "hearth.toml"
    with_ca = hearth_toml.read_text()
    assert 'relay_ca = "relay-ca.pem"\nrelay_name = "relay.test"\n' in with_ca

    def restart_agent(trust: str) -> None:
        topology.agent.stop()
        hearth_toml.write_text(with_ca.replace('relay_ca = "relay-ca.pem"\nrelay_name = "relay.test"\n', trust))
        topology.agent.start()

    restart_agent(f'relay_pin = "{pin_of(topology.relay_cert_der)}"\n')
    wait_until("the pinned agent", lambda: topology.agent_state().get("state") == "connected", process=topology.agent)
    # Each request takes a pool connection and the agent dials its replacement (resuming its TLS
    # session): the pin must hold on every one of them.
    for number in range(6):
        assert run(phone_get(topology, "/up/echo", {"X-Marker": f"pinned{number}"}))[0] == 200
    state = wait_until("the pool refilled by the replacements", lambda: (
        (state := topology.agent_state()).get("streams_total") == 6 and state["idle_connections"] == 4 and state))
    assert state["state"] == "connected" and state["last_error"] is None

    restart_agent(f'relay_pin = "sha256/{base64.b64encode(bytes(32)).decode()}"\n')
    wait_until("the wrong pin to be refused", lambda: "relay_pin" in (topology.agent_state().get("last_error") or ""),
               process=topology.agent)
    assert topology.agent_state()["state"] == "reconnecting"


def test_connections_that_never_say_where_they_go_are_capped_and_the_excess_turned_away_at_once(tmp_path):
    with Topology(tmp_path, max_unrouted=3) as topology:
        # The agent's logins count as unrouted too: let its whole pool (4) log in first.
        wait_until("the agent's full pool", lambda: topology.status()["agents"]["home"]["idle_connections"] == 4)
        silent = [socket.create_connection(("127.0.0.1", topology.ports["public"]), timeout=5) for _ in range(3)]
        wait_until("the relay to hold all three", lambda: topology.status()["unrouted"] == 3)
        started = time.monotonic()
        for port in ("public", "http"):
            with socket.create_connection(("127.0.0.1", topology.ports[port]), timeout=5) as extra:
                assert closed_by_peer(extra)
        assert time.monotonic() - started < 1.0   # turned away, not timed out (hello_timeout is 2 s)
        # Both of ours; on a loaded machine an agent's replacement dial may meet the cap as well.
        assert topology.status()["refused"]["busy"] >= 2
        assert count_lines(topology.relay, "already wait to say where they go (max_unrouted 3)") == 1
        # The silent ones time out after hello_timeout, and the relay has room again.
        wait_until("the silent ones to time out", lambda: topology.status()["refused"].get("slow") == 3)
        assert run(phone_get(topology, "/up/echo", {"X-Marker": "room"}))[0] == 200
        for sock in silent:
            sock.close()
