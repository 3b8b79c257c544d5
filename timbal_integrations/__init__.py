"""timbal-integrations: Timbal run history in Python programs, Airflow and AI assistants.

>>> from timbal_integrations import TimbalClient
>>> with TimbalClient() as client:  # doctest: +SKIP
...     for run in client.list_runs(status="error", since="24h"):
...         print(run.id, run.user.email, run.cost_usd)

Importing this package is cheap: each name is imported on first use (so ``timbal-runs
--help`` and ``timbal_integrations._version`` do not pay for httpx and pydantic), and
Airflow and pyarrow are never imported.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_names as _lazy_names
from ._version import __version__

if TYPE_CHECKING:
    from .client import AsyncTimbalClient, TimbalClient
    from .config import ClientConfig, Secret
    from .errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConfigError,
        ExportError,
        NotFoundError,
        PaginationLimitError,
        PaginationLoopError,
        PermissionDeniedError,
        QueryError,
        RateLimitError,
        ResponseTooLargeError,
        ResponseValidationError,
        ServerError,
        TimbalError,
    )
    from .export.records import RECORD_FIELDS
    from .limits import Bounds
    from .models import (
        KNOWN_STATUSES,
        Reaction,
        ReactionsPage,
        Run,
        RunDetail,
        RunsPage,
        UserRef,
        Workforce,
    )
    from .query import FILTER_NAMES, RunQuery, parse_time
    from .retry import RetryPolicy
    from .summary import summarize
    from .trace import RunStatus, Span, SpanError, Trace, parse_trace

__all__ = [
    "FILTER_NAMES",
    "KNOWN_STATUSES",
    "RECORD_FIELDS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncTimbalClient",
    "AuthenticationError",
    "BadRequestError",
    "Bounds",
    "ClientConfig",
    "ConfigError",
    "ExportError",
    "NotFoundError",
    "PaginationLimitError",
    "PaginationLoopError",
    "PermissionDeniedError",
    "QueryError",
    "RateLimitError",
    "Reaction",
    "ReactionsPage",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "RetryPolicy",
    "Run",
    "RunDetail",
    "RunQuery",
    "RunStatus",
    "RunsPage",
    "Secret",
    "ServerError",
    "Span",
    "SpanError",
    "TimbalClient",
    "TimbalError",
    "Trace",
    "UserRef",
    "Workforce",
    "__version__",
    "parse_time",
    "parse_trace",
    "summarize",
]

_LAZY: dict[str, str] = {
    "APIConnectionError": "errors",
    "APIStatusError": "errors",
    "APITimeoutError": "errors",
    "AsyncTimbalClient": "client",
    "AuthenticationError": "errors",
    "BadRequestError": "errors",
    "Bounds": "limits",
    "ClientConfig": "config",
    "ConfigError": "errors",
    "ExportError": "errors",
    "FILTER_NAMES": "query",
    "KNOWN_STATUSES": "models",
    "NotFoundError": "errors",
    "PaginationLimitError": "errors",
    "PaginationLoopError": "errors",
    "PermissionDeniedError": "errors",
    "QueryError": "errors",
    "RECORD_FIELDS": "export.records",  # no pydantic models, no pyarrow
    "RateLimitError": "errors",
    "Reaction": "models",
    "ReactionsPage": "models",
    "ResponseTooLargeError": "errors",
    "ResponseValidationError": "errors",
    "RetryPolicy": "retry",
    "Run": "models",
    "RunDetail": "models",
    "RunQuery": "query",
    "RunStatus": "trace",
    "RunsPage": "models",
    "Secret": "config",
    "ServerError": "errors",
    "Span": "trace",
    "SpanError": "trace",
    "TimbalClient": "client",
    "TimbalError": "errors",
    "Trace": "trace",
    "UserRef": "models",
    "Workforce": "models",
    "parse_time": "query",
    "parse_trace": "trace",
    "summarize": "summary",
}


__getattr__, __dir__ = _lazy_names(__name__, _LAZY, __all__)
