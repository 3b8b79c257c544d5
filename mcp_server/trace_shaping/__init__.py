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
left out. Whatever is cut is named in ``truncated``, with how to get it: the
``timbal://runs/{run_id}/trace`` resource, or ``detail="full"``.

One job a module: :mod:`.values` (previews and cuts), :mod:`.fields` (the run's fields,
reactions and resources), :mod:`.tree` (the span tree), :mod:`.budget` (what fits),
:mod:`.text` (the text rendering), :mod:`.view` (:func:`shape_run`, assembling them).
"""

from __future__ import annotations

from .fields import resource_uris
from .tree import DETAIL_LEVELS, Detail
from .values import cut_strings, preview
from .view import RunView, shape_run

__all__ = [
    "DETAIL_LEVELS",
    "Detail",
    "RunView",
    "cut_strings",
    "preview",
    "resource_uris",
    "shape_run",
]
