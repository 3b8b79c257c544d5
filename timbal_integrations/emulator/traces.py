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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from timbal_integrations.emulator.catalog import (
    CANCEL_REASONS,
    ERRORS,
    WORKFORCES,
    Profile,
    error_message,
    profile_for,
)
from timbal_integrations.emulator.data import FIXED_END, to_epoch_ms

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


@dataclass(slots=True)
class _Node:
    path: str
    kind: str  # agent | workflow | llm | tool
    model: str = ""
    children: list[list[_Node]] = field(default_factory=list)  # slots run one after another
    weight: float = 1.0
    t0: int = 0
    t1: int = 0
    outcome: str = "success"  # success | error | timeout | cancelled | blocked
    tool_use: str = ""  # an LLM call's requested tool ("" = the final answer)
    cost: float = 0.0


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
    plan = _Plan(rng, profile, status, reason, float(cost) if isinstance(cost, int | float) else 0)
    root = plan.tree()
    _layout(rng, root, t0, t0 + total)
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
    plan = _Plan(rng, profile, status, reason, 0.05 * spans, span_budget=spans)
    root = plan.tree()
    t0 = to_epoch_ms(start)
    _layout(rng, root, t0, t0 + max(duration_ms, spans))
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


class _Plan:
    """Which calls a run makes, and which of them ends it."""

    def __init__(
        self,
        rng: random.Random,
        profile: Profile,
        status: str,
        reason: str | None,
        cost: float,
        *,
        span_budget: int | None = None,
    ) -> None:
        self.rng = rng
        self.profile = profile
        self.status = status
        self.reason = reason
        self.cost = cost
        self.span_budget = span_budget
        self.error_kind = (reason if reason in ERRORS else "ToolError") if status == "error" else ""
        self.llms: list[_Node] = []

    def _llm(self, path: str, model: str, tool_use: str = "") -> _Node:
        node = _Node(path, "llm", model=model or self.profile.model, tool_use=tool_use)
        node.weight = 1.0 + self.rng.random() * 2
        self.llms.append(node)
        return node

    def _tool(self, name: str) -> _Node:
        profile = self.profile
        node = _Node(f"{profile.root}.{name}", "tool", weight=0.3 + self.rng.random())
        if name in profile.llm_tools:
            node.children = [[self._llm(f"{node.path}.llm", profile.nested_model)]]
        return node

    def tree(self) -> _Node:
        """The root of the planned call tree, with outcomes set."""
        profile = self.profile
        root = _Node(profile.root, "agent" if profile.agent else "workflow")
        root.children = self._agent_slots() if profile.agent else self._workflow_slots()
        self._settle(root)
        total = sum(n.weight for n in self.llms) or 1.0
        for node in self.llms:
            node.cost = self.cost * node.weight / total
        return root

    def _agent_slots(self) -> list[list[_Node]]:
        rng, profile = self.rng, self.profile
        root = profile.root
        if self.span_budget is not None:
            return self._budget_slots(self.span_budget - 1)
        rounds = 1 + int(rng.random() * (4 if profile.root == "research_agent" else 3))
        slots: list[list[_Node]] = []
        for k in range(rounds):
            last = k == rounds - 1
            if last and self.error_kind in ("ToolError", "TimeoutError"):
                tools = [profile.tools[0] if self.error_kind == "ToolError" else profile.tools[-1]]
            elif last:
                break
            else:
                width = 2 if len(profile.tools) > 1 and rng.random() < 0.25 else 1
                tools = rng.sample(profile.tools, width)
            slots.append([self._llm(f"{root}.llm", "", tool_use=tools[0])])
            slots.append([self._tool(name) for name in tools])
        if self.error_kind not in ("ToolError", "TimeoutError"):
            slots.append([self._llm(f"{root}.llm", "")])
        if self.status == "success" and len(slots) > 2 and rng.random() < 0.06:
            blocked = slots[1][0]  # a guardrail stops the first tool call; the agent goes on
            blocked.outcome = "blocked"
            for slot in blocked.children:
                for node in slot:
                    self.llms.remove(node)
            blocked.children = []
        return slots

    def _budget_slots(self, budget: int) -> list[list[_Node]]:
        """Exactly ``budget`` spans under the root (for :func:`make_trace`)."""
        profile = self.profile
        slots: list[list[_Node]] = []
        names = [t for t in profile.tools if t != "wait_for_approval"]
        while budget > 0:
            if budget >= 4:  # llm, tool, and the tool's own llm if it has one
                name = names[len(slots) // 2 % len(names)]
                slots.append([self._llm(f"{profile.root}.llm", "", tool_use=name)])
                tool = self._tool(name)
                slots.append([tool])
                budget -= 2 + len(tool.children)
            else:
                slots.append([self._llm(f"{profile.root}.llm", "")])
                budget -= 1
        return slots

    def _workflow_slots(self) -> list[list[_Node]]:
        profile, rng = self.profile, self.rng
        steps: list[str] = []
        for name in profile.tools:
            repeat = 2 + int(rng.random() * 5) if name == "summarize_chunk" else 1
            steps.extend([name] * repeat)
        if self.error_kind == "ToolError":
            steps = steps[: steps.index(profile.tools[0]) + 1]
        elif self.error_kind == "RateLimitError":
            first = next((i for i, s in enumerate(steps) if s in profile.llm_tools), 0)
            steps = steps[: first + 1]
        return [[self._tool(name)] for name in steps]

    def _settle(self, root: _Node) -> None:
        """Mark the call that ends a failed or cancelled run, and the path up to it."""
        if self.status == "error":
            kind = self.error_kind
            if kind == "ValidationError":
                root.outcome = "error"
                return
            chain = _last_chain(root)
            for node in chain:
                node.outcome = "error"
            if kind == "TimeoutError":
                chain[-1].outcome = "timeout"
        elif self.status == "cancelled":
            chain = _last_chain(root)
            for node in chain:
                node.outcome = "cancelled"
            if self.reason == CANCEL_REASONS[1][0]:
                chain[-1].outcome = "timeout"


def _last_chain(root: _Node) -> list[_Node]:
    """The root and its last call, that call's last call, and so on."""
    chain = [root]
    while chain[-1].children:
        chain.append(chain[-1].children[-1][-1])
    return chain


def _layout(rng: random.Random, node: _Node, t0: int, t1: int) -> None:
    """Place ``node`` on ``[t0, t1]`` and its calls inside, one slot after another."""
    node.t0, node.t1 = t0, t1
    if not node.children:
        return
    lead = min(20, (t1 - t0) // 20)
    start, end = t0 + lead, t1 - lead
    weights = [max(n.weight for n in slot) * (0.8 + 0.4 * rng.random()) for slot in node.children]
    total = sum(weights)
    cursor = start
    for k, (slot, w) in enumerate(zip(node.children, weights, strict=True)):
        slot_end = end if k == len(weights) - 1 else cursor + int((end - start) * w / total)
        for j, child in enumerate(slot):
            length = slot_end - cursor
            child_end = slot_end if j == 0 else cursor + int(length * (0.6 + 0.4 * rng.random()))
            _layout(rng, child, cursor, child_end)
        cursor = slot_end


class _Spans:
    """Turns a laid-out call tree into span dicts."""

    def __init__(
        self,
        rng: random.Random,
        profile: Profile,
        plan: _Plan,
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
        self.spans: list[dict[str, Any]] = []
        self.own_usage: list[dict[str, int]] = []
        self.parents: list[int] = []

    def render(self, root: _Node, cut: int | None) -> list[dict[str, Any]]:
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

    def _visit(self, node: _Node, parent_id: str | None, parent: int, cut: int | None) -> None:
        if cut is not None and node.t0 > cut:
            return
        open_ = cut is not None and node.t1 > cut
        call_id = _call_id(self.rng, node.t0)
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
        if node.kind == "agent" and parent_id is None and self.rng.random() < 0.3:
            span["session"] = {"locale": "en-US", "channel": "web"}
        if node.kind == "llm" and self.profile.agent and self.rng.random() < 0.2:
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

    def _input(self, node: _Node) -> Any:
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

    def _output(self, node: _Node) -> Any:
        if node.kind == "llm":
            if node.tool_use:
                call = f"call_{self.rng.getrandbits(64):016x}"
                content = {"type": "tool_use", "id": call, "name": node.tool_use}
                return {"role": "assistant", "content": [{**content, "input": {"query": "…"}}]}
            answer = _ANSWERS[int(self.rng.random() * len(_ANSWERS))].format(topic=self.prompt)
            return {"role": "assistant", "content": [{"type": "text", "text": self._text(answer)}]}
        if node.kind == "tool":
            return {"result": self._text(f"{node.path.rsplit('.', 1)[1]}: 3 matching records")}
        answer = _ANSWERS[int(self.rng.random() * len(_ANSWERS))].format(topic=self.prompt)
        return {"role": "assistant", "content": [{"type": "text", "text": answer}]}

    def _status(self, node: _Node) -> dict[str, Any]:
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
            reason, message = CANCEL_REASONS[0]
            return {"code": "cancelled", "reason": reason, "message": message}
        if outcome == "timeout":
            if self.plan.status == "cancelled":
                reason, message = CANCEL_REASONS[1]
                return {"code": "timeout", "reason": reason, "message": message}
            return {"code": "timeout", "reason": "timeout", "message": self.message}
        return {"code": "error", "reason": None, "message": self.message}

    def _error(self, node: _Node) -> dict[str, Any] | None:
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

    def _metadata(self, node: _Node, open_: bool) -> dict[str, Any]:
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
            ttft = round(min(seconds * 0.4, 0.15 + self.rng.random() * 0.6), 3)
            output = _tokens(node)[1]
            metadata["ttft"] = ttft
            metadata["tps"] = round(output / max(0.001, seconds - ttft), 1)
        return metadata

    def _usage(self, node: _Node) -> dict[str, int]:
        if node.kind == "tool":
            name = node.path.rsplit(".", 1)[1]
            for tool, key in self.profile.counters:
                if tool == name and node.outcome == "success":
                    return {key: 1 + int(self.rng.random() * 3)}
            return {}
        if node.kind != "llm" or node.outcome in ("error", "timeout", "cancelled"):
            return {}
        input_tokens, output_tokens = _tokens(node)
        usage = {
            f"{node.model}:input_tokens": input_tokens,
            f"{node.model}:output_tokens": output_tokens,
        }
        if self.rng.random() < 0.3:
            cached = (
                "cache_read_input_tokens"
                if node.model.startswith("anthropic/")
                else ("input_cached_tokens")
            )
            usage[f"{node.model}:{cached}"] = input_tokens // 2
        return usage


def _tokens(node: _Node) -> tuple[int, int]:
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
