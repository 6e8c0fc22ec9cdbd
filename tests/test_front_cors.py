"""CORS at the door, through real HTTP on loopback.

A tiny app plays the front end: its handler asks the policy first, as the
proxy does, then plays the upstream, which counts its calls (preflights must
never reach it) and sends Access-Control-* headers of its own (they must be
dropped).
"""
from __future__ import annotations

import logging

import pytest
from aiohttp import web
from multidict import CIMultiDict

from services.core.config import ConfigError, load_config
from services.front.cors import CorsPolicy

APP = "https://app.example.org"
CALLS = web.AppKey("calls", list)


def make_app(spec) -> web.Application:
    policy = CorsPolicy.from_spec(spec)
    calls = []

    async def door(request: web.Request) -> web.StreamResponse:
        answer = policy.preflight(request)
        if answer is not None:
            return answer
        calls.append(request.method)  # the "upstream"
        response = web.Response(text="upstream", headers=CIMultiDict({
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "DELETE",
            "access-control-expose-headers": "X-Secret",
            "Vary": "Accept-Encoding",
            "X-Request-Id": "42",
        }))
        policy.decorate(request, response.headers)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", door)
    app[CALLS] = calls
    return app


def preflight_headers(origin, method="PUT", headers=None):
    out = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        out["Access-Control-Request-Headers"] = headers
    return out


def allow_headers(response):
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-allow-")}


def vary(response):
    return [t.strip().lower() for v in response.headers.getall("Vary", ()) for t in v.split(",")]


SPEC = {"origins": (APP, "https://*.example.net"), "methods": ("GET", "PUT", "delete"),
        "headers": ("Content-Type", "X-Token"), "expose": ("X-Request-Id",), "credentials": True,
        "max_age": 3600}


async def test_allowed_preflight_is_answered_at_the_door(aiohttp_client):
    client = await aiohttp_client(make_app(SPEC))
    response = await client.options("/api/thing", headers=preflight_headers(APP, "PUT", "content-type, x-token"))
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")} == {"GET", "PUT", "DELETE"}
    assert {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")} == {"content-type", "x-token"}
    assert response.headers["Access-Control-Max-Age"] == "3600"
    assert {"origin", "access-control-request-method", "access-control-request-headers"} <= set(vary(response))
    assert client.app[CALLS] == []


async def test_method_and_headers_are_case_insensitive(aiohttp_client):
    client = await aiohttp_client(make_app(SPEC))
    response = await client.options("/", headers=preflight_headers(APP, "Delete", "X-TOKEN"))
    assert response.headers["Access-Control-Allow-Origin"] == APP
    # an unusual spelling is echoed: browsers compare non-standard methods byte for byte
    assert "Delete" in response.headers["Access-Control-Allow-Methods"]
    assert client.app[CALLS] == []


@pytest.mark.parametrize("origin, method, headers, why", [
    ("https://evil.example.com", "PUT", None, "origin"),
    ("http://app.example.org", "PUT", None, "origin"),       # scheme differs
    ("https://app.example.org:8443", "PUT", None, "origin"),  # port differs
    ("null", "PUT", None, "origin"),
    (APP, "PATCH", None, "method"),
    (APP, "PUT", "x-token, x-other", "header"),
])
async def test_refused_preflight_has_no_allow_headers(aiohttp_client, caplog, origin, method, headers, why):
    caplog.set_level(logging.DEBUG, logger="front.cors")
    client = await aiohttp_client(make_app(SPEC))
    response = await client.options("/", headers=preflight_headers(origin, method, headers))
    assert response.status in (200, 204)
    assert allow_headers(response) == {}
    assert "origin" in vary(response)
    assert client.app[CALLS] == []
    assert [r for r in caplog.records if r.name == "front.cors" and why in r.getMessage()]


async def test_origin_comparison_follows_the_serialization(aiohttp_client):
    spec = {"origins": ("https://App.Example.org:443/", "http://localhost:8080")}
    client = await aiohttp_client(make_app(spec))
    for origin in (APP, "http://localhost:8080"):
        response = await client.options("/", headers=preflight_headers(origin, "GET"))
        assert response.headers["Access-Control-Allow-Origin"] == origin
    response = await client.options("/", headers=preflight_headers("http://localhost", "GET"))
    assert allow_headers(response) == {}


@pytest.mark.parametrize("origin, allowed", [
    ("https://a.example.net", True),
    ("https://a.b.example.net", True),
    ("https://example.net", False),
    ("http://a.example.net", False),
    ("https://a.example.net:8443", False),
    ("https://evilexample.net", False),
    ("https://a.example.net.evil.org", False),
])
async def test_wildcard_subdomains(aiohttp_client, origin, allowed):
    client = await aiohttp_client(make_app(SPEC))
    response = await client.options("/", headers=preflight_headers(origin, "GET"))
    assert response.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
    actual = await client.get("/", headers={"Origin": origin})
    assert actual.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)


