"""The emulator's cast: users, workforces, what each workforce runs, and what users say.

Plain tables shared by the run generator (:mod:`.data`), the traces (:mod:`.traces`) and
the reactions (:mod:`.reactions`). Dicts handed out here are shared between runs: treat
them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CANCEL_REASONS",
    "ERRORS",
    "USERS",
    "USER_WEIGHTS",
    "WORKFORCES",
    "Profile",
    "error_message",
    "feedback_pool",
    "profile_for",
    "status_detail",
    "user_refs",
    "workforce_refs",
]

USERS: Final[tuple[tuple[str, str, str, str | None], ...]] = (
    # id, name, email, photo_url (None: the key is omitted)
    ("usr_ada", "Ada Lovelace", "ada@acme.test", "https://avatars.example.test/ada.png"),
    ("usr_grace", "Grace Hopper", "grace@globex.test", "https://avatars.example.test/grace.png"),
    ("usr_alan", "Alan Turing", "alan@initech.test", None),
    ("usr_katherine", "Katherine Johnson", "katherine@acme.test", None),
    (
        "usr_linus",
        "Linus Torvalds",
        "linus@umbrella.test",
        "https://avatars.example.test/linus.png",
    ),
    ("usr_margaret", "Margaret Hamilton", "margaret@hooli.test", None),
    ("usr_dennis", "Dennis Ritchie", "dennis@globex.test", None),
    ("usr_barbara", "Barbara Liskov", "barbara@initech.test", "https://avatars.example.test/b.png"),
    ("usr_edsger", "Edsger Dijkstra", "edsger@acme.test", None),
    ("usr_frances", "Frances Allen", "frances@umbrella.test", None),
    ("usr_ken", "Ken Thompson", "ken@hooli.test", "https://avatars.example.test/ken.png"),
    ("usr_radia", "Radia Perlman", "radia@acme.test", None),
)
"""Every user: id, name, email, photo URL."""

USER_WEIGHTS: Final[tuple[float, ...]] = (20, 16, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1)
"""Activity weights (a few power users, a long tail)."""

WORKFORCES: Final[
    tuple[tuple[str, str, str, str | None, bool, str | None, float, float, float], ...]
] = (
    # id, name, type, uid, url?, description, weight, base duration (ms), base cost (USD)
    ("wf_support", "support-agent", "agent", "support-agent", True,
     "Answers customer support questions.", 30, 4_000, 0.012),
    ("wf_triage", "ticket-triage", "workflow", "ticket-triage", True,
     "Classifies and routes incoming tickets.", 18, 1_500, 0.003),
    ("wf_sales", "sales-assistant", "agent", "sales-assistant", False, None, 14, 6_000, 0.020),
    ("wf_report", "nightly-report", "workflow", None, False,
     "Builds the daily usage report.", 6, 45_000, 0.090),
    ("wf_research", "research-agent", "agent", "research-agent", True,
     "Searches the web and summarises findings.", 12, 20_000, 0.060),
    ("wf_summarizer", "doc-summarizer", "workflow", "doc-summarizer", False, None,
     10, 3_000, 0.008),
    ("wf_onboarding", "onboarding-bot", "agent", None, False, None, 6, 2_500, 0.006),
    ("wf_legacy_faq", "legacy-faq-bot", "agent", "faq-bot", False,
     "Superseded by support-agent.", 4, 2_000, 0.004),
)  # fmt: skip
"""Every workforce component; the last one is soft-deleted part-way through the span."""

ERRORS: Final[tuple[str, ...]] = ("ToolError", "TimeoutError", "RateLimitError", "ValidationError")
"""Why runs fail, by index (the generator draws an index)."""

CANCEL_REASONS: Final[tuple[tuple[str, str], ...]] = (
    ("interrupted", "cancelled by user"),
    ("timeout", "run exceeded its time limit"),
)
"""Why runs are cancelled: (status reason, message), by index."""


def user_refs() -> list[dict[str, Any]]:
    """Every user as a ``UserRef`` dict (some with ``photo_url`` null or left out)."""
    users: list[dict[str, Any]] = []
    for i, (uid, name, email, photo) in enumerate(USERS):
        user: dict[str, Any] = {"id": uid, "name": name, "email": email}
        if photo is not None:
            user["photo_url"] = photo
        elif i % 3 == 0:
            user["photo_url"] = None  # the spec allows an explicit null too
        users.append(user)
    return users


def workforce_refs(deleted_at_ms: int) -> list[dict[str, Any]]:
    """Every workforce as a ``WorkforcePreview`` dict; the last one deleted at ``deleted_at_ms``."""
    workforces: list[dict[str, Any]] = []
    for i, (wid, name, kind, uid, has_url, description, *_rest) in enumerate(WORKFORCES):
        wf: dict[str, Any] = {"id": wid, "name": name, "type": kind}
        if uid is not None:
            wf["uid"] = uid
        if has_url:
            wf["url"] = f"https://api.timbal.ai/apps/{name}/run"
        if description is not None:
            wf["description"] = description
        if i == len(WORKFORCES) - 1:
            wf["deleted_at"] = deleted_at_ms
        workforces.append(wf)
    return workforces


@dataclass(frozen=True, slots=True)
class Profile:
    """What a workforce's runs do: the spans of its traces and the words of its users."""

    root: str  # the root span's path
    agent: bool  # an agent (LLM loop with tool calls) or a workflow (fixed steps)
    model: str  # "provider/model" of its LLM calls
    tools: tuple[str, ...]  # an agent's tools, or a workflow's steps in order
    llm_tools: tuple[str, ...] = ()  # tools/steps that make an LLM call of their own
    nested_model: str = ""  # model of those nested calls ("" = the same model)
    counters: tuple[tuple[str, str], ...] = ()  # (tool, usage key) of non-LLM usage
    prompts: tuple[str, ...] = ("Help me with this.",)
    complaints: tuple[str, ...] = ()  # feedback on a run that succeeded but was wrong

    @property
    def primary_tool(self) -> str:
        """The tool whose failures the generated error messages name."""
        return self.tools[0]


