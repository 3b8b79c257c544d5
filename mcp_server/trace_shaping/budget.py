"""Fitting a ``get_run`` result to its size budget.

:func:`select` picks the spans of a :class:`~.tree.SpanTree` that fit: the root, every
failing span and its callers, then as many spans as fit in depth-first order.
:func:`fit` is the last guard: a result still too big (thousands of failing spans, say)
loses its tree from the end, then has its longest strings cut; the text is cut at the
budget. Whatever is cut is said in ``truncated``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .values import cut_strings, to_json

if TYPE_CHECKING:
    from timbal_integrations.trace import Span

    from .tree import SpanTree

__all__ = ["fit", "select", "size"]

_MARKER: Final = 48
"""The room of an elision marker ("… 12 span(s) left out"), per gap, in both forms."""


def size(value: Any) -> int:
    """The characters ``value`` takes as JSON (and a separator)."""
    return len(to_json(value)) + 1


def select(tree: SpanTree, struct_room: int, text_room: int) -> list[int] | None:
    """The walk positions of the spans to show; None when all of them fit."""
    struct_sizes = [size(e) for e in tree.entries]
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

    def take(i: int) -> bool:
        nonlocal used_struct, used_text
        struct = used_struct + struct_sizes[i] + _MARKER
        text = used_text + text_sizes[i] + _MARKER
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


def fit(
    data: dict[str, Any], text: str, limit: int, struct_limit: int
) -> tuple[dict[str, Any], str]:
    """``data`` within ``struct_limit`` characters of JSON and ``text`` within ``limit``,
    saying what was cut (see the module docstring)."""
    section = data.get("trace")
    tree = section.get("tree") if isinstance(section, dict) else None
    cut_tree = False
    while tree and size(data) > struct_limit:
        del tree[len(tree) // 2 :]
        cut_tree = True
    if cut_tree and isinstance(section, dict):
        section["shown"] = len(section["tree"])
        section["elided"] = section["spans"] - section["shown"]
        data.setdefault("truncated", []).append(
            f"the tree was cut to {section['shown']} span(s) to fit the structured budget"
        )
    for longest in (1_000, 200, 50):
        if size(data) <= struct_limit:
            break
        data, count = cut_strings(data, longest)
        data.setdefault("truncated", []).append(
            f"{count} string(s) cut to {longest:,} characters to fit the size budget"
        )
    if len(text) > limit:
        text = text[: limit - 120] + "\n… [the rest of this result was cut to fit; see hint]"
    return data, text
