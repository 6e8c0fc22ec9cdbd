"""One-line log records on stderr: the supervisor owns files and rotation.

    2026-11-21T22:02:27.123Z INFO hearth.api: listening on unix:var/run/api.sock

Whatever a client sent (a path, a header, a name) may hold anything: a NUL,
a newline that forges a second line, a quote that ends a field, a bidi
override that makes a line read backwards. Every string that goes into a log
line goes through `escape` first, the way nginx writes its access log: such
characters become \\xHH (their UTF-8 bytes). The formatter applies it to each
argument of a record (`log.info("%s", path)`), and the access logs to each of
their fields, so no daemon has to remember to. Share links' tokens are
secrets: `hide_share_tokens` shortens each `/s/TOKEN` to its first characters.
"""
import logging
import re
import sys
import time
from collections.abc import Mapping

# Printable ASCII passes; of the rest, printable characters (é, 日) pass too.
_SUSPECT = re.compile(r'[^\x20-\x7e]|["\\]')
_SUSPECT_NON_PRINTABLE = re.compile(r"[^\x20-\x7e]")

# /s/TOKEN at the start of a path, after a space or quote, or after a URL's authority (a Referer).
TOKEN_SHOWN = 4
_SHARE_TOKEN = re.compile(r'((?:^|[\s"\'=(])(?:[a-z][a-z0-9+.-]*://[^/\s"]*)?/s/)'
                          rf"([A-Za-z0-9_%-]{{{TOKEN_SHOWN}}})[A-Za-z0-9_%-]+")


def escape(text: str, *, quotes: bool = True) -> str:
    """`text` with control characters, other non-printables, `"` and `\\` as \\xHH: one field, one line.

    `quotes=False` leaves `"` and `\\` alone: for a whole line already made of escaped fields.
    """
    return (_SUSPECT if quotes else _SUSPECT_NON_PRINTABLE).sub(_hex, text)


def _hex(match: re.Match) -> str:
    char = match.group()
    if char.isprintable() and char not in '"\\':
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by "surrogateescape"
        raw = bytes([code - 0xDC00])
    else:
        raw = char.encode("utf-8", "surrogatepass")
    return "".join(f"\\x{byte:02x}" for byte in raw)


def hide_share_tokens(text: str) -> str:
    """`/s/Ab3dEf…` for every share link's `/s/Ab3dEfGh…`: enough to tell links apart, not to open one."""
    return _SHARE_TOKEN.sub(lambda m: f"{m[1]}{m[2]}…", text)


class _Escaped:
    """A log argument that escapes itself for %s; %r keeps Python's repr, which escapes on its own."""

    __slots__ = ("value",)

    def __init__(self, value: object):
        self.value = value

    def __str__(self) -> str:
        return escape(str(self.value))

    def __repr__(self) -> str:
        return repr(self.value)


def _escaped_args(args: object) -> object:
    def wrap(value: object) -> object:
        return value if isinstance(value, (int, float)) or value is None else _Escaped(value)

    if isinstance(args, Mapping):
        return {key: wrap(value) for key, value in args.items()}
    if isinstance(args, tuple):
        return tuple(wrap(value) for value in args)
    return args


class OneLineFormatter(logging.Formatter):
    """UTC timestamp, level, logger, message; arguments escaped, tracebacks folded onto the same line."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        message = str(record.msg) % _escaped_args(record.args) if record.args else str(record.msg)
        line = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name}: {message}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        # What was not an argument (an f-string, an exception's text) still gets no raw control character.
        return hide_share_tokens(escape(line, quotes=False))


def setup_logging(level: str = "info", stream=None) -> None:
    """Send every logger's records to stderr, one line each."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(OneLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
