"""``get_run``'s result: a run, its trace as a compact span tree, and its reactions, in a
hard size budget however big the trace.

``detail="summary"`` (the default) gives the run's fields, ``status_detail``, where it
failed (the deepest error spans first, with their error and input), tokens by model,
the span tree (one entry per span: path, depth, status, duration, tokens and model of
LLM calls, the error where a failure started), the root's input and output, and the
reactions with their feedback. Inputs and outputs are previews of
``MCP_PREVIEW_CHARS``. ``detail="full"`` gives every span whole (times, status, error
with its traceback, usage, metadata, input, output, unknown keys), long values cut to
``MCP_FULL_FIELD_CHARS`` characters.

Both are bounded: a summary's text by ``MCP_GET_RUN_SUMMARY_CHARS`` and its structured
content by ``MCP_GET_RUN_SUMMARY_STRUCTURED_CHARS``, a full result's text and structured
content by ``MCP_GET_RUN_FULL_CHARS`` each. A full trace that does not fit has its
values cut shorter; a tree that still does not fit keeps the root, every failing span
and its callers, then as many spans as fit in depth-first order, and says how many it
left out. Whatever is cut is named in ``truncated``, with how to get it: the ``timbal://runs/{run_id}/trace``
resource, or ``detail="full"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from timbal_integrations import defaults
from timbal_integrations.models import RunDetail
from timbal_integrations.query import format_time
from timbal_integrations.trace import token_totals

from .readable import readable, readable_json
from .shaping import RUN_FIELDS

if TYPE_CHECKING:
    from timbal_integrations.models import Reaction
    from timbal_integrations.trace import Span, Trace

__all__ = [
    "DETAIL_LEVELS",
    "Detail",
    "RunView",
    "cut_strings",
    "preview",
    "resource_uris",
    "shape_run",
]

Detail = Literal["summary", "full"]
DETAIL_LEVELS: Final[tuple[Detail, ...]] = ("summary", "full")

_FIXED: Final = frozenset(RunDetail.model_fields)
"""The run's fields the shaped result gives its own place (others are shown as sent)."""
_FAILURES_LISTED: Final = 5
_MESSAGE_CHARS: Final = 1_000
_FULL_STEPS: Final = (defaults.MCP_FULL_FIELD_CHARS, 600, 200, 80)
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def resource_uris(run_id: str) -> dict[str, str]:
    """The resources of a run: its full JSON and its full trace."""
    from urllib.parse import quote

    quoted = quote(run_id, safe="")
    return {"run": f"timbal://runs/{quoted}", "trace": f"timbal://runs/{quoted}/trace"}


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def preview(value: Any, limit: int) -> tuple[Any, bool]:
    """``value`` if its JSON fits ``limit`` characters, else a string of its first
    characters and how many were left out; and whether it was cut."""
    if value is None:
        return None, False
    if isinstance(value, str):
        if len(value) <= limit:
            return value, False
        return f"{value[:limit]}… [{len(value) - limit:,} more characters]", True
    text = _json(value)
    if len(text) <= limit:
        return value, False
    return f"{text[:limit]}… [{len(text) - limit:,} more characters of JSON]", True


def _line(value: Any, limit: int | None = None) -> str:
    """``value`` on one line for the text content (control characters become spaces)."""
    text = value if isinstance(value, str) else _json(readable(value))
    text = " ".join(_CONTROL.sub(" ", text).split())
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… [{len(text) - limit:,} more characters]"
    return text


_PATH_CHARS: Final = 200
_MAX_INDENT: Final = 16


def _path(path: str) -> str:
    """A span's path, its start cut when it is very long (the end names the call)."""
    return path if len(path) <= _PATH_CHARS else "…" + path[-(_PATH_CHARS - 1) :]


def _indent(depth: int) -> str:
    """Two spaces a level, and the depth written out below level 16."""
    if depth <= _MAX_INDENT:
        return "  " * depth
    return "  " * _MAX_INDENT + f"[depth {depth}] "


def cut_strings(value: Any, longest: int) -> tuple[Any, int]:
    """``value`` with every string longer than ``longest`` cut (saying how much was left
    out), and how many were cut."""
    if isinstance(value, str):
        if len(value) <= longest:
            return value, 0
        return f"{value[:longest]}… [{len(value) - longest:,} more characters]", 1
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        count = 0
        for key, item in value.items():
            out[key], n = cut_strings(item, longest)
            count += n
        return out, count
    if isinstance(value, list):
        items = []
        count = 0
        for item in value:
            shown, n = cut_strings(item, longest)
            items.append(shown)
            count += n
        return items, count
    return value, 0


