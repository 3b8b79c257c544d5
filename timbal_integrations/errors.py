"""The one exception tree of timbal-integrations.

Every error the library raises on purpose is a :class:`TimbalError`::

    TimbalError
    ├── ConfigError                  missing or malformed configuration (names the variable)
    ├── QueryError (ValueError)      a bad filter value (names the field and what was expected)
    ├── ExportError                  a file export could not be written or resumed
    ├── APIConnectionError           the request never got an HTTP answer (after retries)
    │   └── APITimeoutError          ... because it timed out
    ├── APIStatusError               the API answered with an error status (after retries)
    │   ├── BadRequestError          400 / 422
    │   ├── AuthenticationError      401
    │   ├── PermissionDeniedError    403
    │   ├── NotFoundError            404
    │   ├── RateLimitError           429 (``retry_after`` in seconds, when the server said)
    │   └── ServerError              5xx
    └── ResponseValidationError      a 2xx body that is not what the API spec promises
        └── PaginationLoopError      the server handed back a page token it had already given

Messages carry the HTTP status, the server's own message and the request path. They
never carry the API key: :func:`status_error` scrubs it from anything the server echoes.
"""

from __future__ import annotations

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ExportError",
    "NotFoundError",
    "PaginationLoopError",
    "PermissionDeniedError",
    "QueryError",
    "RateLimitError",
    "ResponseValidationError",
    "ServerError",
    "TimbalError",
    "status_error",
]


class TimbalError(Exception):
    """Base class of every error raised by timbal-integrations."""


class ConfigError(TimbalError):
    """Configuration is missing or malformed; the message names what to set."""


class QueryError(TimbalError, ValueError):
    """A filter value is invalid; the message names the field and what was expected."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class ExportError(TimbalError):
    """An export could not be written, finished or resumed."""


class APIConnectionError(TimbalError):
    """No HTTP response was received (connection refused, dropped, DNS, TLS...)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIStatusError(TimbalError):
    """The API answered with an error status."""

    hint = ""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        path: str,
        server_message: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.path = path
        self.server_message = server_message
        self.retry_after = retry_after
        super().__init__(message)


class BadRequestError(APIStatusError):
    """400 or 422: the API rejected the request's parameters."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or was rejected."""

    hint = "the API key was rejected — check TIMBAL_API_KEY"


class PermissionDeniedError(APIStatusError):
    """403: the key may not see this organisation or project."""

    hint = "the key cannot access this org/project — check TIMBAL_ORG_ID and TIMBAL_PROJECT_ID"


class NotFoundError(APIStatusError):
    """404: no such run (or org/project)."""

    hint = "not found — check the run id (or idempotency key), TIMBAL_ORG_ID and TIMBAL_PROJECT_ID"


class RateLimitError(APIStatusError):
    """429: rate limited, and still so after every retry."""

    hint = "rate limited by the API even after retrying — wait and try again, or narrow the query"


class ServerError(APIStatusError):
    """5xx: the API failed, and still did after every retry."""

    hint = "the Timbal API failed even after retrying — try again later"


class ResponseValidationError(TimbalError):
    """A successful response whose body does not match the API's schema."""


class PaginationLoopError(ResponseValidationError):
    """The server returned a page token it had already returned: following it would loop."""


_REASONS = {
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _class_for(status_code: int) -> type[APIStatusError]:
    if status_code in (400, 422):
        return BadRequestError
    if status_code == 401:
        return AuthenticationError
    if status_code == 403:
        return PermissionDeniedError
    if status_code == 404:
        return NotFoundError
    if status_code == 429:
        return RateLimitError
    if status_code >= 500:
        return ServerError
    return APIStatusError


def status_error(
    status_code: int,
    *,
    method: str,
    path: str,
    server_message: str = "",
    retry_after: float | None = None,
    secret: str | None = None,
) -> APIStatusError:
    """Build the exception for an HTTP error status: the one place status maps to class.

    ``secret`` (the API key) is scrubbed from the server's message and the path.
    """
    if secret:
        server_message = server_message.replace(secret, "***")
        path = path.replace(secret, "***")
    cls = _class_for(status_code)
    reason = _REASONS.get(status_code, "HTTP error")
    message = f"{status_code} {reason} from {method} {path}"
    if server_message:
        message += f": {server_message}"
    if cls.hint:
        message += f" ({cls.hint})"
    return cls(
        message,
        status_code=status_code,
        path=path,
        server_message=server_message,
        retry_after=retry_after,
    )
