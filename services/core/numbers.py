"""Numbers taken from a request: path parameters, query strings, headers, cookies and JSON bodies.

Python's int() and float() accept more than a client may send, and what they
let through breaks later, far from the parsing: '²' passes str.isdigit() yet
int() refuses it; int() takes any Unicode digit, underscores and surrounding
space; a value of 2**63 or more cannot be bound by SQLite (OverflowError, which
became a 500); float() takes 'nan' and 'inf', and min(nan, 60) is nan, so a long
poll told to wait 'nan' seconds waited forever. Every number a daemon reads
from a request goes through here: ASCII digits, within SQLite's 64-bit
integers, finite; anything else is a BadRequest naming the parameter.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import BadRequest

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1

_INTEGER = re.compile(r"-?[0-9]{1,20}")  # 20 digits: enough for any 64-bit value, and a cheap int()
_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")


def whole_number(raw: str, minimum: int = 0, maximum: int = INT64_MAX) -> int | None:
    """`raw` as an int when it is plain ASCII digits (with a leading '-' for a negative) between
    `minimum` and `maximum`; None otherwise. For headers and cookies, where a bad value is ignored."""
    if not _INTEGER.fullmatch(raw):
        return None
    value = int(raw)
    return value if minimum <= value <= maximum else None


def parse_int(name: str, raw: str, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """An integer request parameter, or a BadRequest saying what was expected."""
    value = whole_number(raw, minimum, maximum)
    if value is None:
        raise BadRequest(f"{name}: expected an integer from {minimum} to {maximum}, got {raw[:40]!r}")
    return value


def parse_number(name: str, raw: str, minimum: float, maximum: float) -> float:
    """A finite decimal request parameter (30, 0.5, 2.5e1), or a BadRequest: never nan or inf."""
    value = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
    if not math.isfinite(value):
        raise BadRequest(f"{name}: expected a finite decimal number, got {raw[:40]!r}")
    if not minimum <= value <= maximum:
        raise BadRequest(f"{name}: expected a number from {minimum:g} to {maximum:g}, got {raw[:40]!r}")
    return value


def _json_int(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise BadRequest(f"body: the number {text[:40]} is outside the 64-bit integer range")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(f"body: the number {text[:40]} is too large")
    return value


def _json_constant(text: str) -> Any:
    raise BadRequest(f"body: {text} is not JSON (numbers are finite)")


def loads_json(text: str) -> Any:
    """json.loads for request bodies: integers within 64 bits, finite numbers, no NaN or Infinity
    (which Python's json accepts although JSON has no such values). BadRequest otherwise."""
    return json.loads(text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
