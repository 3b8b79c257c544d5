"""How an error reads, for each audience: the one place messages are worded.

The core raises errors that carry data (a :class:`~timbal_integrations.errors.QueryError`
its ``field`` and ``reason``, a :class:`~timbal_integrations.errors.ConfigError` its
``variable``, ``argument`` and ``reason``, a status error the settings to ``check``...).
:func:`describe` turns one into a sentence for an audience:

``"terminal"``
    ``timbal-runs`` and the library itself (an error's ``str()`` is this wording with the
    core's own names): ``since: 'x' is not an ISO 8601 time...``
``"assistant"``
    the MCP tools: what went wrong and what the model (or its user) should do next:
    ``invalid `since`: ...``, ``the server is not configured: ...``
``"orchestrator"``
    an orchestrator's task logs and run failures (Airflow, Dagster, Prefect): the
    terminal's sentences, in the front end's terms (a connection's fields, a resource's
    or a block's). ``"airflow"`` is the same audience under its first name.

``names`` maps the core's names of settings to the front end's own, so that a hint names
what the user actually sets: the variables (``TIMBAL_API_KEY``, ``TIMBAL_API_HOST``,
``TIMBAL_ORG_ID``, ``TIMBAL_PROJECT_ID``), the library arguments (``api_key``, ``host``,
``org_id``, ``project_id``, ``timeout``...), the filter fields (``since``, ``user_id``...)
and ``run_id``. A name mapped to ``""`` is a setting the front end does not have: the
sentence leaves it out. Unmapped names are the core's own (an argument reads
``api_key=...`` where it is something to pass)::

    describe(error, "terminal", names={"api_key": "--api-key", "since": "--since"})
    describe(error, "orchestrator", names={"TIMBAL_API_KEY": "the password of connection 'c'"})
    describe(error, "orchestrator", names={"TIMBAL_ORG_ID": "TimbalResource.org_id"})

``secret`` (the API key in use, when the front end knows it) is redacted from the message
in every form a server may echo it (:func:`~timbal_integrations.redact.redact`): errors
built by the core are redacted already; this also covers any other exception's text.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from typing import Final, Literal, TypeVar

from .errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    SyncMismatchError,
    SyncStateError,
    TimbalError,
)
from .redact import redact

__all__ = ["AUDIENCES", "Audience", "Names", "describe", "restate"]

Audience = Literal["terminal", "assistant", "orchestrator", "airflow"]
"""Who reads the message: a person at a terminal, an AI assistant, an orchestrator's task
log (``"airflow"`` is ``"orchestrator"``)."""

AUDIENCES: Final[tuple[Audience, ...]] = ("terminal", "assistant", "orchestrator", "airflow")

Names = Mapping[str, str]
"""The core's names of settings mapped to a front end's own."""

_WHERE_TO_GET: Final = {"TIMBAL_API_KEY": "get one from the Timbal platform settings"}
# How hints name the run asked for, by default (a front end's names take precedence).
_DEFAULT_NAMES: Final[dict[Audience, dict[str, str]]] = {
    "terminal": {"run_id": "the run id (or idempotency key)", "full_refresh": "full_refresh=True"},
    "airflow": {"run_id": "the run id (or idempotency key)", "full_refresh": "full_refresh=True"},
    "assistant": {"run_id": "the id (list_runs shows run ids)", "full_refresh": "full_refresh"},
    "orchestrator": {
        "run_id": "the run id (or idempotency key)",
        "full_refresh": "full_refresh=True",
    },
}

E = TypeVar("E", bound=BaseException)


def describe(
    exc: BaseException,
    audience: Audience,
    *,
    names: Names | None = None,
    secret: str | None = None,
) -> str:
    """The message of ``exc`` for ``audience``, naming settings as ``names`` says, with
    ``secret`` (the API key) redacted.

    Any exception is accepted: one that is not a :class:`TimbalError` reads as its own
    message (an ``OSError`` as its reason and file name), or, for the assistant, as an
    internal error of the server.
    """
    if audience not in AUDIENCES:
        raise ValueError(f"audience: {audience!r} is not one of {', '.join(AUDIENCES)}")
    words = _Words(audience, names)
    text = _for_assistant(exc, words) if audience == "assistant" else _for_people(exc, words)
    return redact(text, secret)


def restate(
    exc: E, audience: Audience, *, names: Names | None = None, secret: str | None = None
) -> E:
    """``exc`` itself, its message now :func:`describe`'s for ``audience``.

    For a front end that lets the core's errors reach its users as they are (the
    Airflow hook's callers catch ``ConfigError``): the class and every attribute stay.
    """
    exc.args = (describe(exc, audience, names=names, secret=secret),)
    return exc


class _Words:
    """Names for one audience and front end."""

    def __init__(self, audience: Audience, names: Names | None) -> None:
        self.audience = audience
        self.names: Mapping[str, str] = names or {}
        self.hints = {**_DEFAULT_NAMES[audience], **self.names}

    def name(self, key: str) -> str:
        """What the front end calls ``key`` (a setting, an argument, a field)."""
        return self.names.get(key) or key

    def action(self, argument: str) -> str | None:
        """How to pass library argument ``argument`` here, or None when one cannot."""
        if argument in self.names:
            return self.names[argument] or None
        return f"{argument}=..."

    def settings(self, keys: Sequence[str]) -> str:
        """The settings a hint asks to check: ``A``, ``A and B``, ``A, B and C`` (leaving
        out what the front end lacks)."""
        shown = [self.hints.get(key, key) for key in keys]
        shown = [name for name in shown if name]
        if len(shown) <= 1:
            return "".join(shown)
        return ", ".join(shown[:-1]) + " and " + shown[-1]


# --------------------------------------------------------------------------- shared


def _config(exc: ConfigError, words: _Words) -> str:
    """``no API key: set TIMBAL_API_KEY (or pass api_key=...); get one ...`` or
    ``TIMBAL_API_HOST: 'x' has no host name``."""
    if exc.missing:
        steps = []
        if exc.variable is not None:
            steps.append(f"set {words.name(exc.variable)}")
        passing = words.action(exc.argument) if exc.argument is not None else None
        if passing is not None:
            steps.append(f"(or pass {passing})" if steps else f"pass {passing}")
        text = f"{exc.reason}: {' '.join(steps)}" if steps else exc.reason
        where = _WHERE_TO_GET.get(exc.variable or "")
        return f"{text}; {where}" if where else text
    subject = exc.variable or exc.argument
    return f"{words.name(subject)}: {exc.reason}" if subject else exc.reason


def _said(exc: APIStatusError, words: _Words) -> str:
    """What the server said, or where it redirected to."""
    if exc.location is not None and 300 <= exc.status_code < 400:
        return f"redirected to {exc.location[:200]}; point {words.name('TIMBAL_API_HOST')} there"
    return exc.server_message


def _checks(exc: APIStatusError, words: _Words) -> str:
    listed = words.settings(exc.check)
    return f"check {listed}" if listed else ""


def _sync(exc: SyncMismatchError | SyncStateError, words: _Words) -> str:
    """A sync that cannot go on: what differs or is wrong, and the way out."""
    rebuild = words.hints["full_refresh"]
    if isinstance(exc, SyncMismatchError):
        name = words.name(exc.field)
        if exc.stored is None:
            synced, again = f"without {name}", "without it"
        elif exc.given is None:
            synced, again = f"with {name} {exc.stored!r}", f"with the same {name}"
        else:
            synced, again = f"with {exc.stored!r}, not {exc.given!r}", f"with the same {name}"
        return (
            f"{name}: the dataset in {exc.path} was synced {synced}; sync {again}, or with "
            f"{rebuild} to start over"
        )
    if not exc.rebuild:
        return exc.reason
    return f"{exc.reason}; sync with {rebuild} to rebuild the dataset"


# --------------------------------------------------------------------------- people


def _hint(exc: APIStatusError, words: _Words) -> str:
    """The parenthesised hint of a status error's message."""
    check = _checks(exc, words)
    if isinstance(exc, AuthenticationError):
        return f"the API key was rejected — {check}"
    if isinstance(exc, PermissionDeniedError):
        return f"the key cannot access this org/project — {check}"
    if isinstance(exc, NotFoundError):
        return f"not found — {check}"
    if isinstance(exc, RateLimitError):
        return (
            "rate limited by the API even after retrying — wait and try again, or narrow the query"
        )
    if isinstance(exc, ServerError):
        return "the Timbal API failed even after retrying — try again later"
    return check