_PROFILES: Final[dict[str, Profile]] = {
    "wf_support": Profile(
        "support_agent", True, "openai/gpt-4o-mini",
        ("search_kb", "get_order", "create_ticket", "send_reply"),
        prompts=(
            "Where is my order #4417? It was supposed to arrive on Monday.",
            "How do I reset my password? The link in the email has expired.",
            "I was charged twice for the same subscription this month.",
            "Can I change the shipping address of an order that already shipped?",
        ),
        complaints=(
            "Answered about the wrong order: the customer asked about #4417, not #4471.",
            "Quoted the old refund policy (30 days); it has been 14 days since March.",
            "Far too long. The customer wanted a yes or no.",
            "Promised a phone callback, which we do not offer.",
        ),
    ),
    "wf_triage": Profile(
        "ticket_triage", False, "openai/gpt-4o-mini",
        ("load_ticket", "classify", "route", "notify"), llm_tools=("classify",),
        prompts=(
            "Checkout returns 500 for EU customers since 08:00.",
            "Invoice PDF shows the wrong VAT number.",
            "Feature request: export dashboards as CSV.",
        ),
        complaints=(
            "Routed a billing dispute to Tech Support.",
            "Marked an outage report as low priority.",
        ),
    ),
    "wf_sales": Profile(
        "sales_assistant", True, "anthropic/claude-sonnet-4-20250514",
        ("crm_lookup", "get_pricing", "draft_email"),
        prompts=(
            "Draft a follow-up to Globex about the enterprise plan.",
            "Summarise our last three calls with Initech and suggest next steps.",
        ),
        complaints=(
            "The draft uses last year's list price.",
            "Addressed the contact by the wrong name.",
        ),
    ),
    "wf_report": Profile(
        "nightly_report", False, "openai/gpt-4o",
        ("fetch_usage", "aggregate", "write_summary", "upload"), llm_tools=("write_summary",),
        prompts=("Build the usage report for yesterday.",),
        complaints=(
            "Yesterday's totals are missing the EU region.",
            "The chart labels overlap; unreadable.",
        ),
    ),
    "wf_research": Profile(
        "research_agent", True, "openai/gpt-4o",
        ("search_web", "fetch_page", "wait_for_approval"), llm_tools=("fetch_page",),
        nested_model="openai/gpt-4o-mini",
        counters=(("search_web", "brave/search:requests"),),
        prompts=(
            "What changed in the EU AI Act obligations for general-purpose models this year?",
            "Compare the three largest vector databases on price and latency.",
            "Find recent benchmarks of small open-weight models for function calling.",
        ),
        complaints=(
            "Cited a 2019 article as current.",
            "The summary misses the main finding of the second source.",
            "Made up a statistic: no source says 37%.",
        ),
    ),
    "wf_summarizer": Profile(
        "doc_summarizer", False, "anthropic/claude-3-5-haiku-20241022",
        ("load_document", "summarize_chunk", "merge"), llm_tools=("summarize_chunk", "merge"),
        prompts=("Summarise contract MSA-2291 for the legal review.",),
        complaints=(
            "The summary drops the termination clause.",
            "Summarised the appendix instead of the contract.",
        ),
    ),
    "wf_onboarding": Profile(
        "onboarding_bot", True, "openai/gpt-4o-mini",
        ("create_account", "send_welcome_email"),
        prompts=("Set up an account for Jamie Park at Hooli, admin role.",),
        complaints=(
            "Sent the welcome email twice.",
            "Asked for details the user had already given.",
        ),
    ),
    "wf_legacy_faq": Profile(
        "legacy_faq_bot", True, "openai/gpt-3.5-turbo", ("search_faq",),
        prompts=("What are your opening hours?", "Do you ship to Canada?"),
        complaints=("The link in the answer is dead.", "Out-of-date answer."),
    ),
}  # fmt: skip

