"""Run traces: the spans Timbal's SDK records for a run, as ``RunDetail.trace`` serves them.

A trace follows ``timbal/state/tracing/span.py`` (see ``shared/timbal-trace.md``): one
span per runnable call, with ``path`` (``support_agent``, ``support_agent.llm``,
``research_agent.fetch_page.llm``), ``call_id`` (a UUIDv7 in hex), ``parent_call_id``
(null for exactly one root), ``t0``/``t1`` (epoch ms; ``t1`` null while running),
``status`` (``{code, reason, message}``; null while running), ``error``
(``{type, message, traceback}``), ``usage`` (``"openai/gpt-4o-mini:input_tokens": 32``
...), ``input``, ``output`` and ``metadata`` (LLM spans: ``type: "LLM"``,
``model_provider``, ``model_name``, ``ttft``, ``tps``).

What the generator builds, deterministically for ``(seed, run)``:

- agents: an LLM call, then tool calls (two at once sometimes; some tools make an LLM call
  of their own), repeated, then a final LLM call; workflows: their steps in order;
- every span lies inside its parent, and the root spans the run's duration exactly;
- ``usage`` is cumulative, as the SDK's ``RunContext.update_usage`` makes it: an LLM
  call's tokens are added to the call and to every ancestor, so the root holds the run's
  total (sum the ``.llm`` leaves, or read the root; summing every span counts twice).
  Tokens follow the run's cost at each model's list price;
- a failed run has an error span (a tool, an LLM call, or the root for invalid output)
  whose ``status.code`` is ``error`` (``timeout`` for a timed-out step) with the run's
  ``status_detail`` message, and every ancestor fails with it; a cancelled run's last
  call is ``cancelled``; a successful agent sometimes has a ``blocked`` tool call;
- a running run's trace stops at "now": later calls are absent, open ones have ``t1``,
  ``status`` and ``output`` null and only their finished children's usage;
- about a third of traces are serialised as a dict keyed by ``call_id``, the rest as a
  list; most spans carry ``elapsed``; some carry keys beyond the SDK's (``session`` on a
  root, ``memory`` on an agent's LLM calls, ``x_sampling``).

:func:`make_trace` builds a big trace (e.g. 200 spans with long inputs and outputs) for
token-budget benchmarks; pass it in a run's ``trace`` (``Emulator.add_run``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from timbal_integrations.emulator.catalog import (
    CANCEL_REASONS,
    WORKFORCES,
    Profile,
    error_message,
    profile_for,
)
from timbal_integrations.emulator.data import FIXED_END, to_epoch_ms
from timbal_integrations.emulator.trace_plan import Node, Plan, layout

__all__ = ["build_trace", "make_trace"]

# USD per million tokens (input, output).
_PRICES: Final[dict[str, tuple[float, float]]] = {
    "openai/gpt-4o-mini": (0.15, 0.60),
    "openai/gpt-4o": (2.50, 10.0),
    "openai/gpt-3.5-turbo": (0.50, 1.50),
    "anthropic/claude-sonnet-4-20250514": (3.0, 15.0),
    "anthropic/claude-3-5-haiku-20241022": (0.80, 4.0),
}
_BASE_DURATION: Final[dict[str, float]] = {wf[0]: wf[7] for wf in WORKFORCES}
_SYSTEM_PROMPT: Final = "You are a helpful assistant for {name}. Be concise and cite sources."
_ANSWERS: Final[tuple[str, ...]] = (
    "Here is what I found. {topic} The short version: it is handled, and I have noted the "
    "details on the ticket.",
    "Done. {topic} I checked the records and everything is consistent; nothing else is "
    "needed from you.",
    "Summary: {topic} Two points need a follow-up, listed below with their owners.",
)
_FILLER: Final = (
    "The customer has been with us since 2021 and is on the enterprise plan. "
    "Previous tickets mention a delayed shipment and a billing question, both resolved. "
    "The knowledge base article KB-2231 covers the return window and the exceptions. "
    "Internal note: escalate only if the order value exceeds the approval threshold. "
)
_TRACEBACK: Final = (
    "Traceback (most recent call last):\n"
    '  File "/app/.venv/lib/python3.12/site-packages/timbal/core/runnable.py", line 812, '
    "in __call__\n    async for event, final_output, handler_collector in "
    "self._execute_handler(\n"
    '  File "/app/{module}.py", line {line}, in {function}\n    {statement}\n'
    "{kind}: {message}\n"
)


def build_trace(
    seed: int,
    run: Mapping[str, Any],
    *,
    planned_ms: int | None = None,
    cut_ms: int | None = None,
) -> list[dict[str, Any]] | dict[str, dict[str, Any]]:
    """The trace of ``run`` (a ``RunDetail``-shaped mapping) as the API serves it.

    A finished run's trace spans its ``duration_ms``. A ``running`` run's trace is cut at
    ``cut_ms`` (its "now"); ``planned_ms`` is how long it will run in all, if known
    (otherwise drawn, and longer than it has run so far).
    """
    rng = random.Random(f"timbal-emulator-trace:{seed}:{run.get('id')}")
    profile = profile_for(run.get("workforce"))
    t0 = _created_ms(run)
    status = str(run.get("status"))
    running = status == "running"
    duration = run.get("duration_ms")
    if running or not isinstance(duration, int) or duration < 0:
        base = _BASE_DURATION.get(_workforce_id(run), 3_000.0)
        total = planned_ms or max(5, int(base * rng.lognormvariate(0.0, 0.6)))
        if running and cut_ms is not None and planned_ms is None:
            total = max(total, int((cut_ms - t0) * (1.2 + rng.random())) + 1)
    else:
        total = duration
    if running:
        cut = min(cut_ms if cut_ms is not None else t0 + total // 2, t0 + total - 1)
    else:
        cut = None
    detail = run.get("status_detail")
    reason = detail.get("reason") if isinstance(detail, Mapping) else None
    cost = run.get("cost_usd")
    plan = Plan(rng, profile, status, reason, float(cost) if isinstance(cost, int | float) else 0)
    root = plan.tree()
    layout(rng, root, t0, t0 + total)
    message = detail.get("message") if isinstance(detail, Mapping) else None
    spans = _Spans(rng, profile, plan, str(message or ""), run).render(root, cut)
    return _serialise(rng, spans)


def make_trace(
    spans: int = 200,
    *,
    text_chars: int = 2_000,
    seed: int = 0,
    start: datetime = FIXED_END,
    duration_ms: int = 600_000,
    status: str = "success",
) -> list[dict[str, Any]]:
    """A research agent's trace of exactly ``spans`` spans with long inputs and outputs.

    Each LLM call's input carries about ``text_chars`` characters of conversation, and
    each tool returns about as much. Put it in a run's ``trace`` to benchmark how
    clients cope with big traces.

    Raises:
        ValueError: ``spans`` < 1, ``text_chars`` < 0, or ``status`` is not
            ``success`` or ``error``.
    """
    if spans < 1 or text_chars < 0 or status not in ("success", "error"):
        raise ValueError("make_trace: spans must be >= 1, text_chars >= 0, status success|error")
    rng = random.Random(f"timbal-emulator-big-trace:{seed}")
    profile = profile_for({"id": "wf_research"})
    reason = "ToolError" if status == "error" else None
    plan = Plan(rng, profile, status, reason, 0.05 * spans, span_budget=spans)
    root = plan.tree()
    t0 = to_epoch_ms(start)
    layout(rng, root, t0, t0 + max(duration_ms, spans))
    run = {"id": f"big-{seed}", "status": status}
    message = error_message("ToolError", profile) if status == "error" else ""
    renderer = _Spans(rng, profile, plan, message, run, text_chars=text_chars)
    return renderer.render(root, None)


def _created_ms(run: Mapping[str, Any]) -> int:
    value = run.get("created_at")
    if isinstance(value, str):
        try:
            return to_epoch_ms(datetime.fromisoformat(value))
        except ValueError:
            pass
    return to_epoch_ms(FIXED_END)


def _workforce_id(run: Mapping[str, Any]) -> str:
    workforce = run.get("workforce")
    return str(workforce.get("id")) if isinstance(workforce, Mapping) else ""


class _Spans:
    """Turns a laid-out call tree into span dicts."""

    def __init__(
        self,
        rng: random.Random,
        profile: Profile,
        plan: Plan,
        message: str,
        run: Mapping[str, Any],
        *,
        text_chars: int = 0,
    ) -> None:
        self.rng = rng
        self.profile = profile
        self.plan = plan
        self.message = message or error_message(plan.error_kind or "ToolError", profile)
        self.text_chars = text_chars
        self.prompt = profile.prompts[int(rng.random() * len(profile.prompts))]
        self.elapsed = rng.random() < 0.85
        self.node_rng = rng
        self.spans: list[dict[str, Any]] = []
        self.own_usage: list[dict[str, int]] = []
        self.parents: list[int] = []

    def render(self, root: Node, cut: int | None) -> list[dict[str, Any]]:
        """Every span of the tree that has started by ``cut`` (all when None)."""
        self._visit(root, None, -1, cut)
        # Usage is recorded when a call ends, and added to it and every ancestor.
        for i, own in enumerate(self.own_usage):
            if not own or self.spans[i]["t1"] is None:
                continue
            j = i
            while j >= 0:
                usage = self.spans[j]["usage"]
                for key, value in own.items():
                    usage[key] = usage.get(key, 0) + value
                j = self.parents[j]
        return self.spans

    def _visit(self, node: Node, parent_id: str | None, parent: int, cut: int | None) -> None:
        if cut is not None and node.t0 > cut:
            return
        open_ = cut is not None and node.t1 > cut
        rng = self.node_rng = random.Random(node.seed)
        call_id = _call_id(rng, node.t0)
        session, memory = rng.random() < 0.3, rng.random() < 0.2  # drawn first: cut or not
        span: dict[str, Any] = {
            "path": node.path,
            "call_id": call_id,
            "parent_call_id": parent_id,
            "t0": node.t0,
            "t1": None if open_ else node.t1,
        }
        if self.elapsed:
            span["elapsed"] = None if open_ else node.t1 - node.t0
        span["input"] = self._input(node)
        span["status"] = None if open_ else self._status(node)
        span["output"] = None if open_ or node.outcome != "success" else self._output(node)
        span["error"] = None if open_ else self._error(node)
        span["usage"] = {}
        span["metadata"] = self._metadata(node, open_)
        if node.kind == "agent" and parent_id is None and session:
            span["session"] = {"locale": "en-US", "channel": "web"}
        if node.kind == "llm" and self.profile.agent and memory:
            span["memory"] = [{"role": "user", "content": self.prompt}]
        index = len(self.spans)
        self.spans.append(span)
        self.parents.append(parent)
        self.own_usage.append(self._usage(node))
        for slot in node.children:
            for child in slot:
                self._visit(child, call_id, index, cut)

    def _text(self, base: str) -> str:
        if self.text_chars <= len(base):
            return base
        repeat = _FILLER * (self.text_chars // len(_FILLER) + 1)
        return (base + " " + repeat)[: self.text_chars]

    def _input(self, node: Node) -> Any:
        profile = self.profile
        if node.kind in ("agent", "workflow"):
            return {"prompt": self.prompt}
        if node.kind == "llm":
            model = node.model.split("/", 1)[1]
            messages: list[dict[str, Any]] = [
                {"role": "user", "content": [{"type": "text", "text": self._text(self.prompt)}]}
            ]
            return {
                "model": model,
                "system_prompt": _SYSTEM_PROMPT.format(name=profile.root.replace("_", " ")),
                "messages": messages,
                "tools": list(profile.tools) if profile.agent else [],
            }
        name = node.path.rsplit(".", 1)[1]
        return {"query": self.prompt[:80]} if profile.agent else {"step": name, "input": "ticket"}

    def _output(self, node: Node) -> Any:
        if node.kind == "llm":
            if node.tool_use:
                call = f"call_{self.node_rng.getrandbits(64):016x}"
                content = {"type": "tool_use", "id": call, "name": node.tool_use}
                return {"role": "assistant", "content": [{**content, "input": {"query": "…"}}]}
            answer = _ANSWERS[int(self.node_rng.random() * len(_ANSWERS))].format(topic=self.prompt)
            return {"role": "assistant", "content": [{"type": "text", "text": self._text(answer)}]}
        if node.kind == "tool":
            return {"result": self._text(f"{node.path.rsplit('.', 1)[1]}: 3 matching records")}
        answer = _ANSWERS[int(self.node_rng.random() * len(_ANSWERS))].format(topic=self.prompt)
        return {"role": "assistant", "content": [{"type": "text", "text": answer}]}

    def _status(self, node: Node) -> dict[str, Any]:
        outcome = node.outcome
        if outcome == "success":
            reason = None
            if node.kind == "llm":
                anthropic = node.model.startswith("anthropic/")
                if node.tool_use:
                    reason = "tool_use" if anthropic else "tool_calls"
                else:
                    reason = "end_turn" if anthropic else "stop"
            return {"code": "success", "reason": reason, "message": None}
        if outcome == "blocked":
            name = node.path.rsplit(".", 1)[1]
            message = f"tool '{name}' blocked by guardrail: output contained a card number"
            return {"code": "blocked", "reason": "guardrail", "message": message}
        if outcome == "cancelled":
            timed_out = self.plan.reason == CANCEL_REASONS[1][0]
            reason, message = CANCEL_REASONS[1 if timed_out else 0]
            return {"code": "cancelled", "reason": reason, "message": message}
        if outcome == "timeout":
            if self.plan.status == "cancelled":
                reason, message = CANCEL_REASONS[1]
                return {"code": "timeout", "reason": reason, "message": message}
            return {"code": "timeout", "reason": "timeout", "message": self.message}
        return {"code": "error", "reason": None, "message": self.message}

    def _error(self, node: Node) -> dict[str, Any] | None:
        if node.outcome not in ("error", "timeout") or self.plan.status != "error":
            return None
        kind = self.plan.error_kind
        module = self.profile.root
        name = node.path.rsplit(".", 1)[-1]
        traceback = _TRACEBACK.format(
            module=module,
            line=40 + len(name) * 3,
            function=name,
            statement=f"return await {name}(**kwargs)",
            kind=kind,
            message=self.message,
        )
        return {"type": kind, "message": self.message, "traceback": traceback}

    def _metadata(self, node: Node, open_: bool) -> dict[str, Any]:
        if node.kind == "agent":
            return {"type": "Agent"}
        if node.kind == "workflow":
            return {"type": "Workflow"}
        if node.kind == "tool":
            return {"type": "Tool"}
        provider, name = node.model.split("/", 1)
        metadata: dict[str, Any] = {"type": "LLM", "model_provider": provider, "model_name": name}
        if not open_ and node.outcome == "success":
            seconds = max(0.001, (node.t1 - node.t0) / 1000)
            ttft = round(min(seconds * 0.4, 0.15 + self.node_rng.random() * 0.6), 3)
            output = _tokens(node)[1]
            metadata["ttft"] = ttft
            metadata["tps"] = round(output / max(0.001, seconds - ttft), 1)
        return metadata

    def _usage(self, node: Node) -> dict[str, int]:
        if node.kind == "tool":
            name = node.path.rsplit(".", 1)[1]
            for tool, key in self.profile.counters:
                if tool == name and node.outcome == "success":
                    return {key: 1 + int(self.node_rng.random() * 3)}
            return {}
        if node.kind != "llm" or node.outcome in ("error", "timeout", "cancelled"):
            return {}
        input_tokens, output_tokens = _tokens(node)
        usage = {
            f"{node.model}:input_tokens": input_tokens,
            f"{node.model}:output_tokens": output_tokens,
        }
        if self.node_rng.random() < 0.3:
            cached = (
                "cache_read_input_tokens"
                if node.model.startswith("anthropic/")
                else ("input_cached_tokens")
            )
            usage[f"{node.model}:{cached}"] = input_tokens // 2
        return usage


def _tokens(node: Node) -> tuple[int, int]:
    """Input and output tokens that cost about ``node.cost`` at the model's price."""
    price_in, price_out = _PRICES.get(node.model, (0.5, 1.5))
    input_tokens = max(20, math.floor(node.cost * 0.7 / price_in * 1e6))
    output_tokens = max(1, math.floor(node.cost * 0.3 / price_out * 1e6))
    return input_tokens, output_tokens


def _call_id(rng: random.Random, t0: int) -> str:
    """A UUIDv7 without dashes, as the SDK's ``uuid7(...).replace('-', '')``."""
    variant = 8 | rng.getrandbits(2)
    return (
        f"{t0 & 0xFFFFFFFFFFFF:012x}7{rng.getrandbits(12):03x}{variant:x}{rng.getrandbits(60):015x}"
    )


def _serialise(
    rng: random.Random, spans: list[dict[str, Any]]
) -> list[dict[str, Any]] | dict[str, dict[str, Any]]:
    if rng.random() < 0.1:
        for span in spans:
            span["x_sampling"] = {"rate": 1.0}
    if rng.random() < 0.33:
        return {span["call_id"]: span for span in spans}
    return spans
