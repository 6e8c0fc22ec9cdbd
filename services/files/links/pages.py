"""The public pages of a share link, as server-rendered HTML.

Every value that reaches a page goes through `e()` (html.escape, quotes
included) or `href()` (percent-encoding, then escaping). The pages name only
what the owner chose to show: the shared item's name, its contents, and the
link's label; never the owner, the folder above, or an internal id.
"""
from __future__ import annotations

import html
from urllib.parse import quote

from services.core.share_links import Link
from .tree_view import Item

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1rem;color:#222;background:#fafafa}
main{max-width:40rem;margin:0 auto;background:#fff;border:1px solid #ddd;border-radius:8px;padding:1rem 1.25rem}
h1{font-size:1.3rem;margin:.2rem 0 1rem;word-break:break-word}
table{width:100%;border-collapse:collapse}td{padding:.45rem .2rem;border-top:1px solid #eee;word-break:break-word}
td.size{text-align:right;white-space:nowrap;color:#666}
a.button,button{display:inline-block;padding:.6rem 1.1rem;border-radius:6px;border:0;background:#2557a7;
color:#fff;text-decoration:none;font-size:1rem;cursor:pointer}
input{font-size:1rem;padding:.5rem;max-width:100%}label{display:block;margin:.6rem 0 .3rem}
.note{color:#666;font-size:.9rem}.error{color:#a11}
"""

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never hand it to another site
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def href(*parts: str) -> str:
    """A URL from already-trusted prefix parts and path segments, each percent-encoded, then escaped."""
    return e("/".join(quote(part, safe="/") for part in parts))


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} bytes"


def page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="referrer" content="no-referrer"><title>{e(title)}</title>'
            f'<style>{STYLE}</style></head><body><main>{body}</main></body></html>')


def _heading(link: Link, title: str) -> str:
    label = f'<p class="note">{e(link.label)}</p>' if link.label else ""
    return f"<h1>{e(title)}</h1>{label}"


def file_page(link: Link, item: Item) -> str:
    return page(link.name, _heading(link, link.name) +
                f'<p>{e(human_size(item.size))}</p>'
                f'<p><a class="button" href="{href("/s", link.token, "download")}" download>Download</a></p>')


def folder_page(link: Link, relative: str, items: list[Item], notice: str = "") -> str:
    """A folder's contents with links into subfolders and to downloads; an upload form if allowed."""
    title = link.name if not relative else f"{link.name}/{relative}"
    rows = []
    if relative:
        parent = relative.rpartition("/")[0]
        rows.append(f'<tr><td><a href="{href("/s", link.token, "browse", parent) if parent else href("/s", link.token)}'
                    f'">.. (up)</a></td><td></td></tr>')
    for item in items:
        below = f"{relative}/{item.name}" if relative else item.name
        if item.kind == "dir":
            rows.append(f'<tr><td><a href="{href("/s", link.token, "browse", below)}">{e(item.name)}/</a></td>'
                        f'<td class="size"></td></tr>')
        else:
            rows.append(f'<tr><td><a href="{href("/s", link.token, "download", below)}" download>{e(item.name)}</a>'
                        f'</td><td class="size">{e(human_size(item.size))}</td></tr>')
    listing = f"<table>{''.join(rows)}</table>" if rows else '<p class="note">This folder is empty.</p>'
    upload = upload_form(link, relative) if link.mode == "read-write" else ""
    return page(title, _heading(link, title) + _notice(notice) + listing + upload)


def drop_page(link: Link, notice: str = "") -> str:
    """Upload-only: a form and nothing else (not even what others uploaded)."""
    return page(link.name, _heading(link, link.name) + _notice(notice) +
                '<p class="note">Files you send here go to the owner. You cannot see what is in this folder.</p>' +
                upload_form(link, ""))


def upload_form(link: Link, relative: str) -> str:
    action = href("/s", link.token, "upload", relative) if relative else href("/s", link.token, "upload")
    return (f'<form method="post" action="{action}" enctype="multipart/form-data">'
            f'<label for="files">Add files</label><input id="files" type="file" name="file" multiple required>'
            f'<p><button type="submit">Upload</button></p></form>')


def uploaded_notice(names: list[str]) -> str:
    return "Received: " + ", ".join(names)


def _notice(text: str) -> str:
    return f'<p role="status"><strong>{e(text)}</strong></p>' if text else ""


def password_page(link: Link, wrong: bool = False) -> str:
    error = '<p class="error" role="alert">That password is not right.</p>' if wrong else ""
    return page("Password required",
                "<h1>This link is protected</h1>" + error +
                f'<form method="post" action="{href("/s", link.token, "unlock")}">'
                f'<label for="password">Password</label>'
                f'<input id="password" type="password" name="password" autocomplete="current-password" '
                f'required autofocus><p><button type="submit">Open</button></p></form>')


ERRORS = {
    400: ("Bad request", "That address or form is not valid for this link."),
    404: ("Not found", "There is nothing here. The link may be mistyped, or the file was moved or deleted."),
    409: ("Not possible", "That cannot be done right now; try again."),
    410: ("This link is no longer available", "The link was revoked or has expired."),
    413: ("Too large", "That upload is larger than this server accepts."),
    416: ("Range not satisfiable", "The requested part of the file does not exist."),
    429: ("Too many attempts", "Too many wrong passwords from your address; wait a few minutes."),
    507: ("No space left", "The owner has no space left for uploads."),
}


def error_page(status: int, reason: str) -> str:
    """A plain page for an error. Only the 410 and 429 reasons are shown as written (they are
    ours and say what to do); others may name paths above the shared item, so a fixed text stands in."""
    title, text = ERRORS.get(status, ("Something went wrong", "The server could not do that."))
    if status in (410, 429):
        text = reason
    return page(title, f"<h1>{e(title)}</h1><p>{e(text)}</p>")
