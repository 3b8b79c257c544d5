"""The errors a request ends with (sans-I/O): an HTTP error status, or no answer at all.

:func:`status_failure` turns an answer of 3xx, 4xx or 5xx into the right exception of
the tree (:func:`~timbal_integrations.errors.status_error`), with the server's own
explanation (:func:`server_message`: one line, bounded, safe for a terminal) and the
redirect's ``Location`` (redirects are reported, never followed).
:func:`transport_failure` words a request that got no answer after its attempts: a
timeout (of one phase, or of the request's total deadline) or a dropped connection. The
key is redacted from every text taken from elsewhere.
"""

from __future__ import annotations

import httpx
import orjson

from ..errors import APIConnectionError, APIStatusError, APITimeoutError, status_error
from ..redact import redact
from ..retry import parse_retry_after
from ..sanitize import terminal_safe
from ._body import Reply

__all__ = ["server_message", "status_failure", "transport_failure"]


def server_message(response: Reply) -> str:
    """The server's own explanation of an error, on one line, bounded, and with no
    control character left to act on a terminal."""
    body = response.content
    text = ""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "detail", "error", "error_description"):
            value = data.get(key)
            if isinstance(value, str) and value:
                text = value
                break
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                text = value["message"]
                break
    if not text and body:
        raw = body[:2000].decode("utf-8", "replace")
        lowered = raw.lower()
        if "<title>" in lowered:
            start = lowered.index("<title>") + 7
            end = lowered.find("</title>", start)
            text = raw[start : end if end > 0 else start + 200]
        elif "<html" not in lowered and "<!doctype" not in lowered:
            text = raw
        else:
            text = "an HTML error page"
    text = terminal_safe(" ".join(text.split()))
    return text[:300] + ("..." if len(text) > 300 else "")


def status_failure(
    response: Reply, path: str, secret: str, run_id: str | None = None
) -> APIStatusError:
    """The exception of an answer whose status is 300 or more (``secret`` is redacted
    from its text; ``run_id``: the run the request was about, for a 404)."""
    location = response.headers.get("location")  # redirects are not followed
    redirect = response.status_code < 400 and bool(location)
    return status_error(
        response.status_code,
        method="GET",
        path=path,
        server_message="" if redirect else server_message(response),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        secret=secret,
        location=location if redirect else None,
        run_id=run_id,
    )


def _phase_timeout(error: httpx.TimeoutException, timeout: httpx.Timeout, total: float) -> float:
    """The timeout of the phase that ran out."""
    phase = {
        httpx.ConnectTimeout: timeout.connect,
        httpx.WriteTimeout: timeout.write,
        httpx.PoolTimeout: timeout.pool,
    }.get(type(error), timeout.read)
    return phase if phase is not None else total


def transport_failure(
    error: Exception,
    path: str,
    attempts: int,
    *,
    base_url: str,
    secret: str,
    timeout: httpx.Timeout,
    total: float | None,
    deadline: bool = False,
) -> APIConnectionError:
    """The error raised when no HTTP answer came (``secret`` redacted from its text).

    ``timeout`` and ``total`` are the client's (per phase, and the total deadline of a
    request); ``deadline``: the last attempt ran out of its total deadline (rather than
    one phase timing out on its own).
    """
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    detail = terminal_safe(redact(str(error), secret)) or type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        if deadline and total is not None:
            return APITimeoutError(
                f"GET {path} timed out {tries} (the timeout is {total:g}s per "
                "request in all, its total deadline: connecting, sending and reading the "
                "whole response; the last attempt ran out of it): is "
                f"{base_url} reachable, and answering promptly?",
                path=path,
                seconds=total,
                deadline=True,
            )
        seconds = _phase_timeout(error, timeout, total or 0.0)
        return APITimeoutError(
            f"GET {path} timed out {tries} ({type(error).__name__}; the timeout is "
            f"{seconds:g}s): is {base_url} reachable?",
            path=path,
            seconds=seconds,
        )
    return APIConnectionError(
        f"GET {path} could not complete {tries}: {detail} (is {base_url} reachable?)",
        path=path,
    )
