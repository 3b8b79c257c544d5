"""A run's trace, typed: the spans Timbal's SDK records, as a tree you can walk.

``GET .../runs/{run_id}`` returns ``trace`` as an untyped object; Timbal's SDK
(``timbal/state/tracing/span.py``) fills it with one span per runnable call (the agent,
each LLM call, each tool), serialised as a list of spans or as a dict keyed by
``call_id``. :func:`parse_trace` turns either form into a :class:`Trace`::

    detail = client.get_run("01KDS4...")
    trace = detail.parsed_trace           # None when the run has no usable trace
    if trace is not None:
        for span, depth in trace.walk():   # depth first, children by start time
            print("  " * depth, span.name, span.status_code, span.duration_ms)
        for span in trace.failures():      # the deepest error spans first
            print(span.path, span.error.message if span.error else span.status)
        print(trace.usage_by_model())      # {"openai/gpt-4o-mini": {"input_tokens": 32, ...}}

Parsing is tolerant, never an error:

- a missing trace, or one that is neither a list nor a dict, is ``None``; so is a trace
  in which no entry is a span (a mapping with a string ``call_id``);
- entries that are not spans are skipped and counted (:attr:`Trace.skipped`);
- a field of the wrong type reads as absent (``t1: "soon"`` is ``None``), and every key
  beyond the SDK's is kept (:attr:`Span.extra`; :attr:`Span.raw` is the span as sent);
- the tree is built from ``parent_call_id``: a span whose parent is not in the trace is
  a root too, and spans caught in a parent cycle are walked as roots, so :meth:`walk`
  visits every span exactly once.

``usage`` is cumulative in the SDK (``RunContext.update_usage`` adds a call's tokens to
the call and every ancestor), so :meth:`Trace.usage_by_model` counts each span's *own*
usage (its usage minus its children's) and sums those: the root's usage for an SDK
trace, and still the right total for a trace whose spans hold only their own usage.
Reading, grouping and totalling usage keys is :mod:`timbal_integrations.usage`'s
(``group_usage`` and ``token_totals`` are importable from here too).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .usage import group_usage, parse_usage, token_totals, whole_number

__all__ = [
    "FAILED_CODES",
    "SPAN_KEYS",
    "RunStatus",
    "Span",
    "SpanError",
    "Trace",
    "group_usage",
    "parse_status",
    "parse_trace",
    "token_totals",
]

FAILED_CODES: Final = ("error", "timeout")
"""Status codes of a span that failed (``cancelled`` and ``blocked`` are not failures)."""

SPAN_KEYS: Final = (
    "path",
    "call_id",
    "parent_call_id",
    "t0",
    "t1",
    "elapsed",
    "input",
    "output",
    "status",
    "error",
    "usage",
    "metadata",
)
"""The keys of a span in Timbal's SDK; any other key is kept in :attr:`Span.extra`."""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RunStatus:
    """A run's or a span's status, Timbal's ``{code, reason, message}``.

    ``code`` is ``success``, ``error``, ``cancelled``, ``timeout`` or ``blocked`` (spans)
    or any other string; ``reason`` is e.g. ``stop``/``tool_use`` for an LLM call or the
    error kind; ``message`` says what happened. ``extra`` holds any other keys.
    """

    code: str
    reason: str | None = None
    message: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when ``code`` is one of :data:`FAILED_CODES`."""
        return self.code in FAILED_CODES


def parse_status(value: object) -> RunStatus | None:
    """``{code, reason, message}`` as a :class:`RunStatus`; a bare string is its code.

    Anything else (None, a number, a mapping without a string ``code``) is None.
    """
    if isinstance(value, str):
        return RunStatus(value) if value else None
    if not isinstance(value, Mapping):
        return None
    code = _text(value.get("code"))
    if not code:
        return None
    extra = {k: v for k, v in value.items() if k not in ("code", "reason", "message")}
    return RunStatus(code, _text(value.get("reason")), _text(value.get("message")), extra)


@dataclass(frozen=True, slots=True)
class SpanError:
    """What a failed call raised: ``{type, message, traceback}`` (any part may be None)."""

    type: str | None = None
    message: str | None = None
    traceback: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """``Type: message``, or whichever of the two is known."""
        parts = [p for p in (self.type, self.message) if p]
        return ": ".join(parts)


def _parse_error(value: object) -> SpanError | None:
    if isinstance(value, str):
        return SpanError(message=value) if value else None
    if not isinstance(value, Mapping) or not value:
        return None
    extra = {k: v for k, v in value.items() if k not in ("type", "message", "traceback")}
    return SpanError(
        _text(value.get("type")), _text(value.get("message")), _text(value.get("traceback")), extra
    )


@dataclass(frozen=True, slots=True)
class Span:
    """One runnable call of a run: an agent, an LLM call, a tool, a workflow step.

    Times are Unix milliseconds (``t1`` is None while the call runs). ``usage`` is the
    span's cumulative usage as the SDK records it (its own calls included);
    ``input``/``output`` are any JSON, as sent. ``extra`` holds keys beyond the SDK's
    (:data:`SPAN_KEYS`); ``raw`` is the span exactly as the server sent it.
    """

    call_id: str
    path: str
    parent_call_id: str | None
    t0: int | None
    t1: int | None
    elapsed: int | None
    status: RunStatus | None
    error: SpanError | None
    usage: Mapping[str, int]
    metadata: Mapping[str, Any]
    input: Any
    output: Any
    extra: Mapping[str, Any]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Span | None:
        """The span of a mapping as the SDK serialises it; None without a ``call_id``."""
        call_id = _text(raw.get("call_id"))
        if not call_id:
            return None
        metadata = raw.get("metadata")
        return cls(
            call_id=call_id,
            path=_text(raw.get("path")) or "",
            parent_call_id=_text(raw.get("parent_call_id")) or None,
            t0=whole_number(raw.get("t0")),
            t1=whole_number(raw.get("t1")),
            elapsed=whole_number(raw.get("elapsed")),
            status=parse_status(raw.get("status")),
            error=_parse_error(raw.get("error")),
            usage=parse_usage(raw.get("usage")),
            metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
            input=raw.get("input"),
            output=raw.get("output"),
            extra={k: v for k, v in raw.items() if k not in SPAN_KEYS},
            raw=raw,
        )

    @property
    def name(self) -> str:
        """The last part of ``path`` (``llm`` of ``support_agent.llm``), or the call id."""
        return self.path.rsplit(".", 1)[-1] if self.path else self.call_id

    @property
    def duration_ms(self) -> int | None:
        """``t1 - t0``, or ``elapsed`` when the times are missing; None while running."""
        if self.t0 is not None and self.t1 is not None:
            return self.t1 - self.t0 if self.t1 >= self.t0 else None
        running = self.t0 is not None and self.t1 is None
        if self.elapsed is not None and self.elapsed >= 0 and not running:
            return self.elapsed
        return None

    @property
    def is_open(self) -> bool:
        """True while the call runs (it has a start but no end)."""
        return self.t1 is None and self.status is None

    @property
    def status_code(self) -> str | None:
        """``status.code`` (None while running or when the span has no status)."""
        return self.status.code if self.status is not None else None

    @property
    def failed(self) -> bool:
        """True for a span that errored or timed out (an ``error`` counts too)."""
        return (self.status is not None and self.status.failed) or self.error is not None

    @property
    def kind(self) -> str | None:
        """``metadata.type`` (``Agent``, ``LLM``, ``Tool``, ``Workflow``...), if any."""
        return _text(self.metadata.get("type"))

    @property
    def model(self) -> str | None:
        """``provider/model`` of an LLM call, from its metadata (None otherwise)."""
        provider = _text(self.metadata.get("model_provider"))
        name = _text(self.metadata.get("model_name"))
        if provider and name:
            return f"{provider}/{name}"
        return name or None

    def usage_by_model(self) -> dict[str, dict[str, int]]:
        """This span's (cumulative) usage grouped by model: see :func:`group_usage`."""
        return group_usage(self.usage)


