"""Sections 5 and 6: parallel exports on uneven history, and ``auto`` within a rate limit.

5. With 40 ms per request, ``timbal-runs export --parallel 1, 8, 16, auto`` on an even
   history and on a growing one (``shape="growing"``: the 8 equal windows of 8,000 runs
   hold about 8 to 2,873), at 8k and 40k runs. Every repetition runs the four commands
   back to back, in a rotating order; a level's speed-up is the median over the
   repetitions of (sequential seconds / its seconds) within the same repetition. Every
   parallel file's ids are compared with the sequential file's of the same repetition.
6. Against a token bucket of 50 requests/s (and 40 ms per request): ``auto`` exports
   through the library, counting 429s (``on_retry``) and requests. The judged request
   rate is the issue's: requests over the export's seconds. Beside it, the share of
   what the bucket allowed meanwhile (its burst of 50, plus 50 a second), which the
   pacer never spends at once: it spreads ``RateLimit-Remaining`` over
   ``RateLimit-Reset``, which is all a client may assume of a window-based limit.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import emulator_process

__all__ = ["section_balance", "section_rate_limit"]

WINDOW = ["--since", "2025-12-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"]
LEVELS = ["1", "8", "16", "auto"]


def section_balance(
    report: Any,
    tmp: Path,
    sizes: list[int],
    reps: int,
    cli_export: Callable[..., tuple[float, float]],
    ids_of: Callable[[Path], list[str]],
) -> None:
    """Section 5 (see the module docstring)."""
    for shape in ("even", "growing"):
        for runs in sizes:
            with emulator_process(runs, latency_ms=40, shape=shape) as emu:
                ratios: dict[str, list[float]] = {level: [] for level in LEVELS[1:]}
                seconds: dict[str, list[float]] = {level: [] for level in LEVELS}
                same = True
                for rep in range(reps):
                    order = LEVELS[rep % len(LEVELS) :] + LEVELS[: rep % len(LEVELS)]
                    took: dict[str, float] = {}
                    for level in order:
                        out = tmp / f"bal-{level}.jsonl"
                        took[level], _ = cli_export(emu, out, *WINDOW, "--parallel", level)
                        seconds[level].append(took[level])
                    reference = ids_of(tmp / "bal-1.jsonl")
                    for level in LEVELS[1:]:
                        ratios[level].append(took["1"] / took[level])
                        same = same and ids_of(tmp / f"bal-{level}.jsonl") == reference
                    if rep == 0:
                        count = len(reference)
                _report_balance(report, shape, runs, count, seconds, ratios, same)


def _report_balance(
    report: Any,
    shape: str,
    runs: int,
    count: int,
    seconds: dict[str, list[float]],
    ratios: dict[str, list[float]],
    same: bool,
) -> None:
    section = "5 balance"
    label = f"{shape}, {runs // 1000}k"
    report.add(
        section,
        f"{label}: sequential, 40 ms latency, {count} runs",
        f"{statistics.median(seconds['1']):.2f} s",
    )
    speed = {level: statistics.median(values) for level, values in ratios.items()}
    for level in ("8", "16"):
        target, ok = "", None
        if level == "8" and runs >= 40_000:
            floor = 6.5 if shape == "growing" else 7.0
            target, ok = f">= {floor}x", speed[level] >= floor and same
        spread = f" ({min(ratios[level]):.1f}-{max(ratios[level]):.1f})"
        report.add(
            section,
            f"{label}: --parallel {level}{spread}",
            f"{speed[level]:.2f}x",
            target,
            ok,
        )
    best = max(speed["8"], speed["16"])
    within = speed["auto"] / best
    spread = f" ({min(ratios['auto']):.1f}-{max(ratios['auto']):.1f})"
    report.add(
        section,
        f"{label}: --parallel auto{spread}, / best fixed N",
        f"{speed['auto']:.2f}x, {within:.2f}",
        ">= 0.90 of best",
        within >= 0.9 and same,
    )
    report.add(section, f"{label}: exported ids identical to sequential", str(same), "", same)


def section_rate_limit(report: Any, tmp: Path, runs: int, limit: float) -> None:
    """Section 6 (see the module docstring)."""
    from timbal_integrations import RunQuery, TimbalClient
    from timbal_integrations.export import export_runs
    from timbal_integrations.retry import RetryDetails

    section = "6 ratelimit"
    with emulator_process(runs, latency_ms=40, rate_limit=limit) as emu:
        throttled: list[RetryDetails] = []
        query = RunQuery(since="2025-12-01T00:00:00Z", until="2026-01-01T00:00:00Z")

        def export(name: str, parallel: int | str) -> tuple[float, int, list[str]]:
            out = tmp / name
            with TimbalClient(
                emu.api_key,
                host=emu.base_url,
                org_id=emu.org_id,
                project_id=emu.project_id,
                env={},
                on_retry=throttled.append,
            ) as client:
                start = time.perf_counter()
                export_runs(client, query, out, parallel=parallel)
                seconds = time.perf_counter() - start
                requests = client.requests_made
            with out.open("rb") as fh:
                import orjson

                return seconds, requests, [orjson.loads(line)["id"] for line in fh]

        seq_seconds, _, seq_ids = export("rl-seq.jsonl", 1)
        throttled.clear()
        seconds, requests, ids = export("rl-auto.jsonl", "auto")
        refused = sum(1 for retry in throttled if retry.status_code == 429)
        exact = ids == seq_ids
        rate = requests / seconds
        allowed = limit + limit * seconds  # the bucket's burst, and its refill meanwhile
        report.add(
            section,
            f"auto vs {limit:.0f} req/s, {len(ids)} runs: exact (same ids as sequential)",
            str(exact),
            "",
            exact,
        )
        report.add(
            section, "  429s answered to auto", str(refused), "a handful (<= 5)", refused <= 5
        )
        report.add(
            section,
            f"  request rate (requests / seconds of the whole export), vs {limit:.0f}/s",
            f"{rate:.1f}/s = {rate / limit:.0%}",
            ">= 90% of the limit",
            rate >= 0.9 * limit,
        )
        report.add(
            section,
            f"  requests / what the bucket allowed meanwhile (its burst of {limit:.0f} included)",
            f"{requests / allowed:.0%}",
        )
        report.add(
            section,
            f"  {requests} requests in {seconds:.2f} s (sequential: {seq_seconds:.2f} s)",
            f"{seq_seconds / seconds:.1f}x",
        )
