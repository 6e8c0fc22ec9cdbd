"""WebDAV XML: the DAV: namespace and request bodies read with services/core/safexml.py (no DTD, no
entity expansion). Answers are built with services/core/multistatus.py, shared with the DAV daemon.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from aiohttp import web

from services.core import safexml

from .errors import DAV

OC = "http://owncloud.org/ns"
NC = "http://nextcloud.org/ns"
# The prefixes propfind.py writes, for properties stored as elements too: the iOS app finds nc:creation_time
# by that literal name.
ET.register_namespace("d", DAV)
ET.register_namespace("oc", OC)
ET.register_namespace("nc", NC)
MAX_XML_BODY = 1024 * 1024  # PROPFIND/PROPPATCH/LOCK bodies are small; dead properties are capped by it


def dav(name: str) -> str:
    """Clark notation of a DAV: element, as ElementTree names it."""
    return f"{{{DAV}}}{name}"


async def read_xml(request: web.Request) -> ET.Element | None:
    return await safexml.read_xml(request, MAX_XML_BODY)
