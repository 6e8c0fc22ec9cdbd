"""/api/v1/me/addresses and /api/v1/users/{name}/addresses: the email addresses a member is invited by.

The same rules as `hearth user email` (services/core/addresses.py): an address belongs to one user only
(409 otherwise), NAME@[dav] mail_domain is every user's and cannot be removed. A user manages their own;
an admin anyone's.
"""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.core import accounts, addresses
from services.core.auth import require_user
from services.core.errors import NotFound
from services.core.http import CONFIG, DATABASE, read_json
from services.core.routing import Route, respond


class Address(BaseModel):
    address: str = Field(description="in the form compared: lower case, no mailto:")
    default: bool = Field(description="NAME@[dav] mail_domain, which every user has and cannot remove")


class NewAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=3, max_length=addresses.MAX_ADDRESS_LENGTH + 20,
                         description="an email address or mailto: URI, e.g. bob@example.org")


async def _named_user(request: web.Request) -> str:
    name = request.match_info["name"]
    user = await request.app[DATABASE].read(lambda db: accounts.get_user(db, name))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user["name"]


async def list_my_addresses(request: web.Request) -> web.Response:
    return await _list(request, (await require_user(request)).user)


async def add_my_address(request: web.Request) -> web.Response:
    return await _add(request, (await require_user(request)).user)


async def remove_my_address(request: web.Request) -> web.Response:
    return await _remove(request, (await require_user(request)).user)


async def list_user_addresses(request: web.Request) -> web.Response:
    return await _list(request, await _named_user(request))


async def add_user_address(request: web.Request) -> web.Response:
    return await _add(request, await _named_user(request))


async def remove_user_address(request: web.Request) -> web.Response:
    return await _remove(request, await _named_user(request))


async def _list(request: web.Request, user: str) -> web.Response:
    domain = request.app[CONFIG].dav.mail_domain
    rows = await request.app[DATABASE].read(lambda db: addresses.addresses_of(db, user, domain))
    default = addresses.default_address(user, domain)
    return respond([Address(address=address, default=address == default) for address in rows])


async def _add(request: web.Request, user: str) -> web.Response:
    domain = request.app[CONFIG].dav.mail_domain
    body = await read_json(request, NewAddress)
    address, new = await request.app[DATABASE].write(lambda db: addresses.add_address(db, user, body.address, domain))
    return respond(Address(address=address, default=address == addresses.default_address(user, domain)),
                   status=201 if new else 200)


async def _remove(request: web.Request, user: str) -> web.Response:
    domain, text = request.app[CONFIG].dav.mail_domain, request.match_info["address"]
    await request.app[DATABASE].write(lambda db: addresses.remove_address(db, user, text, domain))
    return web.Response(status=204)


_ADDRESS = {"address": {"type": "string", "description": "the address, e.g. bob@example.org"}}
_USER = {"name": {"type": "string", "description": "the user name"}}

ROUTES = (
    Route("GET", "/api/v1/me/addresses", list_my_addresses, "Your email addresses (invitations to any reach you)",
          tag="me", response=Address, many=True),
    Route("POST", "/api/v1/me/addresses", add_my_address, "Add an email address (200 if it is yours already)",
          tag="me", body=NewAddress, response=Address, status=201, errors=(409,)),
    Route("DELETE", "/api/v1/me/addresses/{address}", remove_my_address, "Remove one of your email addresses",
          tag="me", status=204, errors=(404,), path_params=_ADDRESS),
    Route("GET", "/api/v1/users/{name}/addresses", list_user_addresses, "A user's email addresses", tag="users",
          access="admin", response=Address, many=True, errors=(404,), path_params=_USER),
    Route("POST", "/api/v1/users/{name}/addresses", add_user_address, "Add an email address to a user", tag="users",
          access="admin", body=NewAddress, response=Address, status=201, errors=(404, 409), path_params=_USER),
    Route("DELETE", "/api/v1/users/{name}/addresses/{address}", remove_user_address,
          "Remove one of a user's email addresses", tag="users", access="admin", status=204, errors=(404,),
          path_params={**_USER, **_ADDRESS}),
)
