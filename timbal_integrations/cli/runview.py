"""``timbal-runs show``'s picture of one run: its header, its span tree with durations,
statuses, token usage and errors, tokens by model, where it failed, and its reactions.

The layout only: every number and relation comes from the core's parsed trace
(:mod:`timbal_integrations.trace`); every string the server sent is passed through
:func:`~timbal_integrations.cli.draw.terminal_text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from ..trace import token_totals
from .draw import Role, Style, clip, terminal_text
from .progress import human_duration

if TYPE_CHECKING:
    from ..models import Reaction, RunDetail
    from ..trace import Span, Trace

__all__ = ["format_run"]

_NAME_WIDTH: Final = 44  # the tree column at most (a deeper path is cut)
_MESSAGE: Final = 160  # an error message, a piece of feedback, at most
_STATUS_ROLES: Final[dict[str, Role]] = {
    "success": "ok",
    "error": "error",
    "timeout": "warn",
    "cancelled": "warn",
    "blocked": "blocked",
    "running": "running",
}
_SENTIMENT_ROLES: Final[dict[str, Role]] = {"positive": "ok", "negative": "error"}


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _status(code: str | None, style: Style) -> str:
    """``✓ success`` in its colour (``… running`` for an open call)."""
    word = code or "running"
    mark = style.glyphs.marks.get(word, "?")
    return style.paint(f"{mark} {terminal_text(word, 12)}", _STATUS_ROLES.get(word, "warn"))


def _status_width(code: str | None) -> int:
    return 2 + len(terminal_text(code or "running", 12))


def _token_text(usage: Mapping[str, int], style: Style) -> str:
    spent_in, spent_out = token_totals(usage)
    if not spent_in and not spent_out:
        return ""
    return f"{spent_in:,} in {style.glyphs.bullet} {spent_out:,} out"


def _header(detail: RunDetail, style: Style) -> list[str]:
    g = style.glyphs
    title = f"Run {terminal_text(detail.id)}"
    lines = [f"{style.paint(title, 'bold')}   {_status(detail.status, style)}"]
    cost = f"${detail.cost_usd:,.4f} {g.bullet} {detail.cost_credits:,.4f} credits"
    lines.append(
        f"  created    {_when(detail.created_at)}   duration "
        f"{human_duration(detail.duration_ms)}   cost {cost}"
    )
    user = detail.user
    who = terminal_text(user.name) or terminal_text(user.id)
    lines.append(f"  user       {who} <{terminal_text(user.email)}> ({terminal_text(user.id)})")
    force = detail.workforce
    if force is not None:
        lines.append(
            f"  workforce  {terminal_text(force.name)} "
            f"({terminal_text(force.type)}, {terminal_text(force.id)})"
        )
    thread = []
    if detail.group_id is not None and detail.group_id != detail.id:
        thread.append(f"group {terminal_text(detail.group_id)}")
    if detail.parent_id is not None:
        thread.append(f"after {terminal_text(detail.parent_id)}")
    if thread:
        lines.append("  thread     " + ", ".join(thread))
    if detail.idempotency_key and detail.idempotency_key != detail.id:
        lines.append(f"  key        {terminal_text(detail.idempotency_key, 80)}")
    info = detail.status_info
    if info is not None and info.code != "success" and (info.reason or info.message):
        said = " ".join(p for p in (info.reason and f"{info.reason}:", info.message) if p)
        role: Role = "error" if info.failed else "dim"
        lines.append(f"  why        {style.paint(terminal_text(said, _MESSAGE), role)}")
    if detail.last_reaction_sentiment:
        sentiment = terminal_text(detail.last_reaction_sentiment, 20)
        painted = style.paint(sentiment, _SENTIMENT_ROLES.get(sentiment))
        lines.append(f"  sentiment  {painted} (the last reaction)")
    return lines


def _guides(trace: Trace, style: Style) -> dict[str, tuple[str, str]]:
    """Each span's tree guides, in one walk: what goes in front of its line (a pipe for
    each caller with calls after it, then its branch), and in front of the lines under
    it."""
    g = style.glyphs
    guides: dict[str, tuple[str, str]] = {}
    last_at: list[bool] = []  # per level below the root: is the call there its caller's last?
    kids: dict[str, list[Span]] = {}
    for span, depth in trace.walk():
        if depth == 0:
            last_at.clear()
            guides[span.call_id] = ("", "")
            continue
        parent = span.parent_call_id or ""
        siblings = kids.get(parent)
        if siblings is None:
            siblings = kids[parent] = trace.children(parent)
        is_last = not siblings or siblings[-1] is span
        del last_at[depth - 1 :]
        last_at.append(is_last)
        above = "".join(g.blank if last else g.pipe for last in last_at[:-1])
        guides[span.call_id] = (
            above + (g.last if is_last else g.branch),
            above + (g.blank if is_last else g.pipe),
        )
    return guides


def _trace(trace: Trace, style: Style) -> list[str]:
    g = style.glyphs
    rows: list[tuple[str, Span]] = []
    guides = _guides(trace, style)
    for span, depth in trace.walk():
        prefix = guides[span.call_id][0]
        label = terminal_text(span.name) if depth else terminal_text(span.path or span.name)
        rows.append((clip(prefix + label, _NAME_WIDTH, g.ellipsis), span))
    name_width = max(len(name) for name, _ in rows)
    status_width = max(_status_width(span.status_code) for _, span in rows)
    total = trace.duration_ms
    head = f"Trace {g.bullet} {len(trace)} span{'s' if len(trace) != 1 else ''}"
    if total is not None:
        head += f" {g.bullet} {human_duration(total)}"
    if trace.skipped:
        head += f" {g.bullet} {trace.skipped} entries that are not spans skipped"
    lines = ["", style.paint(head, "bold")]
    for name, span in rows:
        status = _status(span.status_code, style)
        pad = " " * (status_width - _status_width(span.status_code))
        duration = human_duration(span.duration_ms) if not span.is_open else "running"
        tokens = _token_text(span.usage, style)
        model = span.model
        extra = f"{terminal_text(model.split('/', 1)[-1], 32)} {tokens}" if model else tokens
        line = f"{name.ljust(name_width)}  {status}{pad}  {duration:>8}  {extra}"
        lines.append(line.rstrip())
        origin = not any(kid.failed for kid in trace.children(span))
        if origin and span.failed and span.error is not None and span.error.summary():
            guide = guides[span.call_id][1] + (g.pipe if trace.children(span) else g.blank)
            message = terminal_text(span.error.summary(), _MESSAGE)
            if style.width:
                message = clip(message, max(8, style.width - len(guide)), g.ellipsis)
            lines.append(guide + style.paint(message, "error"))
    return lines


def _usage(trace: Trace, style: Style) -> list[str]:
    grouped = trace.usage_by_model()
    if not grouped:
        return []
    g = style.glyphs
    width = max(len(terminal_text(model or "(other)", 48)) for model in grouped)
    lines = ["", style.paint("Tokens by model", "bold")]
    for model, counters in grouped.items():
        parts = f" {g.bullet} ".join(
            f"{terminal_text(counter, 40)} {count:,}" for counter, count in counters.items()
        )
        label = terminal_text(model or "(other)", 48)
        lines.append(style.fit(f"  {label.ljust(width)}  {parts}"))
    return lines


def _failure(trace: Trace, style: Style) -> list[str]:
    failures = trace.failures()
    if not failures:
        return []
    first = failures[0]
    what = first.error.summary() if first.error is not None else ""
    if not what and first.status is not None:
        what = " ".join(p for p in (first.status.reason, first.status.message) if p)
    lines = ["", style.paint("Where it failed", "bold")]
    path = terminal_text(first.path or first.name)
    lines.append(style.fit(f"  {path} ({terminal_text(first.status_code or 'error')})"))
    if what:
        lines.append("  " + style.paint(terminal_text(what, _MESSAGE), "error"))
    if len(failures) > 1:
        lines.append(f"  (and {len(failures) - 1} caller(s) it propagated to)")
    return lines


def _reactions(
    reactions: Sequence[Reaction], more: bool, problem: str | None, style: Style
) -> list[str]:
    g = style.glyphs
    lines = ["", style.paint(f"Reactions ({len(reactions)}{'+' if more else ''})", "bold")]
    if problem is not None:
        lines.append(f"  could not be fetched: {terminal_text(problem, 200)}")
        return lines
    if not reactions:
        lines.append("  (none)")
        return lines
    names = [terminal_text(r.user.name or r.user.email or r.user.id, 28) for r in reactions]
    moods = [terminal_text(r.sentiment, 12) for r in reactions]
    name_width = max(len(n) for n in names)
    mood_width = max(len(m) for m in moods)
    for reaction, name, mood in zip(reactions, names, moods, strict=True):
        when = reaction.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        painted = style.paint(mood.ljust(mood_width), _SENTIMENT_ROLES.get(mood))
        text = f"  {when}  {painted}  {name.ljust(name_width)}"
        if reaction.feedback:
            room = (style.width or 10**6) - len(when) - mood_width - name_width - 10
            feedback = clip(terminal_text(reaction.feedback), min(_MESSAGE, max(12, room)))
            text += f"  “{feedback}”" if g.bullet == "·" else f'  "{feedback}"'
        lines.append(text.rstrip())
    if more:
        lines.append(f"  {g.ellipsis} more: --format json lists them all")
    return lines


def format_run(
    detail: RunDetail,
    reactions: Sequence[Reaction],
    style: Style,
    *,
    more_reactions: bool = False,
    reactions_problem: str | None = None,
) -> str:
    """The run as text: header, span tree, tokens by model, failure, reactions."""
    lines = _header(detail, style)
    trace = detail.parsed_trace
    if trace is None:
        lines += ["", "Trace: none recorded" if detail.trace is None else "Trace: not readable"]
    else:
        lines += _trace(trace, style) + _usage(trace, style) + _failure(trace, style)
    lines += _reactions(reactions, more_reactions, reactions_problem, style)
    return "\n".join(style.fit(line) for line in lines)
