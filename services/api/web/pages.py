"""The web UI's pages: one HTML shell each, for a logged-in session only.

A page request without a live session cookie is sent to /login with `next`
set, so a bookmark still works after the session ends. Only the shell is
rendered here; every text that comes from data is put in by the page's
module with textContent, never as HTML.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from services.core.auth import AUTHENTICATOR, Identity

from .next_page import same_origin_path

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATES_DIR = WEB_DIR / "templates"

# Scripts and styles only from this origin, no inline code: an injected tag can do nothing.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    template: str          # templates/<template>.html, the page's <main> content
    admin_only: bool = False
    in_nav: bool = True


PAGES = (
    Page("/browse", "Files", "files"),
    Page("/links", "Share links", "links"),
    Page("/devices", "Devices", "devices"),
    Page("/calendars", "Calendars & contacts", "calendars"),
    Page("/account", "Account", "account"),
    Page("/admin", "Admin", "admin", admin_only=True),
)
LOGIN = Page("/login", "Log in", "login", in_nav=False)
HOME = "/browse"  # not /files: that prefix is the WebDAV tree


def _template(name: str) -> str:
    return (TEMPLATES_DIR / f"{name}.html").read_text(encoding="utf-8")


def _nav(current: Page, identity: Identity) -> str:
    items = []
    for page in PAGES:
        if page.admin_only and not identity.is_admin:
            continue
        here = ' aria-current="page"' if page is current else ""
        items.append(f'<li><a href="{page.path}"{here}>{html.escape(page.title)}</a></li>')
    return (f'<nav aria-label="Main"><ul>{"".join(items)}</ul>'
            f'<span class="who">{html.escape(identity.user)}</span>'
            '<button type="button" id="logout">Log out</button></nav>')


def render(page: Page, identity: Identity | None, next_page: str | None = None,
           data: dict[str, str] | None = None) -> str:
    """The page's HTML: head, navigation (when logged in), its template, and its module.

    `next_page` (the login page's): a same-origin path to go to after logging in. `data`: values for
    the page's module, as meta tags it reads (escaped here, put in the page as text there)."""
    meta = "" if next_page is None else f'<meta name="next" content="{html.escape(next_page)}">'
    for name, value in (data or {}).items():
        meta += f'<meta name="{html.escape(name)}" content="{html.escape(value)}">'
    header = ""
    if identity is not None:
        meta += (f'<meta name="csrf-token" content="{html.escape(identity.csrf_token or "")}">'
                f'<meta name="user" content="{html.escape(identity.user)}">')
        header = f"<header>{_nav(page, identity)}</header>"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{meta}
<title>{html.escape(page.title)} · hearth</title>
<link rel="stylesheet" href="/static/hearth.css">
<script type="module" src="/static/{page.template}.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
{header}
<main id="main" tabindex="-1">
<h1>{html.escape(page.title)}</h1>
{_template(page.template)}
</main>
<p id="status" role="status" aria-live="polite"></p>
</body>
</html>
"""


def html_page(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"  # it carries the CSRF token
    return response


def to_login(request: web.Request) -> web.HTTPSeeOther:
    """The redirect to the login form, coming back to this request's page afterwards."""
    return web.HTTPSeeOther(f"{LOGIN.path}?next={quote(request.path_qs, safe='/')}")


def _page_handler(page: Page):
    async def show(request: web.Request) -> web.StreamResponse:
        identity = await request.app[AUTHENTICATOR].session_identity(request)
        if identity is None:
            raise to_login(request)
        if page.admin_only and not identity.is_admin:
            return html_page(render(Page(page.path, "Not allowed", "forbidden", in_nav=False), identity), 403)
        return html_page(render(page, identity))
    show.__name__ = f"page_{page.template}"
    return show


async def login_page(request: web.Request) -> web.Response:
    return html_page(render(LOGIN, None, same_origin_path(request.query.get("next"))))


async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(HOME)


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get(LOGIN.path, login_page)
    for page in PAGES:
        app.router.add_get(page.path, _page_handler(page))
