"""The calls a generated run makes: which, in what order, when, and which one ends it.

:class:`Plan` builds a run's call tree (an agent's LLM and tool calls, or a workflow's
steps) and marks the call that fails or is cancelled; :func:`layout` places every call
inside its parent's time. :mod:`.traces` turns the tree into spans.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from timbal_integrations.emulator.catalog import CANCEL_REASONS, ERRORS, Profile

__all__ = ["Node", "Plan", "layout"]


@dataclass(slots=True)
class Node:
    """One call: path, kind, children (slots, run one after another), time, outcome."""

    path: str
    kind: str  # agent | workflow | llm | tool
    model: str = ""
    children: list[list[Node]] = field(default_factory=list)  # slots run one after another
    weight: float = 1.0
    t0: int = 0
    t1: int = 0
    outcome: str = "success"  # success | error | timeout | cancelled | blocked
    tool_use: str = ""  # an LLM call's requested tool ("" = the final answer)
    cost: float = 0.0
    seed: int = 0  # the call's own random draws: the same whether or not the trace is cut


class Plan:
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
        """Plan a run of ``profile`` that ends ``status`` (``reason``: its status_detail's),
        costing ``cost`` USD; ``span_budget`` asks for exactly that many spans."""
        self.rng = rng
        self.profile = profile
        self.status = status
        self.reason = reason
        self.cost = cost
        self.span_budget = span_budget
        self.error_kind = (reason if reason in ERRORS else "ToolError") if status == "error" else ""
        self.llms: list[Node] = []

    def _llm(self, path: str, model: str, tool_use: str = "") -> Node:
        node = Node(path, "llm", model=model or self.profile.model, tool_use=tool_use)
        node.weight = 1.0 + self.rng.random() * 2
        self.llms.append(node)
        return node

    def _tool(self, name: str) -> Node:
        profile = self.profile
        node = Node(f"{profile.root}.{name}", "tool", weight=0.3 + self.rng.random())
        if name in profile.llm_tools:
            node.children = [[self._llm(f"{node.path}.llm", profile.nested_model)]]
        return node

    def tree(self) -> Node:
        """The root of the planned call tree, with outcomes set."""
        profile = self.profile
        root = Node(profile.root, "agent" if profile.agent else "workflow")
        root.children = self._agent_slots() if profile.agent else self._workflow_slots()
        self._settle(root)
        total = sum(n.weight for n in self.llms) or 1.0
        for node in self.llms:
            node.cost = self.cost * node.weight / total
        return root

    def _agent_slots(self) -> list[list[Node]]:
        rng, profile = self.rng, self.profile
        root = profile.root
        if self.span_budget is not None:
            return self._budget_slots(self.span_budget - 1)
        rounds = 1 + int(rng.random() * (4 if profile.root == "research_agent" else 3))
        slots: list[list[Node]] = []
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

    def _budget_slots(self, budget: int) -> list[list[Node]]:
        """Exactly ``budget`` spans under the root (for :func:`make_trace`)."""
        profile = self.profile
        slots: list[list[Node]] = []
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

    def _workflow_slots(self) -> list[list[Node]]:
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

    def _settle(self, root: Node) -> None:
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


def _last_chain(root: Node) -> list[Node]:
    """The root and its last call, that call's last call, and so on."""
    chain = [root]
    while chain[-1].children:
        chain.append(chain[-1].children[-1][-1])
    return chain


def layout(rng: random.Random, node: Node, t0: int, t1: int) -> None:
    """Place ``node`` on ``[t0, t1]`` and its calls inside, one slot after another."""
    node.t0, node.t1 = t0, t1
    node.seed = rng.getrandbits(64)
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
            layout(rng, child, cursor, child_end)
        cursor = slot_end
