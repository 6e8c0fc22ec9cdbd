"""The OCS envelope the Nextcloud apps parse: `{"ocs": {"meta": …, "data": …}}`, in JSON or XML.

v1 (`/ocs/v1.php/…`) says success with statuscode 100 and always carries
`totalitems`/`itemsperpage`; v2 says 200. JSON is sent when the query has
`format=json` or Accept asks for application/json, XML otherwise (the Android
share API reads XML). In XML a list becomes repeated `<element>` children.
"""
from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web

SUCCESS_CODE = {1: 100, 2: 200}


def api_version(request: web.Request) -> int:
    """1 or 2, from the route's `/ocs/v{n}.php/` prefix."""
    return 2 if request.path.startswith("/ocs/v2.php/") else 1


def wants_json(request: web.Request) -> bool:
    return request.query.get("format") == "json" or "application/json" in request.headers.get("Accept", "")


def ocs_response(request: web.Request, data: Any) -> web.Response:
    """A successful OCS answer carrying `data`, in the version and format the request asked for."""
    version = api_version(request)
    meta: dict[str, Any] = {"status": "ok", "statuscode": SUCCESS_CODE[version], "message": "OK"}
    if version == 1:
        meta.update(totalitems="", itemsperpage="")
    body = {"ocs": {"meta": meta, "data": data}}
    if wants_json(request):
        return web.json_response(body)
    return web.Response(body=_xml(body), content_type="text/xml", charset="utf-8")


def _xml(body: dict) -> bytes:
    root = ET.Element("ocs")
    for key, value in body["ocs"].items():
        _fill(ET.SubElement(root, key), value)
    return b'<?xml version="1.0"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _fill(ET.SubElement(element, "element"), item)
    elif isinstance(value, bool):
        element.text = "1" if value else ""
    elif value is not None:
        element.text = str(value)


def ocs_error(request: web.Request, statuscode: int, message: str) -> web.Response:
    """A failed OCS answer: v1 always says HTTP 200 (the code is in meta), v2 passes a 4xx code through
    and answers 400 for codes outside HTTP's range, as Nextcloud does."""
    version = api_version(request)
    meta: dict[str, Any] = {"status": "failure", "statuscode": statuscode, "message": message}
    if version == 1:
        meta.update(totalitems="", itemsperpage="")
    http_status = 200 if version == 1 else (statuscode if 400 <= statuscode < 600 else 400)
    body = {"ocs": {"meta": meta, "data": []}}
    if wants_json(request):
        return web.json_response(body, status=http_status)
    return web.Response(body=_xml(body), status=http_status, content_type="text/xml", charset="utf-8")
