"""Assembling ``get_run``'s result: the run's fields, the trace's head, where it failed,
the span tree and the reactions, under the level's size budget.

A full trace that does not fit has its values cut shorter (``MCP_FULL_FIELD_CHARS``,
then 600, 200 and 80 characters); a tree that still does not fit keeps the spans
:func:`.budget.select` picks, and :func:`.budget.fit` guards the rest. Notes on what
was cut go to ``truncated``, with a hint naming the resource that holds it uncut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from timbal_integrations import defaults
from timbal_integrations.models import RunDetail

from .budget import fit, select, size
from .fields import MESSAGE_CHARS, error_text, reaction_rows, resource_uris, run_fields
from .text import render_text
from .tree import Detail, SpanTree
from .values import drop_nulls, preview, short_path

if TYPE_CHECKING:
    from timbal_integrations.models import Reaction

__all__ = ["RunView", "shape_run"]

_FAILURES_LISTED: Final = 5
_FULL_STEPS: Final = (defaults.MCP_FULL_FIELD_CHARS, 600, 200, 80)


@dataclass
class RunView:
    """A shaped ``get_run`` result: the structured content and its text rendering."""

    structured: dict[str, Any]
    text: str


def shape_run(
    detail: RunDetail,
    reactions: Sequence[Reaction],
    *,
    level: Detail = "summary",
    more_reactions: bool = False,
    reactions_problem: str | None = None,
    budget: tuple[int, int] | None = None,
) -> RunView:
    """The ``get_run`` result of ``detail`` and its ``reactions`` (see the module
    docstring); ``budget`` (text, structured) overrides the level's character bounds."""
    if budget is not None:
        limit, struct_limit = budget
    elif level == "summary":
        limit = defaults.MCP_GET_RUN_SUMMARY_CHARS
        struct_limit = defaults.MCP_GET_RUN_SUMMARY_STRUCTURED_CHARS
    else:
        limit = struct_limit = defaults.MCP_GET_RUN_FULL_CHARS
    fields, notes = run_fields(detail)
    uris = resource_uris(detail.id)
    rows, feedback_cut = reaction_rows(reactions)
    if feedback_cut:
        notes.append(
            f"{feedback_cut} reaction feedback(s) cut to {defaults.MCP_FEEDBACK_CHARS} characters"
        )
    structured: dict[str, Any] = {**fields, "detail": level}
    trace = detail.parsed_trace
    trace_head: dict[str, Any] | None = None
    failures: list[dict[str, Any]] = []
    root_io: dict[str, Any] = {}
    if trace is not None:
        root = trace.root
        trace_head = drop_nulls(
            {
                "spans": len(trace),
                "duration_ms": trace.duration_ms,
                "form": trace.form,
                "skipped_entries": trace.skipped or None,
                "usage_by_model": trace.usage_by_model(),
            }
        )
        previews_cut = 0
        for span in trace.failures()[:_FAILURES_LISTED]:
            error = error_text(span)
            shown_input, input_cut = preview(span.input, defaults.MCP_PREVIEW_CHARS)
            previews_cut += input_cut and level == "summary"
            failures.append(
                drop_nulls(
                    {
                        "call_id": span.call_id,
                        "path": short_path(span.path),
                        "status": span.status_code,
                        "error": preview(error, MESSAGE_CHARS)[0],
                        "input": shown_input if level == "summary" else None,
                    }
                )
            )
        if level == "summary" and root is not None:
            for name, value in (("root_input", root.input), ("root_output", root.output)):
                shown, cut = preview(value, defaults.MCP_PREVIEW_CHARS)
                previews_cut += cut
                if shown is not None:
                    root_io[name] = shown
        if previews_cut:
            notes.append(
                f"{previews_cut} input/output preview(s) (the root's, the failing spans') cut to "
                f"{defaults.MCP_PREVIEW_CHARS} characters"
            )
    elif detail.trace is not None:
        notes.append(
            "the trace is not in Timbal's span shape; read the trace resource for it as sent"
        )

    def assemble(tree: SpanTree | None, chosen: list[int] | None) -> tuple[dict[str, Any], str]:
        data = dict(structured)
        if trace_head is not None and tree is not None:
            indexes = range(len(tree.order)) if chosen is None else chosen
            section = dict(trace_head)
            section["shown"] = len(indexes)
            if chosen is not None:
                section["elided"] = len(tree.order) - len(indexes)
            if failures:
                section["failures"] = failures
            section["tree"] = [tree.entries[i] for i in indexes]
            section.update(root_io)
            data["trace"] = section
        data["reactions"] = rows
        if more_reactions:
            data["reactions_more"] = True
        if reactions_problem is not None:
            data["reactions_error"] = reactions_problem
        data["resources"] = uris
        run_notes = list(notes)
        if tree is not None:
            if tree.cut_spans:
                chars = defaults.MCP_PREVIEW_CHARS if level == "summary" else tree.field_chars
                run_notes.append(f"values of {tree.cut_spans} span(s) cut to {chars:,} characters")
            if chosen is not None:
                run_notes.append(
                    f"{len(tree.order) - len(chosen)} of {len(tree.order)} spans left out to fit "
                    f"the size budget ({limit:,} characters of text; kept: the root, every "
                    "failing span and its callers, then spans in depth-first order)"
                )
        if run_notes:
            data["truncated"] = run_notes
            data["hint"] = (
                f"The whole trace, uncut: read the resource {uris['trace']}"
                + (
                    '; or call get_run with detail="full" for every span'
                    if level == "summary"
                    else ""
                )
                + "."
            )
        elif level == "summary" and trace is not None:
            data["hint"] = (
                f'get_run with detail="full" gives every span\'s input, output and metadata; '
                f"the resource {uris['trace']} the trace as sent."
            )
        return data, render_text(data, tree, chosen)

    if trace is None:
        return RunView(*fit(*assemble(None, None), limit, struct_limit))
    steps = (defaults.MCP_PREVIEW_CHARS,) if level == "summary" else _FULL_STEPS
    for field_chars in steps:
        tree = SpanTree(trace, level, field_chars)
        bare, bare_text = assemble(tree, [])
        struct_room = struct_limit - size(bare) - 400  # notes grow when spans are left out
        text_room = limit - len(bare_text) - 400
        chosen = select(tree, struct_room, text_room)
        if chosen is None or field_chars == steps[-1]:
            return RunView(*fit(*assemble(tree, chosen), limit, struct_limit))
    raise AssertionError("unreachable")  # pragma: no cover