_DEFAULT_AGENT: Final = Profile("agent", True, "openai/gpt-4o-mini", ("search", "lookup"))
_DEFAULT_WORKFLOW: Final = Profile(
    "workflow", False, "openai/gpt-4o-mini", ("load", "process", "save"), llm_tools=("process",)
)


def profile_for(workforce: Any) -> Profile:
    """The profile of a run's ``workforce`` (a generic one for unknown workforces)."""
    if isinstance(workforce, dict):
        known = _PROFILES.get(workforce.get("id", ""))
        if known is not None:
            return known
        if workforce.get("type") == "workflow":
            return _DEFAULT_WORKFLOW
    return _DEFAULT_AGENT


def error_message(kind: str, profile: Profile) -> str:
    """The message of a failure of ``kind`` in a run of ``profile``."""
    what = "tool" if profile.agent else "step"
    if kind == "ToolError":
        return f"{what} '{profile.primary_tool}' failed: upstream returned 502"
    if kind == "TimeoutError":
        return f"{what} '{profile.tools[-1]}' timed out after 60s"
    if kind == "RateLimitError":
        return f"{profile.model.split('/')[0]} rate limit exceeded (429); retries exhausted"
    return "output did not match the expected schema: 'answer' is a required property"


_DETAILS: dict[tuple[str, str, int], dict[str, Any]] = {}


def status_detail(status: str, workforce: Any, index: int = 0) -> dict[str, Any] | None:
    """A run's ``status_detail`` (``{code, reason, message}``), shared; None while running.

    ``index`` picks the error kind (:data:`ERRORS`) or the cancel reason
    (:data:`CANCEL_REASONS`); it is ignored for other statuses.
    """
    if status not in ("success", "error", "cancelled"):
        return None
    profile = profile_for(workforce)
    key = (status, profile.root, index if status != "success" else 0)
    detail = _DETAILS.get(key)
    if detail is None:
        if status == "success":
            reason = None
            if profile.agent:
                reason = "end_turn" if profile.model.startswith("anthropic/") else "stop"
            detail = {"code": "success", "reason": reason, "message": None}
        elif status == "error":
            kind = ERRORS[index % len(ERRORS)]
            detail = {"code": "error", "reason": kind, "message": error_message(kind, profile)}
        else:
            reason, message = CANCEL_REASONS[index % len(CANCEL_REASONS)]
            detail = {"code": "cancelled", "reason": reason, "message": message}
        _DETAILS[key] = detail
    return detail


_PRAISE: Final[tuple[str, ...]] = (
    "Spot on, thanks!",
    "Saved me twenty minutes.",
    "Exactly what I needed.",
    "Clear and short. More like this.",
    "Perfect, sent it as is.",
)
_ERROR_COMPLAINTS: Final[dict[str, tuple[str, ...]]] = {
    "ToolError": (
        "It failed halfway with an upstream error instead of an answer.",
        "The lookup broke again (502). Third time this week.",
    ),
    "TimeoutError": (
        "Spun for a minute, then timed out with nothing to show.",
        "Timed out on a simple question.",
    ),
    "RateLimitError": (
        "Got 'rate limit exceeded' in the middle of a customer chat.",
        "Failed with a rate-limit error during the demo.",
    ),
    "ValidationError": (
        "Returned malformed output and the next step choked on it.",
        "Broken JSON again; the integration dropped the answer.",
    ),
}
_GENERIC_COMPLAINTS: Final[tuple[str, ...]] = (
    "Wrong answer.",
    "Not what I asked.",
    "Too slow: took minutes to reply.",
)


def feedback_pool(
    sentiment: str, status: str, workforce: Any, error_kind: str | None
) -> tuple[str, ...]:
    """Plausible free-text feedback for a reaction of ``sentiment`` on such a run."""
    if sentiment == "positive":
        return _PRAISE
    if status == "error" and error_kind in _ERROR_COMPLAINTS:
        return _ERROR_COMPLAINTS[error_kind]
    return profile_for(workforce).complaints or _GENERIC_COMPLAINTS
