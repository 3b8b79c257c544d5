"""What an answer's ``RateLimit-*`` headers say (sans-I/O).

The API announces its rate limit with the IETF draft headers ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset``; :func:`rate_limit_info` reads them into
a :class:`~timbal_integrations.pacing.RateLimitInfo` for the client's
:class:`~timbal_integrations.pacing.Pacer`, tolerating the forms servers send (a list,
``100, 100;w=60``, whose first number counts; a reset as a point in time).
"""

from __future__ import annotations

import re
import time

import httpx

from ..pacing import RateLimitInfo
from ._body import Reply

__all__ = ["rate_limit_info"]

_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)")
_EPOCH_SECONDS = 1e9  # a Reset this large is a point in time, not a number of seconds


def _header_number(response: Reply | httpx.Response, name: str) -> float | None:
    """The leading number of a header (``100`` in ``100, 100;w=60``), or None."""
    value = response.headers.get(name)
    match = _NUMBER.match(value) if value else None
    return float(match.group(1)) if match else None


def rate_limit_info(response: Reply | httpx.Response) -> RateLimitInfo | None:
    """What a response's ``RateLimit-Limit``/``-Remaining``/``-Reset`` headers say
    (None when it sent none of them)."""
    limit = _header_number(response, "ratelimit-limit")
    remaining = _header_number(response, "ratelimit-remaining")
    reset = _header_number(response, "ratelimit-reset")
    if limit is None and remaining is None and reset is None:
        return None
    if reset is not None and reset > _EPOCH_SECONDS:
        reset = max(0.0, reset - time.time())
    return RateLimitInfo(
        None if limit is None else int(limit),
        None if remaining is None else int(remaining),
        reset,
    )
