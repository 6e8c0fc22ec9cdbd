"""CARDDAV:address-data in a REPORT's prop (RFC 6352 §10.4): whole vCards or only some properties.

Selection works on the stored text line by line (folded lines stay with their
property), so what is returned is exactly what the client stored, less the
properties it did not ask for. BEGIN, END and VERSION are always kept: a
vCard without them is not a vCard.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..errors import CARDDAV, Precondition

ALWAYS = frozenset({"BEGIN", "END", "VERSION"})
LINE = re.compile(r"\r\n|\n")
PROP_NAME = re.compile(r"(?:[A-Za-z0-9-]+\.)?([A-Za-z0-9-]+)")


@dataclass(frozen=True)
class AddressData:
    props: frozenset[str] | None = None  # None: the whole vCard


def parse_address_data(node: ET.Element) -> AddressData:
    content_type = node.get("content-type", "text/vcard")
    if content_type != "text/vcard" or node.get("version", "3.0") not in ("3.0", "4.0"):
        raise Precondition(CARDDAV, "supported-address-data",
                           f"address data is served as text/vcard 3.0 or 4.0, not {content_type}")
    if node.find(f"{{{CARDDAV}}}allprop") is not None:
        return AddressData()
    names = [child.get("name", "").upper() for child in node if child.tag == f"{{{CARDDAV}}}prop"]
    return AddressData(frozenset(names) if names else None)


def render_address_data(raw: bytes, request: AddressData) -> str:
    text = raw.decode("utf-8", "replace")
    if request.props is None:
        return text
    keep_names = request.props | ALWAYS
    kept, keeping = [], False
    for line in LINE.split(text):
        if line[:1] in (" ", "\t"):  # a folded continuation belongs to the line before
            if keeping:
                kept.append(line)
            continue
        match = PROP_NAME.match(line)
        keeping = bool(match) and match.group(1).upper() in keep_names
        if keeping:
            kept.append(line)
    return "\r\n".join(kept) + "\r\n"
