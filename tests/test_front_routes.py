"""The front end's route table: order, hosts, prefixes, built-ins, config errors (in-process, no sockets)."""
from __future__ import annotations

import textwrap

import pytest

from services.core.config import ConfigError, load_config
from services.front.routes import RouteTable, normalise_host


def table(tmp_path, text: str = "") -> RouteTable:
    path = tmp_path / "hearth.toml"
    path.write_text('data_dir = "var"\n' + textwrap.dedent(text))
    return RouteTable.from_config(load_config(path, environ={}))


def target(route) -> str:
    if route is None:
        return "none"
    if route.kind == "redirect":
        return f"redirect {route.redirect}"
    if route.kind == "health":
        return "health"
    return route.upstream.label


ROUTES = """
    [[route]]
    host = "hooks.example.org"
    path = "/"
    upstream = "127.0.0.1:9100"

    [[route]]
    host = "*.example.org"
    path = "/app/"
    upstream = "127.0.0.1:9200"

    [[route]]
    path = "/app/"
    upstream = "127.0.0.1:9300"

    [[route]]
    path = "/app/admin/"
    upstream = "127.0.0.1:9400"

    [[route]]
    path = "/old"
    redirect = "https://new.example.org/"

    [[service]]
    name = "hello"
    command = "true"
    listen = "0.0.0.0:9001"
    route = "/hello/"
    strip_prefix = true
"""


@pytest.mark.parametrize("host, path, expected", [
    ("hooks.example.org", "/api/v1/me", "127.0.0.1:9100"),     # the user's host route comes before /api/
    ("HOOKS.Example.ORG:8443", "/x", "127.0.0.1:9100"),        # case and port ignored
    ("hooks.example.org.", "/x", "127.0.0.1:9100"),            # trailing dot of an FQDN
    ("a.example.org", "/app/x", "127.0.0.1:9200"),             # wildcard, one label
    ("a.b.example.org", "/app/x", "127.0.0.1:9200"),           # wildcard, two labels
    ("example.org", "/app/x", "127.0.0.1:9300"),               # the wildcard does not match the apex
    ("other.org", "/app/admin/x", "127.0.0.1:9300"),           # first match wins, not the longest
    (None, "/app/x", "127.0.0.1:9300"),                        # no Host: only host-less routes
    ("h", "/appendix", "api"),                                 # prefixes end at a segment boundary: not /app/
    ("h", "/old", "redirect https://new.example.org/"),
    ("h", "/old/page", "redirect https://new.example.org/"),
    ("h", "/oldest", "api"),
    ("h", "/hello/x", "hello"),                                # service route, named after the service
    ("h", "/api/v1/me", "api"),                                # built-ins after the user's routes
    ("h", "/sync/v1/changes", "sync"),
    ("h", "/dav/ann/", "dav"),
    ("h", "/files/ann/x", "files"),
    ("h", "/.well-known/caldav", "redirect /dav/"),
    ("h", "/.well-known/carddav", "redirect /dav/"),
    ("h", "/healthz", "health"),
    ("hooks.example.org", "/healthz", "health"),               # the door's own, even under a catch-all
    ("h", "/", "api"),                                         # the web UI takes what nothing else does
    ("h", "/s/token", "files"),                                # share links
    ("h", "/status.php", "api"),                               # the Nextcloud apps' discovery and login
    ("h", "/index.php/login/v2/poll", "api"),
    ("h", "/ocs/v2.php/cloud/capabilities", "api"),
    ("h", "/remote.php/dav/files/ann/x", "files"),             # the Nextcloud apps' file tree ...
    ("h", "/remote.php/webdav/x", "files"),                    # ... its legacy address
    ("h", "/remote.php/dav/uploads/ann/1/00000000", "files"),  # ... and their chunked uploads
    ("h", "/remote.php/dav/trashbin/ann/trash/", "files"),     # ... trash bin and versions
    ("h", "/remote.php/dav/versions/ann/versions/8/", "files"),
    ("h", "/remote.php/dav/calendars/ann/x/", "redirect /dav/calendars/"),  # their calendars and contacts
    ("h", "/remote.php/dav/addressbooks/ann/", "redirect /dav/addressbooks/"),
    ("h", "/remote.php/dav/principals/ann/", "redirect /dav/principals/"),
    ("h", "/index.php/core/preview", "files"),                 # their thumbnails, drawn from the files ...
    ("h", "/index.php/core/preview.png", "files"),
    ("h", "/index.php/apps/files/api/v1/thumbnail/64/64/a.jpg", "files"),
    ("h", "/index.php/core/previewer", "api"),                 # ... by exact name: the rest of /index.php/
    ("h", "/remote.php/dav/avatars/ann/64.png", "api"),        # the desktop's avatars
])
def test_first_match_wins_by_host_and_prefix(tmp_path, host, path, expected):
    assert target(table(tmp_path, ROUTES).match(host, path)) == expected


