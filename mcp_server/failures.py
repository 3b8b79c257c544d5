"""How the MCP server words a failure, for the tools, resources and prompts alike.

A failure is worded by the core for an assistant
(:func:`timbal_integrations.wording.describe`), in this server's names of its settings,
and redacted of the API key (:func:`timbal_integrations.redact.redact`), so a server
that echoes the key in an error cannot make this one repeat it. An unexpected failure
(not a :class:`~timbal_integrations.errors.TimbalError`) is also logged with its
traceback, the key redacted. Errors are read by their class and data, never by their
text.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING

from timbal_integrations.errors import TimbalError
from timbal_integrations.redact import redact
from timbal_integrations.wording import describe

from ._sdk import ToolFailure

if TYPE_CHECKING:
    from .settings import ServerSettings

__all__ = ["explain", "log_unexpected", "tool_failure"]

logger = logging.getLogger("mcp_server")


def explain(exc: BaseException, settings: ServerSettings, *, about: str | None = None) -> str:
    """``exc`` worded for an assistant in ``settings``' names (after ``about: `` when
    given), the API key redacted."""
    message = describe(exc, "assistant", names=settings.setting_names())
    return redact(message if about is None else f"{about}: {message}", settings.secret())


def log_unexpected(what: str, exc: BaseException, settings: ServerSettings) -> None:
    """Log ``exc`` with its traceback (the key redacted) unless it is one of the core's
    errors, which the message alone explains."""
    if not isinstance(exc, TimbalError):
        details = "".join(traceback.format_exception(exc))
        logger.error("%s failed unexpectedly:\n%s", what, redact(details, settings.secret()))


def tool_failure(tool: str, exc: BaseException, settings: ServerSettings) -> ToolFailure:
    """The tool error for ``exc``: ``"<tool>: <the core's wording>"``, the key redacted;
    an unexpected failure is logged first."""
    log_unexpected(tool, exc, settings)
    return ToolFailure(explain(exc, settings, about=tool))
