"""Errors that know how they look to the user.

HTTP handlers raise `HTTPError` subclasses; one middleware (core.http) turns
them into responses. Commands raise `CommandError`; the CLI turns it into one
line on stderr and an exit code.
"""
from .exitcodes import ExitStatus


class CommandError(Exception):
    """A command failed in a way the user can act on: one line, one exit code."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.ERROR):
        super().__init__(message)
        self.status = status


class ConfigError(CommandError):
    """The config file or environment is wrong: exit code 2, one line naming where."""

    def __init__(self, message: str):
        super().__init__(message, ExitStatus.CONFIG)


class HTTPError(Exception):
    """Base for errors that become an HTTP response with a reason."""

    status = 500
    code = "internal-error"

    def __init__(self, reason: str, *, headers: dict | None = None):
        super().__init__(reason)
        self.reason = reason
        self.headers = headers or {}


class BadRequest(HTTPError):
    status, code = 400, "bad-request"


class Unauthorized(HTTPError):
    status, code = 401, "unauthorized"

    def __init__(self, reason: str = "authentication required"):
        super().__init__(reason, headers={"WWW-Authenticate": 'Basic realm="hearth", charset="UTF-8"'})


class Forbidden(HTTPError):
    status, code = 403, "forbidden"


class NotFound(HTTPError):
    status, code = 404, "not-found"


class Conflict(HTTPError):
    status, code = 409, "conflict"


class RequestTimeout(HTTPError):
    status, code = 408, "request-timeout"


class PayloadTooLarge(HTTPError):
    status, code = 413, "payload-too-large"


class TooManyRequests(HTTPError):
    status, code = 429, "too-many-requests"

    def __init__(self, reason: str, retry_after: int):
        super().__init__(reason, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = retry_after


class BadGateway(HTTPError):
    """502: the front end could not get an answer from the service behind it; a WebDAV Destination on
    another server (RFC 4918 §9.8.5)."""

    status, code = 502, "bad-gateway"


class ServiceUnavailable(HTTPError):
    status, code = 503, "unavailable"


class StoreUnavailable(ServiceUnavailable):
    """The blob store cannot be used now (endpoint down, bucket missing, credentials refused): one line
    saying which, never a credential."""

    code = "store-unavailable"


class GatewayTimeout(HTTPError):
    """The service behind the front end stayed silent longer than [front] idle_timeout."""

    status, code = 504, "gateway-timeout"


class MethodNotAllowed(HTTPError):
    status, code = 405, "method-not-allowed"


class PreconditionFailed(HTTPError):
    """412: If, If-Match, If-None-Match, If-Unmodified-Since or Overwrite: F did not hold; nothing changed."""

    status, code = 412, "precondition-failed"


class UnsupportedMediaType(HTTPError):
    status, code = 415, "unsupported-media-type"


class RangeNotSatisfiable(HTTPError):
    status, code = 416, "range-not-satisfiable"

    def __init__(self, size: int):
        super().__init__(f"the range asked for is outside the file's {size} bytes",
                         headers={"Content-Range": f"bytes */{size}"})


class Precondition(HTTPError):
    """A WebDAV precondition failed (RFC 4918 §16): `element`, in `namespace`, names it in the DAV:error
    body the DAV and files daemons answer with; `href` names the resource involved, if any."""

    status, code = 403, "precondition"

    def __init__(self, namespace: str, element: str, reason: str, *, status: int = 403,
                 href: str | None = None):
        super().__init__(f"{element}: {reason}")
        self.namespace, self.element, self.status = namespace, element, status
        self.code = element
        self.href = href
