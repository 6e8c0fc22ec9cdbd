"""text-match (RFC 4791 §9.7.5, RFC 6352 §10.5.4): collations and match types.

Collations are those of RFC 4790 / RFC 5051: i;octet compares bytes as they
are, i;ascii-casemap folds only A-Z, i;unicode-casemap folds case the Unicode
way (with compatibility normalisation, as RFC 5051 asks).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from ..errors import Precondition

MATCH_TYPES = ("equals", "contains", "starts-with", "ends-with")
_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _octet(text: str) -> str:
    return text


def _ascii_casemap(text: str) -> str:
    return text.translate(_ASCII_UPPER)


def _unicode_casemap(text: str) -> str:
    return unicodedata.normalize("NFKD", text).casefold()


COLLATIONS = {"i;octet": _octet, "i;ascii-casemap": _ascii_casemap, "i;unicode-casemap": _unicode_casemap}


@dataclass(frozen=True)
class TextMatch:
    text: str
    collation: str
    match_type: str = "contains"
    negate: bool = False

    def matches(self, value: str) -> bool:
        fold = COLLATIONS[self.collation]
        needle, hay = fold(self.text), fold(value)
        if self.match_type == "equals":
            found = hay == needle
        elif self.match_type == "starts-with":
            found = hay.startswith(needle)
        elif self.match_type == "ends-with":
            found = hay.endswith(needle)
        else:
            found = needle in hay
        return found != self.negate


def parse_text_match(node, namespace: str, default_collation: str) -> TextMatch:
    """A TextMatch from a text-match element; supported-collation / valid-filter when it asks the impossible.

    match-type is CardDAV's; a CalDAV client that sends it gets it honoured rather than refused."""
    collation = node.get("collation", default_collation)
    if collation not in COLLATIONS:
        raise Precondition(namespace, "supported-collation", f"collation {collation!r} is not supported")
    match_type = node.get("match-type", "contains")
    if match_type not in MATCH_TYPES:
        raise Precondition(namespace, "valid-filter", f"match-type {match_type!r} is not known")
    negate = node.get("negate-condition", "no")
    if negate not in ("yes", "no"):
        raise Precondition(namespace, "valid-filter", f"negate-condition must be yes or no, not {negate!r}")
    return TextMatch(node.text or "", collation, match_type, negate == "yes")


@dataclass(frozen=True)
class ParamFilter:
    """A param-filter (RFC 4791 §9.7.3, RFC 6352 §10.5.2): the parameter is absent, or present (and matches)."""

    name: str
    is_not_defined: bool = False
    text_match: TextMatch | None = None


def parse_param_filter(node, name: str, namespace: str, default_collation: str) -> ParamFilter:
    """A param-filter element of CalDAV or CardDAV (`namespace`), its `name` already checked by the caller."""
    is_not_defined, text_match = False, None
    for child in node:
        if child.tag == f"{{{namespace}}}is-not-defined":
            is_not_defined = True
        elif child.tag == f"{{{namespace}}}text-match":
            text_match = parse_text_match(child, namespace, default_collation)
    return ParamFilter(name, is_not_defined, text_match)
