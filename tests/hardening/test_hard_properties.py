"""Properties (hypothesis): time parsing round-trips, window splitting leaves no gap and
no overlap for any range and any N, MCP cursors round-trip (and tampered ones never
crash), and arbitrary MCP arguments always get a result or a tool error.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mcp import Client

from mcp_server import ServerSettings, create_server
from mcp_server.shaping import Cursor
from tests.hardening.helpers_hard import SECRET_KEY
from timbal_integrations import QueryError, RunQuery, parse_time
from timbal_integrations.emulator import FIXED_END, Emulator, run_emulator
from timbal_integrations.query import format_time, to_epoch_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST_MS = 100_000_000_000  # the earliest epoch-ms value not mistaken for seconds (1973)
LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.integers(min_value=FIRST_MS, max_value=LAST_MS - 14 * 3_600_000).map(
    lambda ms: EPOCH + timedelta(milliseconds=ms)
)
micro = st.integers(min_value=0, max_value=999)


def ms_of(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


# --- time parsing -----------------------------------------------------------------------------


@given(moment=moments, extra_us=micro, zone=offsets)
def test_times_round_trip_through_every_accepted_form(
    moment: datetime, extra_us: int, zone: timezone
) -> None:
    precise = moment + timedelta(microseconds=extra_us)  # below ms: truncated on parse
    local = precise.astimezone(zone)
    assert parse_time(format_time(moment)) == moment
    assert parse_time(local) == moment
    assert parse_time(local.isoformat()) == moment
    assert parse_time(local.isoformat(sep=" ")) == moment
    assert parse_time(precise.replace(tzinfo=None).isoformat()) == moment  # no offset: UTC
    assert parse_time(ms_of(moment)) == moment
    assert parse_time(str(ms_of(moment))) == moment
    assert parse_time(float(ms_of(moment))) == moment
    assert format_time(parse_time(format_time(moment))) == format_time(moment)


@given(
    amount=st.integers(min_value=0, max_value=100_000),
    unit=st.sampled_from(sorted(SPAN_SECONDS)),
    now=moments,
)
def test_spans_count_back_from_the_injected_now(amount: int, unit: str, now: datetime) -> None:
    expected = now - timedelta(seconds=amount * SPAN_SECONDS[unit])
    assume(expected.year >= 1970)
    assert parse_time(f"{amount}{unit}", now=now) == expected
    assert parse_time(f" {amount} {unit} ", now=now) == expected


@given(text=st.text(max_size=60))
def test_any_string_parses_or_names_the_field(text: str) -> None:
    problem: QueryError | None = None
    try:
        parsed = parse_time(text, field="since", now=FIXED_END)
    except QueryError as error:
        problem = error
    if problem is not None:
        assert problem.field == "since"
        assert str(problem).startswith("since: ")
        assert "\n" not in str(problem).replace(text, "")
    else:
        assert parsed.tzinfo is not None
        assert parsed.microsecond % 1000 == 0


@given(since=moments, length=st.integers(min_value=1, max_value=10**12))
def test_a_query_round_trips_through_its_json_form(since: datetime, length: int) -> None:
    assume(ms_of(since) + length <= LAST_MS)
    until = since + timedelta(milliseconds=length)
    query = RunQuery(since=since, until=until, status="error", metadata={"k": [1, "v"]})
    assert RunQuery.from_filters(query.as_dict()) == query
    params = query.to_params()
    assert params["from"] == str(ms_of(since))
    assert params["to"] == str(ms_of(until))


# --- window splitting -------------------------------------------------------------------------


@given(
    start=st.integers(min_value=FIRST_MS, max_value=LAST_MS - 1),
    length=st.integers(min_value=1, max_value=10**13),
    n=st.integers(min_value=1, max_value=64),
    probes=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), max_size=20),
)
def test_windows_cover_the_range_with_no_gap_and_no_overlap(
    start: int, length: int, n: int, probes: list[float]
) -> None:
    end = min(start + length, LAST_MS)
    assume(end > start)
    query = RunQuery(since=start, until=end, status="success")
    windows = query.split(n)
    assert len(windows) == min(n, end - start)
    bounds = [to_epoch_ms(w.since) for w in windows]  # type: ignore[arg-type]
    assert bounds[0] == start
    assert to_epoch_ms(windows[-1].until) == end  # type: ignore[arg-type]
    for before, after in itertools.pairwise(windows):
        assert before.until == after.since  # shared boundary: no gap, no overlap
    for window in windows:
        assert window.since < window.until  # type: ignore[operator]
        assert window.status == "success"  # the other filters travel along
    sizes = [to_epoch_ms(w.until) - to_epoch_ms(w.since) for w in windows]  # type: ignore[arg-type]
    assert max(sizes) - min(sizes) <= 1  # as even as whole milliseconds allow
    for fraction in [*probes, 0.0]:
        moment = start + int(fraction * (end - start))
        holders = [
            w
            for w in windows
            if to_epoch_ms(w.since) <= moment < to_epoch_ms(w.until)  # type: ignore[arg-type]
        ]
        assert len(holders) == 1
        assert bisect.bisect_right(bounds, moment) - 1 == windows.index(holders[0])


# --- cursors ----------------------------------------------------------------------------------

tokens = st.none() | st.text(min_size=1, max_size=100)
counts = st.integers(min_value=0, max_value=2**53)


@given(
    token=tokens,
    offset=st.integers(min_value=0, max_value=10**6),
    fingerprint=st.text(max_size=40),
    since=st.none() | counts,
    until=st.none() | counts,
)
def test_cursors_round_trip(
    token: str | None, offset: int, fingerprint: str, since: int | None, until: int | None
) -> None:
    cursor = Cursor(token, offset, fingerprint, since, until)
    text = cursor.encode()
    assert text.isascii()
    assert text == text.strip()
    assert Cursor.decode(text) == cursor


@given(
    cursor=st.builds(Cursor, tokens, counts, st.text(max_size=20), st.none() | counts, counts),
    position=st.integers(min_value=0, max_value=10**6),
    replacement=st.characters(codec="ascii"),
)
def test_a_tampered_cursor_decodes_or_is_refused_by_name(
    cursor: Cursor, position: int, replacement: str
) -> None:
    text = cursor.encode()
    index = position % len(text)
    tampered = text[:index] + replacement + text[index + 1 :]
    refused: QueryError | None = None
    try:
        Cursor.decode(tampered)
    except QueryError as error:
        refused = error
    assert refused is None or refused.field == "cursor"


# --- arbitrary MCP arguments ------------------------------------------------------------------


class Session:
    """One in-memory MCP session, served by a task on a loop of its own, shared by every
    example (the SDK client must be entered and left by the same task)."""

    def __init__(self, emu: Emulator) -> None:
        self.server = create_server(ServerSettings(env=emu.env(), now=lambda: FIXED_END))
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue[tuple[str, dict[str, Any], Future[Any]] | None] | None = None
        ready: Future[None] = Future()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self._serve(ready),), daemon=True
        )
        self.thread.start()
        ready.result(timeout=60)

    async def _serve(self, ready: Future[None]) -> None:
        self.queue = asyncio.Queue()
        async with Client(self.server) as client:
            ready.set_result(None)
            while (item := await self.queue.get()) is not None:
                tool, arguments, future = item
                try:
                    future.set_result(await client.call_tool(tool, arguments))
                except Exception as exc:
                    future.set_exception(exc)

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        assert self.queue is not None
        future: Future[Any] = Future()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (tool, arguments, future))
        return future.result(timeout=60)

    def close(self) -> None:
        assert self.queue is not None
        self.loop.call_soon_threadsafe(self.queue.put_nowait, None)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    with run_emulator(runs=200, seed=5, page_size=25, api_key=SECRET_KEY) as emu:
        opened = Session(emu)
        try:
            yield opened
        finally:
            opened.close()


ARGUMENTS = {
    "list_runs": [
        "status", "user_id", "user_email", "sentiment", "workforce_id", "group_id", "rev",
        "since", "until", "roots", "sort_by", "sort_order", "limit", "cursor",
    ],
    "get_run": ["run_id"],
    "summarize_runs": [
        "status", "user_id", "user_email", "since", "until", "roots", "sort_by", "max_runs",
    ],
}  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["24h", "7d", "2026-01-01", "error", "asc", "created_at", "1e3", ""]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def tool_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    tool = draw(st.sampled_from(sorted(ARGUMENTS)))
    names = st.sampled_from(ARGUMENTS[tool]) | st.text(min_size=1, max_size=12)
    arguments = draw(st.dictionaries(names, json_values, max_size=4))
    return tool, arguments


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=tool_calls())
def test_arbitrary_mcp_arguments_get_a_result_or_a_tool_error(
    session: Session, call: tuple[str, dict[str, Any]]
) -> None:
    tool, arguments = call
    result = session.call(tool, arguments)
    if result.is_error:
        assert result.structured_content is None
        assert len(result.content) == 1
        message = result.content[0].text
        assert message.startswith((f"{tool}: ", f"Invalid arguments for {tool}: ")), message
        assert "internal error" not in message
        assert "Traceback" not in message
        assert "Error executing tool" not in message
        assert "`" in message or "unknown argument" in message or "API" in message, message
    else:
        assert isinstance(result.structured_content, dict)
    assert SECRET_KEY not in str(result)


@settings(max_examples=12, deadline=None)
@given(limit=st.integers(min_value=17, max_value=200), status=st.sampled_from([None, "success"]))
def test_paging_with_any_limit_yields_every_run_once(
    session: Session, limit: int, status: str | None
) -> None:
    arguments: dict[str, Any] = {"limit": limit, "since": "400d", "sort_order": "asc"}
    if status:
        arguments["status"] = status
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        result = session.call("list_runs", {**arguments, **({"cursor": cursor} if cursor else {})})
        assert not result.is_error, result.content
        seen.extend(row["id"] for row in result.structured_content["runs"])
        cursor = result.structured_content.get("next_cursor")
        if cursor is None:
            break
    total = session.call("summarize_runs", {k: v for k, v in arguments.items() if k != "limit"})
    assert len(seen) == len(set(seen)) == total.structured_content["total"]
