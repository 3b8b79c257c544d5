"""The span tree: one entry (structured) and one line (text) per span of a trace.

``summary`` entries hold the path, depth, status, duration, tokens and model of LLM
calls, and the error where a failure started (a preview). ``full`` entries hold every
span whole (times, status, error with its traceback, usage, metadata, input, output,
unknown keys), each value cut to ``field_chars`` characters. Which entries fit a result
is :mod:`.budget`'s concern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

from timbal_integrations import defaults
from timbal_integrations.trace import token_totals

from .fields import error_text
from .values import drop_nulls, indent, one_line, preview, short_path

if TYPE_CHECKING:
    from timbal_integrations.trace import Span, Trace

__all__ = ["DETAIL_LEVELS", "Detail", "SpanTree"]

Detail = Literal["summary", "full"]
DETAIL_LEVELS: Final[tuple[Detail, ...]] = ("summary", "full")


class SpanTree:
    """The trace's spans as entries (structured) and lines (text), one per span, in
    depth-first order (``order``: each span and its depth)."""

    def __init__(self, trace: Trace, level: Detail, field_chars: int) -> None:
        """The tree of ``trace`` at ``level``, values cut to ``field_chars``."""
        self.trace = trace
        self.level = level
        self.field_chars = field_chars
        self.order = list(trace.walk())
        self.cut_spans = 0
        self.entries: list[dict[str, Any]] = []
        self.lines: list[str] = []
        for span, depth in self.order:
            entry, line, cut = self._shape(span, depth)
            self.entries.append(entry)
            self.lines.append(line)
            self.cut_spans += cut

    def _shape(self, span: Span, depth: int) -> tuple[dict[str, Any], str, bool]:
        trace = self.trace
        status = span.status_code or ("running" if span.is_open else None)
        spent_in, spent_out = token_totals(span.usage)
        origin = span.failed and not any(kid.failed for kid in trace.children(span))
        error = error_text(span) if origin else None
        label = short_path(span.path or span.name)
        line = f"{indent(depth)}{short_path(span.name) if depth else label} {status or '-'}"
        duration = span.duration_ms
        line += f" {duration}ms" if duration is not None else ""
        if spent_in or spent_out:
            line += f" tok {spent_in}/{spent_out}"
        if span.model:
            line += f" {span.model.split('/', 1)[-1]}"
        cut = False
        if self.level == "summary":
            entry: dict[str, Any] = {"path": label, "depth": depth, "status": status}
            if duration is not None:
                entry["duration_ms"] = duration
            if span.model:
                entry["model"] = span.model
            if spent_in or spent_out:
                entry["tokens"] = {"input": spent_in, "output": spent_out}
            if error:
                message, was_cut = preview(error, defaults.MCP_PREVIEW_CHARS)
                entry["error"] = message
                cut |= was_cut
                line += f" ! {one_line(error, defaults.MCP_PREVIEW_CHARS)}"
            return drop_nulls(entry), line, cut
        entry, cut = self._full(span, depth)
        if error:
            line += f" ! {one_line(error, self.field_chars)}"
        pad = indent(depth) + "  "
        for name in ("input", "output"):
            value = entry.get(name)
            if value is not None:
                line += f"\n{pad}{name}: {one_line(value)}"
        return entry, line, cut

    def _full(self, span: Span, depth: int) -> tuple[dict[str, Any], bool]:
        limit = self.field_chars
        cut = False
        entry: dict[str, Any] = {
            "call_id": span.call_id,
            "parent_call_id": span.parent_call_id,
            "path": short_path(span.path),
            "depth": depth,
            "t0": span.t0,
            "t1": span.t1,
            "duration_ms": span.duration_ms,
        }
        if span.status is not None:
            entry["status"] = drop_nulls(
                {
                    "code": span.status.code,
                    "reason": span.status.reason,
                    "message": span.status.message,
                }
            )
        if span.error is not None:
            traceback, was_cut = preview(span.error.traceback, limit)
            cut |= was_cut
            entry["error"] = drop_nulls(
                {"type": span.error.type, "message": span.error.message, "traceback": traceback}
            )
        if span.usage:
            entry["usage"] = dict(span.usage)
        if span.metadata:
            entry["metadata"], was_cut = preview(dict(span.metadata), max(limit, 300))
            cut |= was_cut
        for name, value in (("input", span.input), ("output", span.output), *span.extra.items()):
            shown, was_cut = preview(value, limit)
            cut |= was_cut
            if shown is not None:
                entry[name] = shown
        return drop_nulls(entry), cut
