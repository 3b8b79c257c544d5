"""The text a model reads of a ``get_run`` result: the run, where it failed, tokens by
model, the span tree (one line per span, with markers where spans were left out), the
root's input and output, the reactions, what was cut and how to get it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ..readable import readable, readable_json
from ..shaping import RUN_FIELDS
from .values import indent, one_line

if TYPE_CHECKING:
    from .tree import SpanTree

__all__ = ["render_text"]

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
"""The keys the text gives their own place (others are listed as "other fields")."""


def render_text(data: Mapping[str, Any], tree: SpanTree | None, chosen: list[int] | None) -> str:
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
        f"user {one_line(user.get('name') or '-')} <{one_line(user.get('email') or '-')}> "
        f"(user_id {user.get('id')})"
    )
    force = data.get("workforce")
    if force:
        who += (
            f" · workforce {one_line(force.get('name') or '-')} ({force.get('type', '-')}, "
            f"workforce_id {force.get('id')})"
        )
    if data.get("sentiment"):
        who += f" · sentiment {data['sentiment']}"
    lines.append(who)
    thread = [f"{k} {data[k]}" for k in ("group_id", "parent_id") if data.get(k)]
    if data.get("idempotency_key") and data["idempotency_key"] != data["id"]:
        thread.append(f"idempotency_key {one_line(data['idempotency_key'], 120)}")
    if thread:
        lines.append(" · ".join(thread))
    detail = data.get("status_detail")
    if isinstance(detail, Mapping):
        said = " · ".join(one_line(v) for v in (detail.get("code"), detail.get("reason")) if v)
        message = f": {one_line(detail['message'])}" if detail.get("message") else ""
        lines.append(f"status_detail: {said}{message}")
    elif detail is not None:
        lines.append(f"status_detail: {one_line(detail)}")
    others = {k: v for k, v in data.items() if k not in _TEXT_KNOWN}
    if others:
        lines.append(f"other fields: {readable_json(others)}")
    section = data.get("trace")
    if isinstance(section, Mapping):
        for failure in section.get("failures", ())[:1]:
            rest = len(section.get("failures", ())) - 1
            lines.append(
                f"failed at {one_line(failure['path'])} ({failure.get('status')}): "
                f"{one_line(failure.get('error') or '-')}"
                + (f" (then {rest} caller(s))" if rest else "")
            )
            if failure.get("input") is not None:
                lines.append(f"  its input: {one_line(failure['input'])}")
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
                    lines.append(f"{indent(depth)}… {i - previous - 1} span(s) left out")
                lines.append(tree.lines[i])
                previous = i
            if previous != len(tree.order) - 1:
                depth = tree.order[previous + 1][1]
                left = len(tree.order) - previous - 1
                lines.append(f"{indent(depth)}… {left} span(s) left out")
        for name in ("root_input", "root_output"):
            if section.get(name) is not None:
                lines.append(f"{name.replace('_', ' ')}: {one_line(section[name])}")
    elif data.get("trace") is None:
        lines.append("trace: none")
    reactions = data.get("reactions") or []
    more = "+" if data.get("reactions_more") else ""
    if data.get("reactions_error"):
        lines.append(f"reactions: could not be read: {one_line(data['reactions_error'])}")
    else:
        lines.append(
            f"reactions ({len(reactions)}{more}, newest first):" if reactions else "reactions: none"
        )
    for row in reactions:
        reactor = row.get("user", {})
        said = f': "{one_line(row["feedback"])}"' if row.get("feedback") else ""
        name = one_line(reactor.get("name") or reactor.get("id"))
        lines.append(
            f"  {row['created_at']} {row['sentiment']} {name}"
            f" <{one_line(reactor.get('email') or '-')}>{said}"
        )
    for note in data.get("truncated", ()):
        lines.append(f"cut: {note}")
    if data.get("hint"):
        lines.append(str(data["hint"]))
    uris = data["resources"]
    lines.append(f"resources: {uris['run']} (the run as JSON), {uris['trace']} (its trace as JSON)")
    return "\n".join(lines)
