"""WebDAV multistatus bodies (RFC 4918 §13) written as text, for the DAV and files daemons.

A PROPFIND or REPORT over a big collection answers with thousands of
DAV:response elements. Building an ElementTree for them and serialising it costs
several times more than writing the text directly (and keeps every element
alive until the end, which makes the garbage collector walk them again and
again), so these answers are written as text. Property values that arrive as
elements (a dead property a client set, a lock owner) are written by
`element_xml` in the document's prefixes.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from http import HTTPStatus
from typing import Iterable, Mapping, Union

from aiohttp import web

DAV = "DAV:"
XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"  # the predeclared `xml:` prefix (xml:lang)

Value = Union[str, list[ET.Element]]  # a property's value: text, or child elements


def escape(text: str) -> str:
    """Text content as XML: markup escaped, and CR kept as a character reference (a raw CR would reach
    the client as LF: XML parsers normalise line ends, and calendar data must arrive as stored)."""
    # Chained replace is several times faster than str.translate with a mapping.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def escape_attribute(text: str) -> str:
    return escape(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def status_text(code: int) -> str:
    """The DAV:status line of a code: `HTTP/1.1 404 Not Found`."""
    try:
        return f"HTTP/1.1 {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP/1.1 {code}"


class MultistatusWriter:
    """Writes multistatus documents whose root declares `prefixes` (namespace URI -> prefix; DAV: must
    be among them). Namespaces not in the map are declared where they are used."""

    def __init__(self, prefixes: Mapping[str, str]):
        if prefixes.get(DAV) is None:
            raise ValueError("the DAV: namespace needs a prefix")
        self.prefixes = dict(prefixes)
        self._dav = self.prefixes[DAV]
        self._open = ('<?xml version="1.0" encoding="utf-8"?>\n'
                      f"<{self._dav}:multistatus"
                      + "".join(f' xmlns:{prefix}="{escape_attribute(uri)}"' for uri, prefix in self.prefixes.items())
                      + ">")
        self._close = f"</{self._dav}:multistatus>"
        self._names: dict[str, tuple[str, str]] = {}  # Clark name -> (qualified name, declaration)

    def property_xml(self, clark: str, value: Value | None = None) -> str:
        """One property element: empty (value None), with text, or with child elements."""
        name, declare = self._qualified(clark)
        if value is None or value == []:
            return f"<{name}{declare}/>"
        if isinstance(value, str):
            return f"<{name}{declare}>{escape(value)}</{name}>"
        return f"<{name}{declare}>{''.join(map(self.element_xml, value))}</{name}>"

    def element_xml(self, node: ET.Element) -> str:
        """An element and its subtree in the root's prefixes, declaring other namespaces where used."""
        name, declare = self._qualified(node.tag)
        attributes = self._attributes(node.attrib) if node.attrib else ""
        inner = escape(node.text or "") + "".join(map(self.element_xml, node))
        tail = escape(node.tail or "")
        if not inner:
            return f"<{name}{declare}{attributes}/>{tail}"
        return f"<{name}{declare}{attributes}>{inner}</{name}>{tail}"

    def response_xml(self, href: str, by_status: Mapping[int, Iterable[str]]) -> str:
        """One DAV:response: the href (already URL-encoded), then a propstat per status that has
        properties (written by property_xml or element_xml), in status order."""
        d = self._dav
        parts = [f"<{d}:response><{d}:href>{escape(href)}</{d}:href>"]
        for code in sorted(by_status):
            text = "".join(by_status[code])
            if text:
                parts.append(f"<{d}:propstat><{d}:prop>{text}</{d}:prop>"
                             f"<{d}:status>{status_text(code)}</{d}:status></{d}:propstat>")
        parts.append(f"</{d}:response>")
        return "".join(parts)

    def status_response_xml(self, href: str, code: int, condition: str | None = None) -> str:
        """A DAV:response carrying only a status (a deleted member, a missing href, a truncated answer),
        with a DAV:error naming the DAV: `condition` when there is one."""
        d = self._dav
        error = f"<{d}:error><{d}:{condition}/></{d}:error>" if condition else ""
        return (f"<{d}:response><{d}:href>{escape(href)}</{d}:href>"
                f"<{d}:status>{status_text(code)}</{d}:status>{error}</{d}:response>")

    def multistatus_xml(self, responses: Iterable[str], extra: str = "") -> bytes:
        """The 207 body: the responses, then anything that follows them (e.g. a DAV:sync-token)."""
        return "".join((self._open, *responses, extra, self._close)).encode("utf-8")

    def _qualified(self, clark: str) -> tuple[str, str]:
        """(prefixed name, namespace declaration it needs) for a Clark name; known namespaces use the root's."""
        known = self._names.get(clark)
        if known is not None:
            return known
        if not clark.startswith("{"):
            return clark, ""  # no namespace: the root declares no default namespace
        namespace, _, local = clark[1:].partition("}")
        prefix = self.prefixes.get(namespace)
        if prefix is not None:
            found = f"{prefix}:{local}", ""
        else:
            found = f"X:{local}", f' xmlns:X="{escape_attribute(namespace)}"'
        if len(self._names) < 1024:  # property names repeat; values a client invents need not be kept
            self._names[clark] = found
        return found

    def _attributes(self, attrib: Mapping[str, str]) -> str:
        """Attributes, each namespaced one under its own prefix (`xml:` is predeclared)."""
        parts = []
        for index, (key, value) in enumerate(attrib.items()):
            if key.startswith("{"):
                namespace, _, local = key[1:].partition("}")
                if namespace == XML_NAMESPACE:
                    key = f"xml:{local}"
                elif namespace in self.prefixes:
                    key = f"{self.prefixes[namespace]}:{local}"
                else:
                    parts.append(f' xmlns:A{index}="{escape_attribute(namespace)}"')
                    key = f"A{index}:{local}"
            parts.append(f' {key}="{escape_attribute(value)}"')
        return "".join(parts)


# Small answers (a PROPPATCH, a LOCK, a COPY's failed members) are built as ElementTrees.

def element(clark: str, text: str | None = None, children: Iterable[ET.Element] = ()) -> ET.Element:
    node = ET.Element(clark)
    if text is not None:
        node.text = text
    node.extend(children)
    return node


def status_line(code: int) -> ET.Element:
    return element(f"{{{DAV}}}status", status_text(code))


def response_element(href: str, by_status: Mapping[int, list[ET.Element]]) -> ET.Element:
    """One DAV:response: the href and a propstat per status that has properties, in status order."""
    node = element(f"{{{DAV}}}response", children=[element(f"{{{DAV}}}href", href)])
    node.extend(element(f"{{{DAV}}}propstat", children=[element(f"{{{DAV}}}prop", children=props), status_line(code)])
                for code, props in sorted(by_status.items()) if props)
    return node


def xml_response(root: ET.Element, status: int = 200, headers: dict | None = None) -> web.Response:
    return xml_bytes_response(ET.tostring(root, encoding="utf-8", xml_declaration=True), status, headers)


def xml_bytes_response(body: bytes, status: int = 207, headers: dict | None = None) -> web.Response:
    """An XML body already serialised (a multistatus_xml answer, 207 by default)."""
    return web.Response(body=body, status=status, content_type="application/xml", charset="utf-8",
                        headers=headers)


def multistatus(responses: Iterable[ET.Element]) -> web.Response:
    return xml_response(element(f"{{{DAV}}}multistatus", children=responses), status=207)
