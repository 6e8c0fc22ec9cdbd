"""Which hostnames the relay routes where: exact names, one-label wildcards, and what is refused."""
from __future__ import annotations

import ssl

import pytest

from services.core.errors import ConfigError
from services.tunnel.hostnames import covered, matches, problem
from services.tunnel.relay_config import load_relay_config
from tests.test_tunnel import SITE, Topology, count_lines, phone_get, run, wait_until

pytestmark = pytest.mark.timeout(120)

FAMILY = "*.family.test"


@pytest.mark.parametrize("pattern, name, expected", [
    ("*.example.org", "photos.example.org", True),
    ("*.example.org", "example.org", False),
    ("*.example.org", "a.b.example.org", False),
    ("*.example.org", ".example.org", False),
    ("*.example.org", "*.example.org", True),     # an agent may claim the wildcard it was given
    ("cloud.example.org", "cloud.example.org", True),
    ("cloud.example.org", "photos.example.org", False),
])
def test_a_wildcard_stands_for_exactly_one_label(pattern, name, expected):
    assert matches(pattern, name) is expected


@pytest.mark.parametrize("pattern, fine", [
    ("cloud.example.org", True), ("*.example.org", True), ("*.org", False), ("a.*.org", False),
    ("*example.org", False), ("**.example.org", False), ("cloud..example.org", False), ("x" * 64 + ".org", False),
])
def test_patterns_are_checked(pattern, fine):
    assert (problem(pattern) is None) is fine


def relay_toml(tmp_path, agents: str) -> str:
    (tmp_path / "a.secret").write_text("0123456789abcdef0123\n")
    (tmp_path / "relay.toml").write_text(f'tls_cert = "r.pem"\ntls_key = "r.key"\n{agents}')
    return tmp_path / "relay.toml"


def test_an_exact_name_wins_over_a_wildcard_of_another_agent(tmp_path):
    config = load_relay_config(relay_toml(tmp_path, '''
[agents.family]
secret_files = ["a.secret"]
hostnames = ["*.family.test"]
[agents.grandma]
secret_files = ["a.secret"]
hostnames = ["grandma.family.test"]
'''))
    assert config.agent_for("grandma.family.test").name == "grandma"
    assert config.agent_for("photos.family.test").name == "family"
    assert config.agent_for("family.test") is None and config.agent_for("a.b.family.test") is None
    assert covered(config.agents[0].hostnames, "photos.family.test")


def test_a_terminated_name_may_fall_under_an_agents_wildcard(tmp_path):
    config = load_relay_config(relay_toml(tmp_path, '''
[agents.family]
secret_files = ["a.secret"]
hostnames = ["*.family.test"]
[terminate."printer.family.test"]
tls_cert = "p.pem"
tls_key = "p.key"
'''))
    assert list(config.terminate) == ["printer.family.test"]


def test_a_bad_pattern_in_relay_toml_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"\[agents.home\] hostnames: '\*.test': a wildcard"):
        load_relay_config(relay_toml(tmp_path, '[agents.home]\nsecret_files = ["a.secret"]\nhostnames = ["*.test"]\n'))


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    with Topology(tmp_path_factory.mktemp("wildcard"), sites=(SITE, FAMILY)) as topology:
        yield topology


def any_name_context(topology: Topology) -> ssl.SSLContext:
    """The home's CA, without the name check: the test's site certificate names only home.test."""
    context = topology.phone_context()
    context.check_hostname = False
    return context


def test_any_one_label_under_a_wildcard_reaches_the_agent_and_nothing_else_does(topology):
    status, body = run(phone_get(topology, "/up/echo", {"X-Marker": "w"}, sni="photos.family.test",
                                 context=any_name_context(topology)))
    assert status == 200 and body.startswith(b"echo w")
    assert topology.status()["agents"]["home"]["hostnames"] == sorted([FAMILY, SITE])
    for name in ("a.b.family.test", "family.test"):
        with pytest.raises((ConnectionError, OSError, ssl.SSLError, IndexError)):
            run(phone_get(topology, "/up/echo", sni=name, context=any_name_context(topology), timeout=5))
        wait_until("one log line", lambda: count_lines(topology.relay, f"no agent serves {name!r}") == 1)
