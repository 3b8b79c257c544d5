"""The emulator's command line: ``timbal-runs emulator`` and ``python -m ...emulator``.

Serves until Ctrl-C (or SIGTERM), then exits 0. Bad flag values exit 2 and a port that
cannot be bound exits 1, each with a one-line message. Bound to an address other
machines can reach, it prints a loud warning to stderr first.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from timbal_integrations.cli.parsing import OneLineParser, UsageError, number, port, whole_number
from timbal_integrations.emulator.app import (
    DEFAULT_API_KEY,
    DEFAULT_ORG_ID,
    DEFAULT_PROJECT_ID,
    FAULT_KINDS,
)
from timbal_integrations.emulator.clock import EmulatorClock
from timbal_integrations.emulator.server import (
    Emulator,
    PublicBindWarning,
    exposure_warning,
    is_loopback,
    run_emulator,
)
from timbal_integrations.emulator.shapes import SHAPES
from timbal_integrations.emulator.sources import MAX_RUNS

__all__ = ["build_parser", "main"]

PROG = "timbal-runs emulator"


_NON_NEGATIVE = whole_number(minimum=0)
_POSITIVE = whole_number(minimum=1)
_ANY_WHOLE = whole_number()
_AT_LEAST_0 = number(minimum=0)
_ABOVE_0 = number(above=0)
_FRACTION = number(minimum=0, maximum=1)


def _runs(text: str) -> int:
    value = _NON_NEGATIVE(text)
    if value > MAX_RUNS:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_RUNS:,} runs (about 2 GB of memory), got {value:,}"
        )
    return value


def _end(text: str) -> datetime:
    if text.strip().lower() == "now":
        return datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'now' or an ISO 8601 date-time, got {text!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _fault_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(FAULT_KINDS)}, got {text!r}"
        )
    return kinds


def build_parser() -> argparse.ArgumentParser:
    """The emulator's argument parser."""
    parser = OneLineParser(
        prog=PROG,
        description="Serve a local, Timbal-compatible runs API with deterministic data.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    add("--port", type=port, default=8000, help="TCP port; 0 picks a free one (default: 8000)")
    add(
        "--runs",
        type=_runs,
        default=5000,
        help=f"runs to generate, at most {MAX_RUNS:,} (default: 5000)",
    )
    add("--seed", type=_ANY_WHOLE, default=1, help="data seed (default: 1)")
    add("--page-size", type=_POSITIVE, default=50, help="runs per page (default: 50)")
    add("--api-key", default=DEFAULT_API_KEY, help=f"accepted API key (default: {DEFAULT_API_KEY})")
    add("--org-id", default=DEFAULT_ORG_ID, help=f"served org id (default: {DEFAULT_ORG_ID})")
    add(
        "--project-id",
        default=DEFAULT_PROJECT_ID,
        help=f"served project id (default: {DEFAULT_PROJECT_ID})",
    )
    add(
        "--end",
        type=_end,
        default="now",
        help="newest run time: 'now' (floored to the minute) or ISO 8601 (default: now)",
    )
    add("--span-days", type=_ABOVE_0, default=30.0, help="days of history (default: 30)")
    add(
        "--latency-ms",
        type=_AT_LEAST_0,
        default=0.0,
        help="delay per request (default: 0)",
    )
    add(
        "--fault-rate",
        type=_FRACTION,
        default=0.0,
        help="share of requests answered with a fault, 0..1 (default: 0)",
    )
    add(
        "--fault-kinds",
        type=_fault_kinds,
        default=FAULT_KINDS,
        help=f"faults to inject (default: {','.join(FAULT_KINDS)})",
    )
    add(
        "--retry-after",
        type=_NON_NEGATIVE,
        default=1,
        help="Retry-After seconds of injected 429s (default: 1)",
    )
    add("--rate-limit", type=_ABOVE_0, default=None, help="requests per second allowed")
    add(
        "--rate-limit-burst",
        type=_ABOVE_0,
        default=None,
        help="requests allowed at once (default: the rate, at least 1)",
    )
    add("--extra-fields", action="store_true", help="add unknown fields to list items")
    add(
        "--shape",
        choices=SHAPES,
        default="even",
        help="when runs are created: even, growing or bursty (default: even)",
    )
    add(
        "--live",
        action="store_true",
        help="serve a live service: runs arrive, finish and get reactions as time passes",
    )
    add(
        "--speed",
        type=_ABOVE_0,
        default=1.0,
        help="with --live: how much faster than real time the clock runs (default: 1)",
    )
    add(
        "--future-days",
        type=_AT_LEAST_0,
        default=7.0,
        help="with --live: days past --end during which runs keep arriving (default: 7)",
    )
    add("--access-log", action="store_true", help="log every request to stderr")
    return parser


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while serving (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _ignore_interrupts() -> Iterator[None]:
    """Ignore further Ctrl-C and SIGTERM while shutting down (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator from the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0

    if args.access_log:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    if args.speed != 1.0 and not args.live:
        print(f"{PROG}: error: argument --speed: needs --live", file=sys.stderr)
        return 2
    clock = EmulatorClock.wall(args.end, speed=args.speed) if args.live else None
    try:
        with _terminate_as_interrupt(), warnings.catch_warnings():
            warnings.simplefilter("ignore", PublicBindWarning)  # _announce says it louder
            try:
                emulator_cm = run_emulator(
                    runs=args.runs,
                    seed=args.seed,
                    page_size=args.page_size,
                    api_key=args.api_key,
                    org_id=args.org_id,
                    project_id=args.project_id,
                    end=args.end,
                    span=timedelta(days=args.span_days),
                    latency_ms=args.latency_ms,
                    fault_rate=args.fault_rate,
                    fault_kinds=args.fault_kinds,
                    retry_after=args.retry_after,
                    rate_limit=args.rate_limit,
                    rate_limit_burst=args.rate_limit_burst,
                    extra_fields=args.extra_fields,
                    live=args.live,
                    clock=clock,
                    shape=args.shape,
                    future=timedelta(days=args.future_days),
                    host=args.host,
                    port=args.port,
                    access_log=args.access_log,
                )
                emulator = emulator_cm.__enter__()
            except ValueError as exc:
                message = str(exc)
                if message.startswith("runs:"):  # name the flag, as argparse does
                    message = f"argument --{message}"
                print(f"{PROG}: error: {message}", file=sys.stderr)
                return 2
            except OSError as exc:
                print(
                    f"{PROG}: error: cannot listen on {args.host}:{args.port}: {exc.strerror}",
                    file=sys.stderr,
                )
                return 1
            try:
                _announce(emulator, args)
                # Sleep rather than join the server thread: on Python 3.11 a Ctrl-C that
                # interrupts Thread.join() can mark the still-running thread as stopped.
                while emulator.is_running():
                    time.sleep(0.5)
                print(f"{PROG}: error: the server stopped unexpectedly", file=sys.stderr)
                return 1
            except KeyboardInterrupt:
                pass
            finally:
                with _ignore_interrupts():
                    emulator_cm.__exit__(None, None, None)
    except KeyboardInterrupt:  # Ctrl-C while the data was being generated
        pass
    print("Emulator stopped.", flush=True)
    return 0


def _announce(emulator: Emulator, args: argparse.Namespace) -> None:
    if not is_loopback(emulator.host):
        warning = exposure_warning(emulator.host, emulator.port, emulator.api_key)
        rule = "!" * 78
        print(f"{rule}\n{PROG}: WARNING: {warning}\n{rule}", file=sys.stderr, flush=True)
    end: datetime = args.end
    start = end - timedelta(days=args.span_days)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    env = emulator.env()
    shape = "" if args.shape == "even" else f", {args.shape} history"
    where = f"Listening on {emulator.listen_url}"
    if emulator.listen_url != emulator.base_url:
        where += f" (every interface; from this machine: {emulator.base_url})"
    lines = [
        f"Timbal runs emulator: {args.runs} runs (seed {args.seed}{shape}) created "
        f"{start.strftime(stamp)} .. {end.strftime(stamp)}, {args.page_size} per page",
    ]
    if args.live:
        until = end + timedelta(days=args.future_days)
        lines.append(
            f"Live: the clock starts at {end.strftime(stamp)} and runs x{args.speed:g}; "
            f"new runs arrive until {until.strftime(stamp)}"
        )
    lines += [
        f"{where}  (Ctrl-C to stop)",
        "",
        *(
            f"export {name}={shlex.quote(env[name])}"
            for name in ("TIMBAL_API_HOST", "TIMBAL_API_KEY", "TIMBAL_ORG_ID", "TIMBAL_PROJECT_ID")
        ),
        "",
        "curl -s -H " + shlex.quote(f"Authorization: Bearer {emulator.api_key}") + " "
        + shlex.quote(f"{emulator.runs_url}?status=error"),
        "",
    ]  # fmt: skip
    print("\n".join(lines), flush=True)
