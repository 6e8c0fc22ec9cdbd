"""Where the login form sends the browser afterwards: the `next` it was given, if that is a path on this server.

`next` comes from the address bar, so anyone can craft it. It must be judged
the way the browser will read it, not the way it looks: browsers drop every
tab, CR and LF anywhere in a URL, strip leading and trailing control
characters and spaces, and treat a backslash as a slash in http(s) URLs, so
`/%09/evil.example/x` and `/\\evil.example` both mean `//evil.example`, another
site (WHATWG URL Standard, basic URL parser). The value is cleaned the same
way, resolved against this origin, and kept only if the origin is unchanged
and the result cannot be read as a network path (`//host`) again.
"""
from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit

HOME = "/"
_ORIGIN = "http://origin.invalid"
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_DROPPED = str.maketrans("", "", "\t\n\r")
# Characters a path, query or fragment may carry as they are; everything else is percent-encoded.
_KEPT = "/?#%:@!$&'()*+,;=-._~[]"


def same_origin_path(value: str | None) -> str:
    """`value` as a path on this origin (with its query and fragment), or HOME when it leads anywhere else."""
    if not value:
        return HOME
    text = value.strip(_C0_AND_SPACE).translate(_DROPPED).replace("\\", "/")
    if not text.startswith("/") or text.startswith("//"):
        return HOME
    resolved = urlsplit(urljoin(_ORIGIN + "/", text))
    if f"{resolved.scheme}://{resolved.netloc}" != _ORIGIN:
        return HOME
    path = "/" + resolved.path.lstrip("/")  # "/a/..//b" resolves to "//b": one slash, never a host
    result = path + (f"?{resolved.query}" if resolved.query else "") + \
        (f"#{resolved.fragment}" if resolved.fragment else "")
    return quote(result, safe=_KEPT)
