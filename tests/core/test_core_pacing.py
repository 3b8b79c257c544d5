"""The pacer and the AIMD concurrency controller, sans-I/O, on a fake clock."""

from __future__ import annotations

import httpx
import pytest

from timbal_integrations.client._ratelimit import rate_limit_info
from timbal_integrations.pacing import Concurrency, Pacer, PacerCounts, RateLimitInfo


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def info(limit: int, remaining: int, reset: float) -> RateLimitInfo:
    return RateLimitInfo(limit, remaining, reset)


# --- reading the headers -----------------------------------------------------------------


def test_rate_limit_headers_are_read_by_the_core() -> None:
    response = httpx.Response(
        200,
        headers={"RateLimit-Limit": "50", "RateLimit-Remaining": "7", "RateLimit-Reset": "2"},
    )
    assert rate_limit_info(response) == RateLimitInfo(50, 7, 2.0)
    assert rate_limit_info(httpx.Response(200)) is None
    # The draft's list form: the first figure counts.
    listed = httpx.Response(200, headers={"RateLimit-Limit": "100, 100;w=60"})
    assert rate_limit_info(listed) == RateLimitInfo(100, None, None)
    assert rate_limit_info(httpx.Response(200, headers={"RateLimit-Remaining": "x"})) is None


# --- the pacer ---------------------------------------------------------------------------


def test_without_rate_limit_headers_nothing_is_held_back() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    for status in (200, 500, 429):
        assert pacer.reserve() == 0.0
        pacer.observe(status, None, retry_after=3.0)  # a 429 alone is the retry's business
    assert pacer.reserve() == 0.0
    assert pacer.counts() == PacerCounts(responses=3, throttled=1, low_budget=0, waits=0)


def test_the_remaining_budget_is_spread_until_the_reset() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    pacer.observe(200, info(50, 40, 1.0))
    waits = [pacer.reserve() for _ in range(4)]  # four requests wanted at once
    assert waits == pytest.approx([0.0, 1 / 40, 2 / 40, 3 / 40])
    clock.advance(1.0)  # later answers report a fuller budget: the spacing follows
    pacer.observe(200, info(50, 49, 1.0))
    assert pacer.interval == pytest.approx(1 / 49)
    assert pacer.reserve() == 0.0
    assert pacer.counts().waits == 3


def test_a_spent_budget_holds_every_request_until_the_reset() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    pacer.observe(200, info(50, 0, 2.0))
    assert pacer.reserve() == pytest.approx(2.0)
    assert pacer.reserve() == pytest.approx(2.0)  # no spacing after a pause: a full budget
    clock.advance(2.0)
    assert pacer.reserve() == 0.0
    assert pacer.counts().low_budget == 1


def test_a_429_pauses_until_the_later_of_reset_and_retry_after_capped() -> None:
    clock = FakeClock()
    pacer = Pacer(max_pause=5.0, clock=clock)
    pacer.observe(429, info(50, 0, 1.0), retry_after=3.0)
    assert pacer.reserve() == pytest.approx(3.0)
    pacer.observe(429, info(50, 0, 3600.0), retry_after=3600.0)
    assert pacer.paused_until == pytest.approx(clock.now + 5.0)  # the policy's cap
    assert pacer.counts().throttled == 2


def test_a_low_budget_is_counted() -> None:
    pacer = Pacer(clock=FakeClock())
    pacer.observe(200, info(100, 9, 1.0))
    pacer.observe(200, info(100, 10, 1.0))
    assert pacer.counts().low_budget == 1


# --- the concurrency controller -----------------------------------------------------------


class Server:
    """Pages complete at ``min(target, capacity) / latency`` per second on the fake clock."""

    def __init__(self, clock: FakeClock, capacity: int, latency: float = 0.04) -> None:
        self.clock = clock
        self.capacity = capacity
        self.latency = latency
        self.counts = PacerCounts(0, 0, 0, 0)

    def run(self, control: Concurrency, pages: int, *, busy: bool = True) -> list[int]:
        seen = []
        for _ in range(pages):
            rate = min(control.target, self.capacity) / self.latency
            self.clock.advance(1 / rate)
            seen.append(control.page_done(self.counts, busy=busy))
        return seen


def test_a_fixed_concurrency_never_changes() -> None:
    clock = FakeClock()
    control = Concurrency(8, clock=clock)
    server = Server(clock, capacity=2)
    assert set(server.run(control, 200)) == {8}
    server.counts = PacerCounts(10, 5, 5, 5)
    assert control.page_done(server.counts, busy=True) == 8


