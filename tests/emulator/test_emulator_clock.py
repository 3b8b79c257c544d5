"""EmulatorClock: manual and wall modes, millisecond resolution, thread safety."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from timbal_integrations.emulator import FIXED_END, EmulatorClock


def test_manual_clock_stands_still_until_moved() -> None:
    clock = EmulatorClock(FIXED_END)
    assert clock.now() == FIXED_END == clock.now()
    assert clock.speed == 0
    assert clock.advance(timedelta(hours=2)) == FIXED_END + timedelta(hours=2)
    assert clock.now() == FIXED_END + timedelta(hours=2)
    clock.advance(timedelta(minutes=-30))  # backwards is allowed
    assert clock.now() == FIXED_END + timedelta(hours=1, minutes=30)
    clock.set(datetime(2025, 6, 1, tzinfo=UTC))
    assert clock.now() == datetime(2025, 6, 1, tzinfo=UTC)
    assert clock.now_ms() == 1748736000000


def test_millisecond_resolution() -> None:
    clock = EmulatorClock(FIXED_END + timedelta(microseconds=1999))
    assert clock.now() == FIXED_END + timedelta(milliseconds=1)
    clock.advance(timedelta(microseconds=999))
    assert clock.now() == FIXED_END + timedelta(milliseconds=1)


def test_wall_clock_follows_its_time_source_at_speed() -> None:
    seconds = [100.0]
    clock = EmulatorClock.wall(FIXED_END, speed=60, monotonic=lambda: seconds[0])
    assert clock.now() == FIXED_END
    seconds[0] += 1.5
    assert clock.now() == FIXED_END + timedelta(seconds=90)
    clock.advance(timedelta(hours=1))  # a jump, then time goes on
    seconds[0] += 1.0
    assert clock.now() == FIXED_END + timedelta(seconds=90 + 3600 + 60)
    clock.set(FIXED_END)
    seconds[0] += 0.5
    assert clock.now() == FIXED_END + timedelta(seconds=30)
    assert "wall x60" in repr(clock)


def test_wall_clock_defaults_to_real_time_now() -> None:
    before = datetime.now(UTC)
    now = EmulatorClock.wall().now()
    assert before - timedelta(seconds=1) <= now <= datetime.now(UTC) + timedelta(seconds=1)


def test_concurrent_advances_all_count() -> None:
    clock = EmulatorClock(FIXED_END)

    def work() -> None:
        for _ in range(500):
            clock.advance(timedelta(milliseconds=1))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == FIXED_END + timedelta(milliseconds=4000)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: EmulatorClock(datetime(2026, 1, 1)), ValueError, "timezone-aware"),
        (lambda: EmulatorClock("2026-01-01"), TypeError, "start must be a datetime"),
        (lambda: EmulatorClock.wall(FIXED_END, speed=0), ValueError, "speed"),
        (lambda: EmulatorClock.wall(FIXED_END, speed=float("inf")), ValueError, "speed"),
        (lambda: EmulatorClock(FIXED_END).advance(5), TypeError, "timedelta"),
        (lambda: EmulatorClock(FIXED_END).set(datetime(2026, 1, 1)), ValueError, "aware"),
    ],
)
def test_bad_arguments(build: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build()  # type: ignore[operator]
