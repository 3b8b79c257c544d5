"""The one exception tree of timbal-integrations.

Every error the library raises on purpose is a :class:`TimbalError`::

    TimbalError
    ├── ConfigError                  missing or malformed configuration (names the variable)
    ├── QueryError (ValueError)      a bad filter value (names the field and what was expected)
    │   └── SyncMismatchError        a sync's setting differs from its dataset's
    ├── ExportError                  a file export could not be written or resumed
    │   └── SyncStateError           a synced dataset cannot be continued as it is
    ├── APIConnectionError           the request never got an HTTP answer (after retries)
    │   └── APITimeoutError          ... because it timed out (``deadline``: its total ran out)
    ├── APIStatusError               the API answered with an error status (after retries)
    │   ├── BadRequestError          400 / 422
    │   ├── AuthenticationError      401
    │   ├── PermissionDeniedError    403
    │   ├── NotFoundError            404
    │   ├── RateLimitError           429 (``retry_after`` in seconds, when the server said)
    │   └── ServerError              5xx
    └── ResponseValidationError      a 2xx body that is not what the API spec promises
        ├── ResponseTooLargeError    a body over the size cap (reading stopped there)
        ├── PaginationLoopError      the server handed back a page token it had already given
        └── PaginationLimitError     a page token too long, or pages that never end

Errors carry data, not just prose: a ``QueryError`` its ``field`` and ``reason``, a
``ConfigError`` its ``variable``/``argument`` and ``reason``, an ``APIStatusError`` its
``status_code``, ``path``, ``server_message`` and the settings to ``check``. Front ends
read those attributes; :func:`timbal_integrations.wording.describe` words a message
for each audience (their ``str()`` is the library's own wording). Messages never carry
the API key: :func:`status_error` redacts it (and the forms a server may echo: part of
it, base64, URL-encoded) from anything the server sends back
(:func:`timbal_integrations.redact.redact`).

Which errors are permanent (:data:`PERMANENT_ERRORS`, :func:`is_permanent`): the ones a
retry of the same task cannot fix, which the orchestrator front ends (Airflow, Dagster,
Prefect) fail at once instead of retrying. The client's own retries of one request are
decided elsewhere (:mod:`timbal_integrations.retry`), by status and transport error.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "PERMANENT_ERRORS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ExportError",
    "NotFoundError",
    "PaginationLimitError",
    "PaginationLoopError",
    "PermissionDeniedError",
    "QueryError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "ServerError",
    "SyncMismatchError",
    "SyncStateError",
    "TimbalError",
    "is_permanent",
    "status_error",
]


class TimbalError(Exception):
    """Base class of every error raised by timbal-integrations."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors carry data beyond their message: pickling keeps both (and never calls
        # __init__ again, whose signature differs per class).
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[TimbalError], args: tuple[Any, ...], state: dict[str, Any]) -> TimbalError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(TimbalError):
    """Configuration is missing or malformed.

    ``reason`` says what is wrong, without the setting's name; ``variable`` is the
    environment variable concerned (``TIMBAL_API_KEY``...), ``argument`` the library
    argument (``api_key``, ``host``, ``org_id``, ``project_id``, ``timeout``...);
    ``missing`` is True when the setting was not given at all. Front ends word the
    error in their own terms with :func:`timbal_integrations.wording.describe`.
    """

    def __init__(
        self,
        reason: str,
        *,
        variable: str | None = None,
        argument: str | None = None,
        missing: bool = False,
    ) -> None:
        self.reason = reason
        self.variable = variable
        self.argument = argument
        self.missing = missing
        super().__init__(_worded(self))


