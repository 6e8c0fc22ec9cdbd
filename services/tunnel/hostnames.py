"""Hostname patterns the relay routes by: an exact name, or `*.example.org` for any one label under it.

A wildcard stands for exactly one label, as in a TLS certificate:
`*.example.org` matches `photos.example.org`, not `example.org` and not
`a.b.example.org`. An exact name wins over a wildcard that also matches.
"""
from __future__ import annotations

from collections.abc import Iterable

WILDCARD = "*."


def normalise(name: str) -> str:
    return name.strip().rstrip(".").lower()


def problem(pattern: str) -> str | None:
    """Why `pattern` is not a hostname or a one-label wildcard; None when it is fine."""
    labels = pattern.split(".")
    if "*" in pattern and (not pattern.startswith(WILDCARD) or "*" in pattern[2:] or len(labels) < 3):
        return f"{pattern!r}: a wildcard is '*.' and at least two labels (e.g. *.example.org)"
    if not all(labels) or any(len(label) > 63 for label in labels) or len(pattern) > 253:
        return f"{pattern!r} is not a hostname"
    return None


def matches(pattern: str, name: str) -> bool:
    if pattern.startswith(WILDCARD):
        first, dot, rest = name.partition(".")
        return bool(first and dot) and rest == pattern[len(WILDCARD):]
    return pattern == name


def covered(patterns: Iterable[str], name: str) -> bool:
    return any(matches(pattern, name) for pattern in patterns)
