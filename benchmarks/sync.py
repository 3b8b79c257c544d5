"""Section 7: the cost of keeping a dataset exact with ``sync_runs``.

A live emulator in its own process holds ``runs`` runs over ``days`` days (the default
history shape, even through the day, weighted to working hours) and keeps creating runs
at the same rate; the benchmark moves its clock through a pipe. The sync runs in this
process with ``now`` at the emulator's clock and the default 3-day lookback:

- the first sync (the whole history), against a plain ``export_runs`` of the same runs
  (both after a first listing has warmed the emulator's caches);
- a sync when nothing has changed (median of several);
- a sync a day later, with a day of new runs, finished runs and new reactions (median
  over several days), against re-exporting everything, which is what a dataset exact
  without a sync would cost.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_CHILD = """
import sys
from datetime import datetime, timedelta
from timbal_integrations.emulator import EmulatorClock, run_emulator
end = datetime.fromisoformat(sys.argv[1])
clock = EmulatorClock(end)
with run_emulator(
    runs=int(sys.argv[2]), span=timedelta(days=int(sys.argv[3])), seed=1, page_size=50,
    live=True, clock=clock, end=end, api_key="bench-key",
) as emu:
    print(emu.base_url, flush=True)
    for line in sys.stdin:
        clock.advance(timedelta(seconds=float(line)))
        print("ok", flush=True)
"""

END = datetime(2026, 1, 1, tzinfo=UTC)


@contextmanager
def live_emulator(runs: int, days: int) -> Iterator[tuple[str, Callable[[timedelta], None]]]:
    """A live emulator in a child process: its base URL and a function moving its clock."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, END.isoformat(), str(runs), str(days)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def advance(delta: timedelta) -> None:
        stdin.write(f"{delta.total_seconds()}\n")
        stdin.flush()
        assert stdout.readline().strip() == "ok"

    try:
        yield stdout.readline().strip(), advance
    finally:
        stdin.close()
        proc.wait(60)


def section_sync(report: Any, tmp: Path, runs: int, days: int, repeats: int) -> None:
    """Measure the first sync, a no-change sync and a daily sync (see the module)."""
    from timbal_integrations import RunQuery, TimbalClient
    from timbal_integrations.export import export_runs
    from timbal_integrations.sync import sync_runs

    s = "5 sync"
    with live_emulator(runs, days) as (url, advance):
        env = {
            "TIMBAL_API_HOST": url,
            "TIMBAL_API_KEY": "bench-key",
            "TIMBAL_ORG_ID": "demo-org",
            "TIMBAL_PROJECT_ID": "demo-project",
        }
        now = END
        out = tmp / "sync"

        def timed_sync() -> tuple[float, Any]:
            with TimbalClient(env=env) as client:
                started = time.perf_counter()
                result = sync_runs(client, RunQuery(), out, format="parquet", now=now)
                return time.perf_counter() - started, result

        with TimbalClient(env=env) as client:  # untimed: the emulator's page caches warm up
            export_runs(client, RunQuery(), tmp / "warm.jsonl", now=now)
        with TimbalClient(env=env) as client:
            started = time.perf_counter()
            exported = export_runs(client, RunQuery(), tmp / "all.parquet", now=now)
            export_seconds = time.perf_counter() - started
            export_requests = client.requests_made
        first_seconds, first = timed_sync()
        report.add(
            s,
            f"first sync: {first.runs:,} runs over {days} days, parquet",
            f"{first_seconds:.2f} s",
        )
        report.add(s, "  its requests (list pages)", f"{first.requests.total:,}")
        report.add(
            s,
            "  export_runs of the same runs to one parquet file",
            f"{export_seconds:.2f} s, {export_requests:,} req",
        )
        report.add(s, "  first sync / export", f"{first_seconds / export_seconds:.2f}x")
        assert first.runs == exported.count

        quiet = [timed_sync() for _ in range(repeats)]
        seconds = statistics.median(t for t, _ in quiet)
        last = quiet[-1][1]
        report.add(
            s,
            f"no-change sync, 3-day lookback (median of {repeats})",
            f"{seconds:.2f} s",
        )
        report.add(
            s,
            "  its requests: list pages + runs re-checked by id",
            f"{last.requests.total} = {last.requests.list_pages} + {last.requests.get_run}",
        )
        report.add(s, "  partitions rewritten", f"{last.partitions_rewritten} of {last.partitions}")

        daily = []
        for _ in range(repeats):
            advance(timedelta(days=1))
            now += timedelta(days=1)
            daily.append(timed_sync())
        seconds = statistics.median(t for t, _ in daily)
        requests = statistics.median(r.requests.total for _, r in daily)
        added = statistics.median(r.added for _, r in daily)
        changed = statistics.median(r.changed for _, r in daily)
        rewritten = statistics.median(r.partitions_rewritten for _, r in daily)
        report.add(s, f"a day later (median of {repeats} days)", f"{seconds:.2f} s")
        report.add(
            s,
            "  runs added, changed; partitions rewritten",
            f"{added:,.0f}, {changed:,.0f}; {rewritten:.0f}",
        )
        moved = {
            kind: statistics.median(r.changed_fields[kind] for _, r in daily)
            for kind in daily[0][1].changed_fields
        }
        report.add(
            s,
            "  changed, by field moved (median)",
            ", ".join(f"{kind} {n:.0f}" for kind, n in moved.items() if n),
        )
        report.add(
            s,
            "  still open; re-checked by id (median)",
            f"{statistics.median(r.still_open for _, r in daily):.0f}; "
            f"{statistics.median(r.rechecked for _, r in daily):.0f}",
        )
        report.add(s, "  its requests", f"{requests:,.0f}")
        report.add(
            s,
            "  re-exporting everything instead: requests / sync's",
            f"{export_requests / requests:,.1f}x",
        )