class QueryError(TimbalError, ValueError):
    """A filter value is invalid: ``field`` names it, ``reason`` says what was expected.

    The message is ``"field: reason"``.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class ExportError(TimbalError):
    """An export could not be written, finished or resumed.

    ``path`` is the file concerned, when one is; ``field`` the entry of a checkpoint
    found missing or malformed, when that was the problem.
    """

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None) -> None:
        self.path = path
        self.field = field
        super().__init__(message)


class SyncMismatchError(QueryError):
    """A sync was asked for with a setting other than the one its dataset was built with.

    ``field`` names the setting (a filter such as ``status``, ``format``, or the
    ``TIMBAL_API_HOST``/``TIMBAL_ORG_ID``/``TIMBAL_PROJECT_ID`` it reads), ``stored``
    and ``given`` are the two values (as the dataset's state writes them), ``path``
    the dataset. The way out is the same setting, or a full refresh (``full_refresh``,
    worded by each front end).
    """

    def __init__(self, field: str, *, stored: object, given: object, path: str) -> None:
        self.stored = stored
        self.given = given
        self.path = path
        super().__init__(field, f"the dataset in {path} was synced with {stored!r}, not {given!r}")
        self.args = (_worded(self),)  # the reason above, and the way out


class SyncStateError(ExportError):
    """A synced dataset cannot be continued as it is: its state or manifest is missing,
    damaged or out of step with its partitions, or another sync holds it.

    ``reason`` says what is wrong, ``path`` the file concerned, ``field`` the entry of
    a state or manifest that is malformed; ``rebuild`` is True when a full refresh
    (``full_refresh``, worded by each front end) is the way out.
    """

    def __init__(
        self, reason: str, *, path: str, field: str | None = None, rebuild: bool = True
    ) -> None:
        self.reason = reason
        self.rebuild = rebuild
        super().__init__(reason, path=path, field=field)
        self.args = (_worded(self),)


class APIConnectionError(TimbalError):
    """No HTTP response was received (connection refused, dropped, DNS, TLS...)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """The request timed out.

    ``seconds`` is the timeout that ran out; ``deadline`` is True when it was the
    request's total deadline (connecting, sending and reading the whole body), False when
    one phase timed out on its own.
    """

    def __init__(
        self, message: str, *, path: str = "", seconds: float | None = None, deadline: bool = False
    ) -> None:
        self.seconds = seconds
        self.deadline = deadline
        super().__init__(message, path=path)


class APIStatusError(TimbalError):
    """The API answered with an error status.

    ``check`` names the settings worth checking (core names such as
    ``TIMBAL_API_KEY``, or ``run_id``): the hint of the message, which each front end
    words with its own names through :func:`timbal_integrations.wording.describe`.
    ``location`` is where a (not followed) redirect pointed; ``run_id`` the run asked
    for, when the request was for one run. Without ``message``, the message is worded
    from these fields.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int,
        path: str,
        server_message: str = "",
        retry_after: float | None = None,
        method: str = "GET",
        location: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.path = path
        self.server_message = server_message
        self.retry_after = retry_after
        self.method = method
        self.location = location
        self.run_id = run_id
        super().__init__(_worded(self) if message is None else message)

    @property
    def reason_phrase(self) -> str:
        """The standard reason phrase of the status (``Unauthorized``...)."""
        return _REASONS.get(self.status_code, "HTTP error")

    @property
    def check(self) -> tuple[str, ...]:
        """The settings worth checking, by their core names (none by default)."""
        return ()


class BadRequestError(APIStatusError):
    """400 or 422: the API rejected the request's parameters."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or was rejected."""

    @property
    def check(self) -> tuple[str, ...]:
        """The API key."""
        return ("TIMBAL_API_KEY",)


class PermissionDeniedError(APIStatusError):
    """403: the key may not see this organisation or project."""

    @property
    def check(self) -> tuple[str, ...]:
        """The organisation and the project."""
        return ("TIMBAL_ORG_ID", "TIMBAL_PROJECT_ID")


class NotFoundError(APIStatusError):
    """404: no such run (or org/project)."""

    @property
    def check(self) -> tuple[str, ...]:
        """The run id (when one run was asked for), the organisation and the project
        (and the host, when no run was asked for)."""
        if self.run_id is not None:
            return ("run_id", "TIMBAL_ORG_ID", "TIMBAL_PROJECT_ID")
        return ("TIMBAL_ORG_ID", "TIMBAL_PROJECT_ID", "TIMBAL_API_HOST")


class RateLimitError(APIStatusError):
    """429: rate limited, and still so after every retry."""


class ServerError(APIStatusError):
    """5xx: the API failed, and still did after every retry."""


class ResponseValidationError(TimbalError):
    """A successful response whose body does not match the API's schema."""


class ResponseTooLargeError(ResponseValidationError):
    """A response body larger than the size cap: reading stopped at the cap.

    ``limit`` is the cap in bytes (of decoded body), ``path`` the request's path.
    """

    def __init__(self, message: str, *, path: str = "", limit: int = 0) -> None:
        self.path = path
        self.limit = limit
        super().__init__(message)


class PaginationLoopError(ResponseValidationError):
    """The server returned a page token it had already returned: following it would loop."""


class PaginationLimitError(ResponseValidationError):
    """The server's pagination went past a bound: a page token too long, too many empty
    pages in a row, or too many pages in one listing.

    ``setting`` names the bound (``max_page_token_chars``, ``max_empty_pages``,
    ``max_pages``: fields of :class:`~timbal_integrations.limits.Bounds`), ``limit`` its
    value.
    """

    def __init__(self, message: str, *, setting: str, limit: int) -> None:
        self.setting = setting
        self.limit = limit
        super().__init__(message)


PERMANENT_ERRORS: Final[tuple[type[TimbalError], ...]] = (
    ConfigError,
    QueryError,
    BadRequestError,
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
)
"""The errors that retrying the same task cannot fix: bad configuration or arguments,
and the API's refusals of them (400/422, 401, 403, 404). Everything else (rate limits
and server errors after the client's retries, connection failures, unexpected
responses, export errors such as a locked or unwritable file) may pass on a later try.
For ``except`` clauses; :func:`is_permanent` is the same as a predicate."""


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying the task that raised ``exc`` cannot help (see
    :data:`PERMANENT_ERRORS`): the one classification every orchestrator front end uses
    to fail at once rather than spend its retries."""
    return isinstance(exc, PERMANENT_ERRORS)


def _worded(error: TimbalError) -> str:
    """The library's own message of ``error`` (the terminal wording, default names)."""
    from .wording import describe  # wording reads this module's classes

    return describe(error, "terminal")


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
    location: str | None = None,
    run_id: str | None = None,
) -> APIStatusError:
    """Build the exception for an HTTP error status: the one place status maps to class.

    ``secret`` (the API key) is redacted from the server's message, the path and the
    redirect location, in every form a server may echo it
    (:func:`timbal_integrations.redact.redact`).
    """
    if secret:
        from .redact import redact

        server_message = redact(server_message, secret)
        path = redact(path, secret)
        if location is not None:
            location = redact(location, secret)
    return _class_for(status_code)(
        status_code=status_code,
        path=path,
        server_message=server_message,
        retry_after=retry_after,
        method=method,
        location=location,
        run_id=run_id,
    )
