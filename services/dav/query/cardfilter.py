"""CARDDAV:filter (RFC 6352 §10.5): read it from the request, test a vCard against it.

Any property can be filtered on (FN, EMAIL, TEL, N, NICKNAME, ORG, UID, X-…):
values are compared as vobject reads them from the vCard (2.1, 3.0 or 4.0),
structured ones (N, ADR, ORG) in their `a;b;c` text form. `test` combines
prop-filters (filter level) and their text-matches and param-filters
(prop-filter level): anyof, the default, or allof.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import vobject

from ..errors import CARDDAV, Precondition
from .textmatch import COLLATIONS, ParamFilter, TextMatch, parse_param_filter, parse_text_match

NAME = re.compile(r"[A-Za-z0-9-]+")
DEFAULT_COLLATION = "i;unicode-casemap"


def _cr(name: str) -> str:
    return f"{{{CARDDAV}}}{name}"


@dataclass(frozen=True)
class PropFilter:
    name: str
    all_of: bool = False
    is_not_defined: bool = False
    text_matches: tuple[TextMatch, ...] = ()
    params: tuple[ParamFilter, ...] = ()


@dataclass(frozen=True)
class CardFilter:
    props: tuple[PropFilter, ...] = ()
    all_of: bool = False


def parse_card_filter(node: ET.Element | None) -> CardFilter:
    """The filter of an addressbook-query; valid-filter / supported-filter / supported-collation otherwise."""
    if node is None or node.tag != _cr("filter"):
        raise Precondition(CARDDAV, "valid-filter", "addressbook-query needs a CARDDAV:filter")
    props = []
    for child in node:
        if child.tag != _cr("prop-filter"):
            raise Precondition(CARDDAV, "valid-filter", f"unexpected {child.tag} in the filter")
        props.append(_prop_filter(child))
    return CardFilter(tuple(props), _all_of(node))


def _all_of(node: ET.Element) -> bool:
    test = node.get("test", "anyof")
    if test not in ("anyof", "allof"):
        raise Precondition(CARDDAV, "valid-filter", f"test must be anyof or allof, not {test!r}")
    return test == "allof"


def _name(node: ET.Element, what: str) -> str:
    name = node.get("name", "")
    if not NAME.fullmatch(name):
        raise Precondition(CARDDAV, "valid-filter", f"{what} name {name!r} is not a vCard name")
    return name.upper()


def _prop_filter(node: ET.Element) -> PropFilter:
    is_not_defined, matches, params = False, [], []
    for child in node:
        if child.tag == _cr("is-not-defined"):
            is_not_defined = True
        elif child.tag == _cr("text-match"):
            matches.append(parse_text_match(child, CARDDAV, DEFAULT_COLLATION))
        elif child.tag == _cr("param-filter"):
            params.append(_param_filter(child))
        else:
            raise Precondition(CARDDAV, "valid-filter", f"unexpected {child.tag} in a prop-filter")
    return PropFilter(_name(node, "prop-filter"), _all_of(node), is_not_defined, tuple(matches), tuple(params))


def _param_filter(node: ET.Element) -> ParamFilter:
    return parse_param_filter(node, _name(node, "param-filter"), CARDDAV, DEFAULT_COLLATION)


def read_card(raw: bytes):
    """The vCard as vobject reads it, untransformed (values stay text); None when unreadable."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        return next(vobject.readComponents(text, allowQP=True, transform=False))
    except Exception:  # stored cards were validated; a card vobject cannot read simply does not match
        return None


def card_matches(card, flt: CardFilter) -> bool:
    """Whether a vCard (from read_card) satisfies the filter; an empty filter matches every card."""
    if not flt.props:
        return True
    results = (_prop_matches(card, prop) for prop in flt.props)
    return all(results) if flt.all_of else any(results)


def _prop_matches(card, flt: PropFilter) -> bool:
    lines = card.contents.get(flt.name.lower(), [])
    if flt.is_not_defined:
        return not lines
    if not lines:
        return False
    tests = [*((lambda line, m=m: m.matches(str(line.value))) for m in flt.text_matches),
             *((lambda line, p=p: _param_matches(line, p)) for p in flt.params)]
    if not tests:
        return True
    if flt.all_of:
        return all(any(test(line) for line in lines) for test in tests)
    return any(test(line) for test in tests for line in lines)


def _param_matches(line, flt: ParamFilter) -> bool:
    values = list(line.params.get(flt.name, []))
    if flt.name == "TYPE":  # vCard 2.1 writes types bare: TEL;WORK;VOICE
        values += line.singletonparams
    if flt.is_not_defined:
        return not values and flt.name not in line.params
    if not values and flt.name not in line.params:
        return False
    if flt.text_match is None:
        return True
    return any(flt.text_match.matches(str(v)) for v in values)


def may_match(raw: bytes, flt: CardFilter) -> bool:
    """False only when the stored text proves the card cannot match; True means "ask vobject".

    Only prop-filters made of plain, non-negated ASCII text-matches are judged:
    such a filter needs its text somewhere in the unfolded, case-folded card.
    Quoted-printable cards (vCard 2.1) and anything else are left to vobject."""
    if not flt.props or b"QUOTED-PRINTABLE" in raw.upper():
        return True
    text = None
    verdicts = []
    for prop in flt.props:
        judgeable = (not prop.is_not_defined and not prop.params and prop.text_matches
                     and all(_plain(m) for m in prop.text_matches))
        if not judgeable:
            verdicts.append(True)
            continue
        if text is None:
            text = raw.decode("utf-8", "replace").replace("\r\n ", "").replace("\n ", "")
            text = text.replace("\r\n\t", "").replace("\n\t", "")
        hits = [COLLATIONS[m.collation](m.text) in COLLATIONS[m.collation](text) for m in prop.text_matches]
        verdicts.append(all(hits) if prop.all_of else any(hits))
    return all(verdicts) if flt.all_of else any(verdicts)


def _plain(match: TextMatch) -> bool:
    return not match.negate and match.text.isascii() and not any(c in match.text for c in ",;\\")