def test_auto_grows_while_throughput_grows_and_stops_where_it_does_not() -> None:
    clock = FakeClock()
    control = Concurrency(clock=clock, initial=4, maximum=32)
    server = Server(clock, capacity=11)
    targets = server.run(control, 600)
    assert targets[0] == 4
    assert control.peak == 16  # doubled 4 -> 8 -> 16: the last gave 1.4x, so no further
    assert targets[-1] == 16  # throughput stopped growing past the capacity


def test_auto_reaches_its_maximum_when_throughput_keeps_growing() -> None:
    clock = FakeClock()
    control = Concurrency(clock=clock, initial=4, maximum=32)
    assert Server(clock, capacity=1000).run(control, 400)[-1] == 32


def test_auto_does_not_grow_when_not_every_slot_is_busy() -> None:
    clock = FakeClock()
    control = Concurrency(clock=clock, initial=4)
    assert set(Server(clock, capacity=1000).run(control, 200, busy=False)) == {4}


def test_auto_halves_on_a_429_once_for_the_requests_already_in_flight() -> None:
    clock = FakeClock()
    control = Concurrency(clock=clock, initial=16, maximum=32)
    server = Server(clock, capacity=1000)
    server.run(control, 3)
    server.counts = PacerCounts(3, 1, 0, 0)
    assert control.page_done(server.counts, busy=True) == 8
    server.counts = PacerCounts(4, 2, 0, 0)  # an answer to a request sent before the cut
    assert control.page_done(server.counts, busy=True) == 8
    for _ in range(20):  # the cooldown is over: another 429 halves again
        control.page_done(server.counts, busy=True)
    server.counts = PacerCounts(30, 3, 0, 0)
    assert control.page_done(server.counts, busy=True) == 4


def test_auto_shrinks_before_a_429_when_the_budget_runs_low() -> None:
    clock = FakeClock()
    control = Concurrency(clock=clock, initial=8)
    server = Server(clock, capacity=1000)
    server.run(control, 2)
    server.counts = PacerCounts(2, 0, 1, 0)
    assert control.page_done(server.counts, busy=True) == 4


def test_auto_holds_while_the_pacer_is_what_limits_the_rate() -> None:
    clock = FakeClock()
    control = Concurrency(clock=clock, initial=4)
    server = Server(clock, capacity=1000)
    for _ in range(200):  # 50 pages a second, all the budget's spacing allows
        server.counts = PacerCounts(0, 0, 0, 0, interval=0.02)
        clock.advance(0.02)
        control.page_done(server.counts, busy=True)
    assert control.target == 4
    assert control.history == [(0.0, 4)]


def test_auto_grows_when_the_pacer_allows_more_than_it_gets() -> None:
    clock = FakeClock()
    control = Concurrency(clock=clock, initial=4)
    server = Server(clock, capacity=1000, latency=0.2)  # 20 pages a second at 4
    server.counts = PacerCounts(0, 0, 0, 0, interval=0.02)  # the budget allows 50
    server.run(control, 40)
    assert control.target > 4


def test_auto_judges_an_epoch_by_the_pages_asked_for_in_it() -> None:
    # 8 in flight, 40 ms each, and a system that does at most 200 pages a second: 16 in
    # flight only queue (80 ms each). Right after doubling to 16, the 8 answers to
    # requests sent at 8 arrive within 40 ms: counted, they would make 16 look twice as
    # fast and send the controller on to 32.
    clock = FakeClock()
    control = Concurrency(clock=clock, initial=8, maximum=64)
    counts = PacerCounts(0, 0, 0, 0)
    for _ in range(4):  # the first epoch at 8: 40 ms per page from asking to having
        sent = control.now()
        clock.advance(0.04)
        control.page_done(counts, busy=True, sent=sent)
    assert control.target == 16  # the first measured rate: slow start doubles
    before = clock.now - 0.02  # asked for before the doubling
    for _ in range(8):
        clock.advance(0.005)
        assert control.page_done(counts, busy=True, sent=before) == 16  # not counted
    for _ in range(8):  # asked for at 16: 80 ms each, the same 200 pages a second
        sent = control.now()
        clock.advance(0.08)
        control.page_done(counts, busy=True, sent=sent)
    # 16 / 80 ms is 8 / 40 ms: the doubling bought nothing, so back to 8, never to 32
    assert control.target == 8
    assert control.peak == 16


def test_auto_keeps_doubling_while_latency_stays_flat() -> None:
    clock = FakeClock()
    control = Concurrency(clock=clock, initial=4, maximum=32)
    counts = PacerCounts(0, 0, 0, 0)
    for _ in range(40):
        sent = control.now()
        clock.advance(0.01)  # the answers overlap: what counts is asking to having
        control.page_done(counts, busy=True, sent=sent - 0.03)
    assert control.target == 32
    assert [target for _, target in control.history] == [4, 8, 16, 32]