def _drop_nulls(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


@dataclass
class RunView:
    """A shaped ``get_run`` result: the structured content and its text rendering."""

    structured: dict[str, Any]
    text: str


def _run_fields(detail: RunDetail) -> tuple[dict[str, Any], list[str]]:
    """The run's own fields (nulls left out, unknown fields kept and previewed)."""
    notes: list[str] = []
    data = detail.to_json_dict()
    out: dict[str, Any] = {
        "id": detail.id,
        "idempotency_key": detail.idempotency_key,
        "created_at": format_time(detail.created_at),
        "status": detail.status,
        "duration_ms": detail.duration_ms,
        "cost_usd": detail.cost_usd,
        "cost_credits": detail.cost_credits,
        "user": _drop_nulls(data["user"]),
        "workforce": _drop_nulls(data["workforce"]) if data.get("workforce") else None,
        "sentiment": detail.last_reaction_sentiment,
        "group_id": detail.group_id,
        "parent_id": detail.parent_id,
    }
    info = detail.status_info
    if info is not None:
        message, cut = preview(info.message, _MESSAGE_CHARS)
        out["status_detail"] = _drop_nulls(
            {"code": info.code, "reason": info.reason, "message": message}
        )
        if cut:
            notes.append(f"status_detail.message cut to {_MESSAGE_CHARS} characters")
    elif detail.status_detail is not None:
        out["status_detail"], cut = preview(detail.status_detail, _MESSAGE_CHARS)
        if cut:
            notes.append(f"status_detail cut to {_MESSAGE_CHARS} characters")
    for key, value in data.items():
        if key in _FIXED or value is None:
            continue
        shown, cut = preview(value, _MESSAGE_CHARS)
        out[key] = shown
        if cut:
            notes.append(f"{key} cut to {_MESSAGE_CHARS} characters")
    return _drop_nulls(out), notes


def _reaction_rows(reactions: Sequence[Reaction]) -> tuple[list[dict[str, Any]], int]:
    rows = []
    cut_count = 0
    for reaction in reactions:
        feedback, cut = preview(reaction.feedback, defaults.MCP_FEEDBACK_CHARS)
        cut_count += cut
        user = _drop_nulls(
            {"id": reaction.user.id, "name": reaction.user.name, "email": reaction.user.email}
        )
        rows.append(
            _drop_nulls(
                {
                    "created_at": format_time(reaction.created_at),
                    "sentiment": reaction.sentiment,
                    "user": user,
                    "feedback": feedback,
                }
            )
        )
    return rows, cut_count


def _error_text(span: Span) -> str | None:
    if span.error is not None and span.error.summary():
        return span.error.summary()
    if span.failed and span.status is not None:
        parts = [p for p in (span.status.reason, span.status.message) if p]
        return ": ".join(parts) or None
    return None


class _Tree:
    """The trace's spans as entries (structured) and lines (text), one per span."""

    def __init__(self, trace: Trace, level: Detail, field_chars: int) -> None:
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
        error = _error_text(span) if origin else None
        label = _path(span.path or span.name)
        line = f"{_indent(depth)}{_path(span.name) if depth else label} {status or '-'}"
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
                line += f" ! {_line(error, defaults.MCP_PREVIEW_CHARS)}"
            return _drop_nulls(entry), line, cut
        entry, cut = self._full(span, depth)
        if error:
            line += f" ! {_line(error, self.field_chars)}"
        pad = _indent(depth) + "  "
        for name in ("input", "output"):
            value = entry.get(name)
            if value is not None:
                line += f"\n{pad}{name}: {_line(value)}"
        return entry, line, cut

    def _full(self, span: Span, depth: int) -> tuple[dict[str, Any], bool]:
        limit = self.field_chars
        cut = False
        entry: dict[str, Any] = {
            "call_id": span.call_id,
            "parent_call_id": span.parent_call_id,
            "path": _path(span.path),
            "depth": depth,
            "t0": span.t0,
            "t1": span.t1,
            "duration_ms": span.duration_ms,
        }
        if span.status is not None:
            entry["status"] = _drop_nulls(
                {
                    "code": span.status.code,
                    "reason": span.status.reason,
                    "message": span.status.message,
                }
            )
        if span.error is not None:
            traceback, was_cut = preview(span.error.traceback, limit)
            cut |= was_cut
            entry["error"] = _drop_nulls(
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
        return _drop_nulls(entry), cut


def _size(value: Any) -> int:
    return len(_json(value)) + 1


def _select(tree: _Tree, struct_room: int, text_room: int) -> list[int] | None:
    """The walk positions of the spans to show; None when all of them fit."""
    struct_sizes = [_size(e) for e in tree.entries]
    text_sizes = [len(line) + 1 for line in tree.lines]
    if sum(struct_sizes) <= struct_room and sum(text_sizes) <= text_room:
        return None
    trace = tree.trace
    position = {span.call_id: i for i, (span, _) in enumerate(tree.order)}
    must: list[int] = [0] if tree.order else []
    marked: set[str] = set()
    for span in trace.failures():  # each failing span and its callers, each caller once
        current: Span | None = span
        while current is not None and current.call_id not in marked:
            marked.add(current.call_id)
            must.append(position[current.call_id])
            current = trace.parent(current)
    chosen: set[int] = set()
    used_struct = used_text = 0
    marker = 48  # an elision marker, per gap, in both forms

    def take(i: int) -> bool:
        nonlocal used_struct, used_text
        struct = used_struct + struct_sizes[i] + marker
        text = used_text + text_sizes[i] + marker
        if struct > struct_room or text > text_room:
            return False
        used_struct, used_text = struct, text
        chosen.add(i)
        return True

    for i in dict.fromkeys(must):
        take(i)
    for i in range(len(tree.order)):
        if i not in chosen and not take(i):
            break
    return sorted(chosen)


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
    fields, notes = _run_fields(detail)
    uris = resource_uris(detail.id)
    reaction_rows, feedback_cut = _reaction_rows(reactions)
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
        trace_head = _drop_nulls(
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
            error = _error_text(span)
            shown_input, input_cut = preview(span.input, defaults.MCP_PREVIEW_CHARS)
            previews_cut += input_cut and level == "summary"
            failures.append(
                _drop_nulls(
                    {
                        "call_id": span.call_id,
                        "path": _path(span.path),
                        "status": span.status_code,
                        "error": preview(error, _MESSAGE_CHARS)[0],
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

    def assemble(tree: _Tree | None, chosen: list[int] | None) -> tuple[dict[str, Any], str]:
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
        data["reactions"] = reaction_rows
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
        return data, _render_text(data, tree, chosen)

    if trace is None:
        data, text = assemble(None, None)
        return _bounded(data, text, limit, struct_limit)
    steps = (defaults.MCP_PREVIEW_CHARS,) if level == "summary" else _FULL_STEPS
    for field_chars in steps:
        tree = _Tree(trace, level, field_chars)
        bare, bare_text = assemble(tree, [])
        struct_room = struct_limit - _size(bare) - 400  # notes grow when spans are left out
        text_room = limit - len(bare_text) - 400
        chosen = _select(tree, struct_room, text_room)
        if chosen is None or field_chars == steps[-1]:
            data, text = assemble(tree, chosen)
            return _bounded(data, text, limit, struct_limit)
    raise AssertionError("unreachable")  # pragma: no cover


def _bounded(data: dict[str, Any], text: str, limit: int, struct_limit: int) -> RunView:
    """The last guard of the budget: a result still too big (thousands of failing spans,
    say) loses its tree from the end, then has its longest strings cut; the text is cut
    at the budget. Either way it says so."""
    section = data.get("trace")
    tree = section.get("tree") if isinstance(section, dict) else None
    cut_tree = False
    while tree and _size(data) > struct_limit:
        del tree[len(tree) // 2 :]
        cut_tree = True
    if cut_tree and isinstance(section, dict):
        section["shown"] = len(section["tree"])
        section["elided"] = section["spans"] - section["shown"]
        data.setdefault("truncated", []).append(
            f"the tree was cut to {section['shown']} span(s) to fit the structured budget"
        )
    for longest in (1_000, 200, 50):
        if _size(data) <= struct_limit:
            break
        data, count = cut_strings(data, longest)
        data.setdefault("truncated", []).append(
            f"{count} string(s) cut to {longest:,} characters to fit the size budget"
        )
    if len(text) > limit:
        text = text[: limit - 120] + "\n… [the rest of this result was cut to fit; see hint]"
    return RunView(data, text)


def _render_text(data: Mapping[str, Any], tree: _Tree | None, chosen: list[int] | None) -> str:
    """The text a model reads: the run, where it failed, tokens, the tree, reactions."""
    lines = []
    duration = data.get("duration_ms")
    took = f"duration {duration}ms" if duration is not None else "no duration (running)"
    cost = readable(data.get("cost_usd"))
    lines.append(
        f"run {data['id']} · {data['status']} · created {data['created_at']} · {took} · "
        f"cost ${cost} ({readable(data.get('cost_credits'))} credits)"
    )
    user = data.get("user") or {}
    who = (
        f"user {_line(user.get('name') or '-')} <{_line(user.get('email') or '-')}> "
        f"(user_id {user.get('id')})"
    )
    force = data.get("workforce")
    if force:
        who += (
            f" · workforce {_line(force.get('name') or '-')} ({force.get('type', '-')}, "
            f"workforce_id {force.get('id')})"
        )
    if data.get("sentiment"):
        who += f" · sentiment {data['sentiment']}"
    lines.append(who)
    thread = [f"{k} {data[k]}" for k in ("group_id", "parent_id") if data.get(k)]
    if data.get("idempotency_key") and data["idempotency_key"] != data["id"]:
        thread.append(f"idempotency_key {_line(data['idempotency_key'], 120)}")
    if thread:
        lines.append(" · ".join(thread))
    detail = data.get("status_detail")
    if isinstance(detail, Mapping):
        said = " · ".join(_line(v) for v in (detail.get("code"), detail.get("reason")) if v)
        message = f": {_line(detail['message'])}" if detail.get("message") else ""
        lines.append(f"status_detail: {said}{message}")
    elif detail is not None:
        lines.append(f"status_detail: {_line(detail)}")
    others = {k: v for k, v in data.items() if k not in _TEXT_KNOWN}
    if others:
        lines.append(f"other fields: {readable_json(others)}")
    section = data.get("trace")
    if isinstance(section, Mapping):
        for failure in section.get("failures", ())[:1]:
            rest = len(section.get("failures", ())) - 1
            lines.append(
                f"failed at {_line(failure['path'])} ({failure.get('status')}): "
                f"{_line(failure.get('error') or '-')}"
                + (f" (then {rest} caller(s))" if rest else "")
            )
            if failure.get("input") is not None:
                lines.append(f"  its input: {_line(failure['input'])}")
        usage = section.get("usage_by_model") or {}
        if usage:
            lines.append(
                "tokens by model: "
                + "; ".join(
                    f"{model or '(other)'} "
                    + " ".join(f"{counter}={count}" for counter, count in counters.items())
                    for model, counters in usage.items()
                )
            )
        head = f"trace: {section['spans']} spans"
        if section.get("duration_ms") is not None:
            head += f", {section['duration_ms']}ms"
        head += (
            "; one line per span, depth first: name status duration [tok in/out] [model] [! error]"
        )
        lines.append(head)
        if tree is not None:
            indexes = list(range(len(tree.order))) if chosen is None else chosen
            previous = -1
            for i in indexes:
                if i != previous + 1:
                    depth = tree.order[previous + 1][1]
                    lines.append(f"{_indent(depth)}… {i - previous - 1} span(s) left out")
                lines.append(tree.lines[i])
                previous = i
            if previous != len(tree.order) - 1:
                depth = tree.order[previous + 1][1]
                left = len(tree.order) - previous - 1
                lines.append(f"{_indent(depth)}… {left} span(s) left out")
        for name in ("root_input", "root_output"):
            if section.get(name) is not None:
                lines.append(f"{name.replace('_', ' ')}: {_line(section[name])}")
    elif data.get("trace") is None:
        lines.append("trace: none")
    reactions = data.get("reactions") or []
    more = "+" if data.get("reactions_more") else ""
    if data.get("reactions_error"):
        lines.append(f"reactions: could not be read: {_line(data['reactions_error'])}")
    else:
        lines.append(
            f"reactions ({len(reactions)}{more}, newest first):" if reactions else "reactions: none"
        )
    for row in reactions:
        reactor = row.get("user", {})
        said = f': "{_line(row["feedback"])}"' if row.get("feedback") else ""
        name = _line(reactor.get("name") or reactor.get("id"))
        lines.append(
            f"  {row['created_at']} {row['sentiment']} {name}"
            f" <{_line(reactor.get('email') or '-')}>{said}"
        )
    for note in data.get("truncated", ()):
        lines.append(f"cut: {note}")
    if data.get("hint"):
        lines.append(str(data["hint"]))
    uris = data["resources"]
    lines.append(f"resources: {uris['run']} (the run as JSON), {uris['trace']} (its trace as JSON)")
    return "\n".join(lines)


_TEXT_KNOWN: Final = frozenset(
    {
        *RUN_FIELDS,
        "status_detail",
        "detail",
        "trace",
        "reactions",
        "reactions_more",
        "reactions_error",
        "resources",
        "truncated",
        "hint",
    }
)
