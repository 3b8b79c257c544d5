"""timbal-integrations: Timbal run history in Python programs, Airflow and AI assistants.

>>> from timbal_integrations import TimbalClient
>>> with TimbalClient() as client:  # doctest: +SKIP
...     for run in client.list_runs(status="error", since="24h"):
...         print(run.id, run.user.email, run.cost_usd)

Importing this package never imports Airflow or pyarrow.
"""

from ._version import __version__
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
    PaginationLoopError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    TimbalError,
)
from .models import KNOWN_STATUSES, RECORD_FIELDS, Run, RunDetail, RunsPage, UserRef, Workforce
from .query import FILTER_NAMES, RunQuery, parse_time
from .retry import RetryPolicy

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
    "ClientConfig",
    "ConfigError",
    "ExportError",
    "NotFoundError",
    "PaginationLoopError",
    "PermissionDeniedError",
    "QueryError",
    "RateLimitError",
    "ResponseValidationError",
    "RetryPolicy",
    "Run",
    "RunDetail",
    "RunQuery",
    "RunsPage",
    "Secret",
    "ServerError",
    "TimbalClient",
    "TimbalError",
    "UserRef",
    "Workforce",
    "__version__",
    "parse_time",
]