def test_an_explicit_catch_all_takes_what_the_built_ins_would(tmp_path):
    routes = table(tmp_path, '[[route]]\npath = "/"\nupstream = "127.0.0.1:9100"\n')
    assert target(routes.match("h", "/anything")) == "127.0.0.1:9100"
    assert target(routes.match("h", "/api/v1/me")) == "127.0.0.1:9100"


def test_the_nextcloud_apps_reach_the_api_daemon_by_name_not_through_the_web_ui_catch_all(tmp_path):
    routes = table(tmp_path, ROUTES)
    for path in ("/status.php", "/index.php/204", "/index.php/login/flow", "/ocs/v1.php/cloud/user"):
        assert routes.match("h", path).origin == "built-in", path
    assert routes.match("h", "/login").origin == "built-in: web UI"
    assert routes.match("h", "/status.phpx").origin == "built-in: web UI"   # prefixes end at a segment


def test_strip_prefix_and_the_slash_redirect(tmp_path):
    routes = table(tmp_path, ROUTES)
    hello = routes.match("h", "/hello/x")
    assert hello.upstream.host == "127.0.0.1" and hello.upstream.port == 9001  # 0.0.0.0 means loopback
    assert hello.upstream_path("/hello/x", "/hello/x?a=1&b=%2F") == "/x?a=1&b=%2F"
    assert hello.upstream_path("/hello/", "/hello/") == "/"
    assert hello.upstream_path("/hello/a b", "/hello/a%20b") == "/a%20b"       # raw bytes pass untouched
    assert hello.upstream_path("/hello/x", "/%68ello/x?q") == "/x?q"          # an encoded prefix still strips
    assert hello.wants_slash("/hello") and not hello.wants_slash("/hello/")
    app = routes.match("h", "/app/x")
    assert app.upstream_path("/app/x", "/app/x?y") == "/app/x?y"               # no strip_prefix: as sent
    old = routes.match("h", "/old")
    assert not old.wants_slash("/old")                                         # "/old" has no slash to add


def test_unix_sockets_resolve_against_the_data_dir(tmp_path):
    routes = table(tmp_path, '[api]\nlisten = "unix:run/api.sock"\n'
                             '[[route]]\npath = "/x/"\nupstream = "unix:run/x.sock"\n')
    assert routes.match("h", "/x/").upstream.socket == tmp_path / "var" / "run" / "x.sock"
    api = routes.match("h", "/api/").upstream
    assert api.socket == tmp_path / "var" / "run" / "api.sock" and api.service == "api" and api.suite
    assert routes.match("h", "/sync/").upstream.socket == tmp_path / "var" / "run" / "sync.sock"


@pytest.mark.parametrize("text, message", [
    ('[[route]]\nservice = "rotate"\n', "'rotate' does not serve HTTP"),
    ('[[service]]\nname = "quiet"\ncommand = "true"\n[[route]]\nservice = "quiet"\n',
     "service 'quiet' has no listen"),
    ('[[route]]\nupstream = "nowhere"\n', "[[route]] #1: upstream: expected HOST:PORT or unix:PATH"),
])
def test_routes_the_front_cannot_serve_are_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        table(tmp_path, text)
    assert message in str(error.value)


@pytest.mark.parametrize("header, host", [
    ("Example.org", "example.org"), ("example.org:8080", "example.org"), ("[::1]:8080", "::1"),
    ("[::1]", "::1"), ("", ""), (None, ""), ("example.org.", "example.org"),
])
def test_host_header_normalisation(header, host):
    assert normalise_host(header) == host


def test_propfind_of_the_bare_server_address_leads_dav_clients_to_the_dav_root(tmp_path):
    routes = table(tmp_path, ROUTES)
    assert target(routes.match("h", "/", "PROPFIND")) == "redirect /dav/"
    assert target(routes.match("h", "/", "GET")) == "api"  # the web UI
    assert target(routes.match("h", "/files/ann/", "PROPFIND")) == "files"  # only the root itself
