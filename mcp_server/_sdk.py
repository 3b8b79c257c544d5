"""The one place that touches the MCP SDK's internals: strict tool and prompt arguments.

The SDK builds each tool's argument model from its signature (``fn_metadata.arg_model``)
and lets unknown arguments through, and reports a bad argument as pydantic's raw error
text. A model calling a tool is better served by a refusal that names each bad argument
and what it expects. :func:`strict` swaps the SDK's argument model for one that forbids
extra fields (and publishes ``additionalProperties: false``); :class:`TimbalTool` checks
arguments with it and words the failures (:func:`argument_problem`).

Both rely on ``Tool.fn_metadata.arg_model``, ``Tool.parameters`` and
``Tool.run(arguments, context, convert_result)`` of mcp 2.x (pinned ``mcp>=2.3,<3``);
``tests/mcp/test_mcp_schema.py`` pins the published schemas, so an SDK change that breaks
this shows there first.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.prompts.base import Message, Prompt
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import ConfigDict, ValidationError

from .args import expected, shown

__all__ = ["TimbalPrompt", "TimbalTool", "ToolFailure", "argument_problem", "strict"]

logger = logging.getLogger("mcp_server")


class ToolFailure(ToolError):
    """A failure explained for the model; its message is shown as is."""


def argument_problem(tool: str, error: ValidationError, known: list[str]) -> str:
    """One line naming each bad argument and what it expects."""
    by_name: dict[str, list[Any]] = {}
    for item in error.errors():
        loc = item.get("loc") or ("arguments",)
        by_name.setdefault(str(loc[0]), []).append(item)
    problems = []
    for name, items in by_name.items():
        first = items[0]
        if first["type"] == "extra_forbidden":
            problems.append(f"unknown argument `{name}` (accepted: {', '.join(known)})")
        elif first["type"] == "missing":
            problems.append(f"`{name}` is required: expected {expected(name)}")
        else:
            got = shown(first.get("input"))
            if len(items) > 1:
                reason = "not accepted"
            elif first["type"] == "value_error":  # our own validator's ValueError
                reason = str(first.get("ctx", {}).get("error", first["msg"]))
            else:
                reason = first["msg"]
            problems.append(f"`{name}`: {reason} (got {got}); expected {expected(name)}")
    return f"Invalid arguments for {tool}: " + "; ".join(problems)


class TimbalTool(Tool):
    """A tool whose arguments are checked strictly, with messages a model can act on.

    Unknown arguments are refused (the input schema says ``additionalProperties:
    false``), and a failure is reported with the tool's own message rather than the
    SDK's generic one.
    """

    async def run(
        self,
        arguments: dict[str, Any],
        context: Context[Any, Any],
        convert_result: bool = False,
    ) -> Any:
        """Check the arguments, run the tool, and report failures plainly."""
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            known = list(self.parameters.get("properties", {}))
            raise ToolError(argument_problem(self.name, exc, known)) from None
        try:
            return await super().run(arguments, context, convert_result)
        except UnexpectedToolError as exc:
            logger.error("%s produced a result that does not fit its schema", self.name)
            raise ToolError(
                f"{self.name}: internal error (the result did not fit the tool's output "
                "schema); this is a bug in timbal-mcp, and the server's log has the details."
            ) from exc
        except ToolError as exc:
            if isinstance(exc.__cause__, ToolFailure):
                raise ToolError(str(exc.__cause__)) from None
            raise


def strict(tool: Tool) -> Tool:
    """Refuse unknown arguments, and publish a schema that says so (without titles)."""
    base = tool.fn_metadata.arg_model
    forbidding = cast(
        type[ArgModelBase],
        type(
            base.__name__,
            (base,),
            {"model_config": ConfigDict(extra="forbid"), "__module__": __name__},
        ),
    )
    tool.fn_metadata.arg_model = forbidding
    # The SDK has just generated the input schema from the same fields; forbidding extra
    # fields adds only additionalProperties (set below), so reuse it rather than pay
    # for pydantic's schema generation again at start-up (tests/mcp pins the result).
    schema = tool.parameters
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema["additionalProperties"] = False
    tool.parameters = schema
    return tool


class TimbalPrompt(Prompt):
    """A prompt whose missing or unknown arguments are refused by name.

    The SDK answers both with a generic internal error; a client (and the person
    choosing the prompt) is better served by "invalid params" naming the argument.
    """

    async def render(self, arguments: dict[str, Any] | None, context: Context[Any, Any]) -> Any:
        """Check the arguments by name, then render."""
        given = arguments or {}
        known = [a.name for a in self.arguments or []]
        problems = [
            f"unknown argument `{n}` (accepted: {', '.join(known)})"
            for n in given
            if n not in known
        ]
        problems += [
            f"`{a.name}` is required: {a.description or 'a value'}"
            for a in self.arguments or []
            if a.required and a.name not in given
        ]
        if problems:
            raise MCPError(code=INVALID_PARAMS, message=f"{self.name}: " + "; ".join(problems))
        rendered: list[Message] | Any = await super().render(arguments, context)
        return rendered