class Trace:
    """The spans of one run as a tree (see the module docstring).

    ``spans`` are in the order the server sent them; ``form`` says whether the trace
    came as a ``"list"`` or a ``"dict"`` keyed by call id; ``skipped`` counts entries
    that were not spans. Build one with :func:`parse_trace`.
    """

    __slots__ = ("_by_id", "_children", "_depth", "_order", "form", "skipped", "spans")

    def __init__(
        self, spans: list[Span], *, form: Literal["list", "dict"] = "list", skipped: int = 0
    ) -> None:
        by_id: dict[str, Span] = {}
        kept: list[Span] = []
        for span in spans:
            if span.call_id in by_id:  # a repeated call id: the first one wins
                skipped += 1
                continue
            by_id[span.call_id] = span
            kept.append(span)
        self.spans: tuple[Span, ...] = tuple(kept)
        self.form: Literal["list", "dict"] = form
        self.skipped = skipped
        self._by_id = by_id
        position = {span.call_id: i for i, span in enumerate(kept)}

        def start(span: Span) -> tuple[int, int, int]:
            t0 = span.t0
            return (0 if t0 is not None else 1, t0 or 0, position[span.call_id])

        children: dict[str | None, list[Span]] = {}
        for span in kept:
            parent = span.parent_call_id
            if parent is not None and (parent not in by_id or parent == span.call_id):
                parent = None  # an orphan (or a span naming itself) is a root
            children.setdefault(parent, []).append(span)
        for group in children.values():
            group.sort(key=start)
        self._children = children
        order: list[tuple[Span, int]] = []
        depth: dict[str, int] = {}
        seen: set[str] = set()
        starts = list(children.get(None, []))
        # Spans in a parent cycle are unreachable from a root: walk them as roots too.
        reachable = self._reachable(starts)
        unreached = [s for s in kept if s.call_id not in reachable]
        for first in [*starts, *unreached]:
            if first.call_id in seen:
                continue
            stack = [(first, 0)]
            while stack:
                span, level = stack.pop()
                if span.call_id in seen:
                    continue
                seen.add(span.call_id)
                order.append((span, level))
                depth[span.call_id] = level
                kids = children.get(span.call_id, [])
                stack.extend((kid, level + 1) for kid in reversed(kids))
        self._order = order
        self._depth = depth

    def _reachable(self, starts: list[Span]) -> set[str]:
        reached: set[str] = set()
        stack = list(starts)
        while stack:
            span = stack.pop()
            if span.call_id in reached:
                continue
            reached.add(span.call_id)
            stack.extend(self._children.get(span.call_id, []))
        return reached

    def __len__(self) -> int:
        return len(self.spans)

    def __iter__(self) -> Iterator[Span]:
        return iter(self.spans)

    def __repr__(self) -> str:
        root = self.root
        return f"Trace({len(self.spans)} spans, root={root.path if root else None!r})"

    def get(self, call_id: str) -> Span | None:
        """The span with this call id, or None."""
        return self._by_id.get(call_id)

    @property
    def roots(self) -> list[Span]:
        """Spans without a parent in the trace (one for a complete SDK trace), by start."""
        return list(self._children.get(None, []))

    @property
    def root(self) -> Span | None:
        """The run's root span: the first span with ``parent_call_id`` null (else the
        first orphan); None only when every span is caught in a parent cycle."""
        roots = self.roots
        for span in roots:
            if span.parent_call_id is None:
                return span
        return roots[0] if roots else None

    def children(self, span: Span | str) -> list[Span]:
        """The calls ``span`` (or the span with this call id) made, by start time."""
        call_id = span if isinstance(span, str) else span.call_id
        return list(self._children.get(call_id, []))

    def parent(self, span: Span) -> Span | None:
        """The span's caller, or None for a root."""
        parent = span.parent_call_id
        return self._by_id.get(parent) if parent is not None else None

    def ancestors(self, span: Span) -> list[Span]:
        """The span's callers, nearest first (cycle-safe)."""
        chain: list[Span] = []
        seen = {span.call_id}
        current = self.parent(span)
        while current is not None and current.call_id not in seen:
            chain.append(current)
            seen.add(current.call_id)
            current = self.parent(current)
        return chain

    def depth(self, span: Span) -> int:
        """How deep the span sits in :meth:`walk` (0 for a root)."""
        return self._depth.get(span.call_id, 0)

    def walk(self) -> Iterator[tuple[Span, int]]:
        """Every span once, depth first from the roots, children by start time, with its
        depth (0 for a root)."""
        return iter(self._order)

    def failures(self) -> list[Span]:
        """Spans that failed (error or timeout), the deepest first: the first is where
        the failure started, the rest are the callers it propagated to."""
        failed = [span for span, _ in self._order if span.failed]
        rank = {span.call_id: i for i, (span, _) in enumerate(self._order)}
        failed.sort(key=lambda s: (-self.depth(s), rank[s.call_id]))
        return failed

    @property
    def duration_ms(self) -> int | None:
        """The root's duration (None while running or without a root)."""
        root = self.root
        return root.duration_ms if root is not None else None

    def own_usage(self, span: Span) -> dict[str, int]:
        """The span's usage minus its children's (what the call itself used)."""
        own = dict(span.usage)
        for child in self.children(span):
            for key, count in child.usage.items():
                if key in own:
                    own[key] -= count
        return {k: v for k, v in own.items() if v > 0}

    def usage(self) -> dict[str, int]:
        """The run's usage: every span's own usage summed (see the module docstring)."""
        total: dict[str, int] = {}
        for span in self.spans:
            for key, count in self.own_usage(span).items():
                total[key] = total.get(key, 0) + count
        return total

    def usage_by_model(self) -> dict[str, dict[str, int]]:
        """:meth:`usage` grouped by model: ``{"openai/gpt-4o-mini": {"input_tokens": 32,
        "output_tokens": 10}}`` (keys split at their first colon)."""
        return group_usage(self.usage())


def parse_trace(value: object) -> Trace | None:
    """The :class:`Trace` of a run's ``trace`` field, or None when it holds no spans.

    Accepts a list of spans or a dict of spans keyed by ``call_id`` (a span lacking its
    ``call_id`` takes its key). Never raises.
    """
    entries: list[object]
    form: Literal["list", "dict"]
    if isinstance(value, list | tuple):
        entries, form = list(value), "list"
    elif isinstance(value, Mapping):
        form = "dict"
        entries = []
        for key, item in value.items():
            if isinstance(item, Mapping) and "call_id" not in item and isinstance(key, str):
                item = {**item, "call_id": key}
            entries.append(item)
    else:
        return None
    spans: list[Span] = []
    skipped = 0
    for entry in entries:
        span = Span.from_raw(entry) if isinstance(entry, Mapping) else None
        if span is None:
            skipped += 1
        else:
            spans.append(span)
    if not spans:
        return None
    return Trace(spans, form=form, skipped=skipped)