async def test_null_origin_only_when_listed(aiohttp_client):
    client = await aiohttp_client(make_app({"origins": ("null",)}))
    response = await client.options("/", headers=preflight_headers("null", "GET"))
    assert response.headers["Access-Control-Allow-Origin"] == "null"


async def test_actual_request_gets_the_door_headers_not_the_upstreams(aiohttp_client):
    client = await aiohttp_client(make_app(SPEC))
    response = await client.get("/", headers={"Origin": APP})
    assert client.app[CALLS] == ["GET"]
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Expose-Headers"] == "X-Request-Id"
    assert "Access-Control-Allow-Methods" not in response.headers
    assert len(response.headers.getall("Vary")) == 1
    assert vary(response) == ["accept-encoding", "origin"]

    other = await client.get("/", headers={"Origin": "https://evil.example.com"})
    assert [k for k in other.headers if k.lower().startswith("access-control-")] == []
    assert "origin" in vary(other)
    plain = await client.get("/")
    assert [k for k in plain.headers if k.lower().startswith("access-control-")] == []
    assert "origin" in vary(plain)


async def test_an_options_request_that_is_not_a_preflight_is_proxied(aiohttp_client):
    client = await aiohttp_client(make_app(SPEC))
    response = await client.options("/", headers={"Origin": APP})
    assert await response.text() == "upstream"
    assert client.app[CALLS] == ["OPTIONS"]


async def test_any_origin(aiohttp_client):
    client = await aiohttp_client(make_app({"origins": ("*",), "headers": ("*",)}))
    response = await client.options("/", headers=preflight_headers("https://x.test", "POST", "authorization, x-y"))
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    # "*" headers are answered by echo: a literal "*" would not cover Authorization
    assert {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")} == {"authorization", "x-y"}
    refused = await client.options("/", headers=preflight_headers("https://x.test", "DELETE"))
    assert allow_headers(refused) == {}  # methods default to GET, HEAD, POST
    actual = await client.get("/", headers={"Origin": "https://x.test"})
    assert actual.headers["Access-Control-Allow-Origin"] == "*"
    assert "origin" not in vary(actual)  # the answer does not depend on the Origin


async def test_credentials_never_with_star(aiohttp_client, tmp_path):
    client = await aiohttp_client(make_app({"origins": (APP,), "credentials": True, "expose": ("*",)}))
    response = await client.get("/", headers={"Origin": APP})
    assert response.headers["Access-Control-Allow-Origin"] == APP
    # "*" exposes nothing when credentials are on: the response's own headers are named
    assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]
    assert "*" not in response.headers["Access-Control-Expose-Headers"]

    with pytest.raises(ConfigError):
        CorsPolicy.from_spec({"origins": ("*",), "credentials": True})
    path = tmp_path / "hearth.toml"
    path.write_text('[[route]]\npath = "/x/"\nupstream = "127.0.0.1:9"\n'
                    'cors = { origins = ["*"], credentials = true }\n')
    with pytest.raises(ConfigError, match="credentials"):
        load_config(path, environ={})


def test_no_spec_no_policy_and_bad_origins_fail_at_start():
    assert CorsPolicy.from_spec(None) is None
    for bad in ("app.example.org", "https://app.example.org/path", "https://*evil.org", "https://a.*.org"):
        with pytest.raises(ConfigError, match="origins"):
            CorsPolicy.from_spec({"origins": (bad,)})


def test_vary_merge_keeps_one_header():
    from services.front.cors import add_vary
    headers = CIMultiDict([("Vary", "Accept-Encoding"), ("Vary", "Cookie")])
    add_vary(headers, "Origin")
    assert headers.getall("Vary") == ["Accept-Encoding, Cookie, Origin"]
    add_vary(headers, "origin")
    assert headers.getall("Vary") == ["Accept-Encoding, Cookie, Origin"]
    star = CIMultiDict(Vary="*")
    add_vary(star, "Origin")
    assert star.getall("Vary") == ["*"]
