"""The WebDAV If header (RFC 4918 §10.4): parsed into lists of conditions.

    If: <http://h/a> (<urn:uuid:…> ["etag"]) (Not <DAV:no-lock>)

Each list is (resource or None for the request URL, [Condition, …]); the
header holds when any list holds, a list when all its conditions do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from services.core.errors import BadRequest

_TOKEN = re.compile(r"\s*(<[^>]*>|\[[^\]]*\]|\(|\)|Not\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    negated: bool
    kind: str  # 'token' | 'etag'
    value: str


@dataclass(frozen=True)
class ConditionList:
    resource: str | None  # a tagged list's URL; None: the request URL
    conditions: tuple[Condition, ...]


def _tokens(header: str) -> list[str]:
    tokens, position = [], 0
    while position < len(header):
        if header[position:].strip() == "":
            break
        match = _TOKEN.match(header, position)
        if match is None:
            raise BadRequest(f"If header: cannot parse at {header[position:position + 40]!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def parse_if(header: str) -> list[ConditionList]:
    """The lists of an If header; BadRequest when it is malformed."""
    lists: list[ConditionList] = []
    tokens = _tokens(header)
    resource: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("<"):
            resource = token[1:-1]
            i += 1
            continue
        if token != "(":
            raise BadRequest(f"If header: expected '(' but found {token!r}")
        i += 1
        conditions: list[Condition] = []
        while i < len(tokens) and tokens[i] != ")":
            negated = tokens[i].lower() == "not"
            if negated:
                i += 1
            if i >= len(tokens):
                break
            item = tokens[i]
            if item.startswith("<"):
                conditions.append(Condition(negated, "token", item[1:-1]))
            elif item.startswith("["):
                conditions.append(Condition(negated, "etag", item[1:-1]))
            else:
                raise BadRequest(f"If header: unexpected {item!r}")
            i += 1
        if i >= len(tokens) or not conditions:
            raise BadRequest("If header: an empty or unclosed list")
        i += 1  # the ')'
        lists.append(ConditionList(resource, tuple(conditions)))
    if not lists:
        raise BadRequest("If header: no condition list")
    return lists


def submitted_tokens(lists: list[ConditionList]) -> set[str]:
    """Lock tokens the request submits: every state token named in the header (RFC 4918 §10.4.1)."""
    return {c.value for each in lists for c in each.conditions if c.kind == "token"}