def _for_people(exc: BaseException, words: _Words) -> str:
    """The terminal's and the orchestrators' wording: the error as the library states it."""
    if isinstance(exc, (SyncMismatchError, SyncStateError)):
        return _sync(exc, words)
    if isinstance(exc, QueryError):
        return f"{words.name(exc.field)}: {exc.reason}"
    if isinstance(exc, ConfigError):
        return _config(exc, words)
    if isinstance(exc, APIStatusError):
        message = f"{exc.status_code} {exc.reason_phrase} from {exc.method} {exc.path}"
        said = _said(exc, words)
        if said:
            message += f": {said}"
        hint = _hint(exc, words)
        return f"{message} ({hint})" if hint else message
    if isinstance(exc, OSError) and not isinstance(exc, TimbalError):
        reason = exc.strerror or str(exc) or errno.errorcode.get(exc.errno or 0, "")
        return f"{reason}: {exc.filename}" if exc.filename else reason
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- assistants


def _status(exc: APIStatusError, words: _Words) -> str:
    """`` (HTTP 401; the API said: ...)``: the status and the server's own words."""
    said = _said(exc, words)
    return f" (HTTP {exc.status_code}{f'; the API said: {said}' if said else ''})"


def _for_assistant(exc: BaseException, words: _Words) -> str:
    """What went wrong and what to do next, for a model (one line, no traceback)."""
    if isinstance(exc, (SyncMismatchError, SyncStateError)):
        return _sync(exc, words)
    if isinstance(exc, QueryError):
        return f"invalid `{words.name(exc.field)}`: {exc.reason}"
    if isinstance(exc, ConfigError):
        return (
            f"the server is not configured: {_config(exc, words)}. Set it in the env "
            "section of this MCP server's configuration and restart the server."
        )
    if isinstance(exc, APIStatusError):
        return _status_for_assistant(exc, words) + _status(exc, words) + "."
    if isinstance(exc, APIConnectionError):
        return f"could not reach the Timbal API: {exc}"
    if isinstance(exc, ResponseValidationError):
        return f"the Timbal API sent an unexpected response: {exc}"
    if isinstance(exc, TimbalError):
        return str(exc)
    return (
        f"internal error ({type(exc).__name__}); this is a bug in timbal-mcp, "
        "and the server's log has the details."
    )


def _status_for_assistant(exc: APIStatusError, words: _Words) -> str:
    check = _checks(exc, words)
    if isinstance(exc, AuthenticationError):
        return f"the API key was rejected — {check}"
    if isinstance(exc, PermissionDeniedError):
        return f"the API key may not read this organisation or project — {check}"
    if isinstance(exc, NotFoundError):
        if exc.run_id is not None:
            return f"no run with id or idempotency key {exc.run_id!r} in this project — {check}"
        return f"not found — {check}"
    if isinstance(exc, RateLimitError):
        wait = f"wait {exc.retry_after:g}s and " if exc.retry_after else "wait a little and "
        return (
            f"rate limited by the Timbal API even after retrying — {wait}try again, "
            "or narrow the query (a shorter since/until window)"
        )
    if isinstance(exc, ServerError):
        return "the Timbal API failed even after retrying — try again later"
    if isinstance(exc, BadRequestError):
        return "the Timbal API rejected the query — check the filter values"
    return "the Timbal API answered with an error"
