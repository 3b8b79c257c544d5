"""``timbal-runs``: list, export, summarize and emulate Timbal run history from a shell.

::

    timbal-runs list --status error --since 24h
    timbal-runs export --out runs.parquet --since 7d --parallel 8
    timbal-runs summary --since 30d
    timbal-runs emulator --port 8000
    timbal-runs demo

Filters are the same names everywhere: ``--status --user-id --sentiment --group-id
--workforce-id --rev --since --until --metadata --roots --sort-by --sort-order``. The
flags ``--api-key --host --org-id --project-id`` override ``TIMBAL_API_KEY``,
``TIMBAL_API_HOST``, ``TIMBAL_ORG_ID`` and ``TIMBAL_PROJECT_ID``.

Exit status: 0 on success, 2 on bad usage or a bad filter (the message names the flag),
1 on an API or I/O failure, 130 when interrupted; errors are one line on stderr
(``--debug`` adds the traceback).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn

from . import defaults
from ._progress import ProgressLine, human_bytes, human_duration
from ._version import __version__
from .client import DEFAULT_TIMEOUT, TimbalClient
from .errors import ConfigError, QueryError, TimbalError
from .export import (
    PARQUET_INSTALL_HINT,
    CsvWriter,
    ExportResult,
    JsonlWriter,
    export_runs,
    infer_format,
    parquet_available,
    pending_export,
)
from .query import FILTER_NAMES, RunQuery
from .retry import RetryPolicy

if TYPE_CHECKING:  # `export` needs no models: they load with the commands that use them
    from .models import Run
    from .summary import RunSummary

__all__ = ["build_parser", "format_summary", "format_table", "main"]

PROG: Final = "timbal-runs"
LIST_FORMATS: Final = ("table", "json", "jsonl", "csv")
SUMMARY_FORMATS: Final = ("table", "json")
TABLE_LIMIT: Final = defaults.CLI_TABLE_LIMIT
DEMO_RUNS: Final = defaults.DEMO_RUNS
_EXIT_USAGE: Final = 2
_EXIT_FAILURE: Final = 1
_EXIT_INTERRUPTED: Final = 130
_MAX_CELL: Final = 28

_FILTER_HELP: Final = {
    "status": "run status: success, error, cancelled, running (or any other value)",
    "user_id": "only runs started by this user id",
    "sentiment": "last reaction sentiment, e.g. positive or negative",
    "group_id": "only runs of this conversation (group id)",
    "workforce_id": "only runs of this agent or workflow id",
    "rev": "only runs of this revision/branch (runs without one are always included)",
    "since": "inclusive start: ISO 8601 (UTC if no offset), epoch ms, or a span like 24h, 7d",
    "until": "exclusive end, same forms as --since",
    "metadata": 'match run metadata, a JSON object such as \'{"env": "prod"}\'',
    "roots": "true: only conversation roots (runs without a parent); bare --roots means true",
    "sort_by": "id, created_at (default), duration_ms, cost_usd or cost_credits",
    "sort_order": "desc (default) or asc",
}

# --------------------------------------------------------------------------- parsing


class _UsageError(Exception):
    """Bad usage: exit 2 with a one-line message."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _flag(field: str) -> str:
    """The CLI flag of a filter or argument name: ``user_id`` → ``--user-id``."""
    return "--" + field.replace("_", "-")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; expected 0 or more")
    return value


def _parallel(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    most = defaults.MAX_PARALLEL
    if not 1 <= value <= most:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of windows from 1 to {most}")
    return value


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _max_retries(text: str) -> int:
    value = _non_negative_int(text)
    if value > defaults.MAX_RETRIES_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{text!r} is too many; expected 0 to {defaults.MAX_RETRIES_LIMIT}"
        )
    return value


def _common_parent() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("connection (flags override the TIMBAL_* variables)")
    group.add_argument("--api-key", metavar="KEY", help="API key (TIMBAL_API_KEY)")
    group.add_argument(
        "--host", metavar="HOST", help="API host or URL (TIMBAL_API_HOST; api.timbal.ai)"
    )
    group.add_argument("--org-id", metavar="ID", help="organisation id (TIMBAL_ORG_ID)")
    group.add_argument("--project-id", metavar="ID", help="project id (TIMBAL_PROJECT_ID)")
    group.add_argument(
        "--max-retries",
        type=_max_retries,
        metavar="N",
        help="retries of a failed request (429, 5xx, network) before giving up "
        f"(default: {RetryPolicy().max_retries})",
    )
    group.add_argument(
        "--timeout",
        type=_timeout,
        metavar="SECONDS",
        help=f"per-request timeout (default: {DEFAULT_TIMEOUT:g})",
    )
    parent.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and every retry",
    )
    return parent


def _filter_parent() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("filters")
    for name in FILTER_NAMES:
        kwargs: dict[str, Any] = {"dest": name, "help": _FILTER_HELP[name]}
        if name == "roots":
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif name in ("since", "until"):
            kwargs["metavar"] = "TIME"
        elif name == "metadata":
            kwargs["metavar"] = "JSON"
        elif name == "sort_by":
            kwargs["metavar"] = "FIELD"
        elif name == "sort_order":
            kwargs["metavar"] = "ORDER"
        else:
            kwargs["metavar"] = "VALUE"
        group.add_argument(_flag(name), **kwargs)
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The ``timbal-runs`` argument parser (``emulator`` is handed over before parsing)."""
    parser = _Parser(
        prog=PROG,
        description="Timbal run history from a shell: list, export to files, summarize.",
        epilog="Run 'timbal-runs demo' to try everything against a built-in emulator.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and every retry")
    common = _common_parent()
    filters = _filter_parent()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "list",
        parents=[filters, common],
        help="list runs (a table on a terminal; json, jsonl or csv otherwise)",
        description="List matching runs, newest first by default.",
    )
    p.add_argument(
        "--limit",
        type=_non_negative_int,
        metavar="N",
        help=f"at most N runs (default: {TABLE_LIMIT} for the table, all otherwise; 0 = all)",
    )
    p.add_argument(
        "--format",
        choices=LIST_FORMATS,
        help="output format (default: table on a terminal, jsonl otherwise)",
    )
    p.add_argument(
        "--parallel", type=_parallel, metavar="N", help="fetch N time windows concurrently"
    )
    p.set_defaults(handler=_cmd_list)

    p = sub.add_parser(
        "export",
        parents=[filters, common],
        help="export runs to a jsonl, csv or parquet file (atomic, resumable)",
        description=(
            "Export every matching run to a local file, streaming. The file appears only "
            "when complete (written to PATH.part, then renamed); PATH.manifest.json "
            "describes it. An interrupted export continues with --resume."
        ),
    )
    p.add_argument("--out", "-o", required=True, metavar="PATH", help="the file to write")
    p.add_argument(
        "--format",
        choices=("jsonl", "csv", "parquet"),
        help="file format (default: from the extension: .jsonl, .csv, .parquet)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted export of the same query into PATH",
    )
    p.add_argument(
        "--parallel",
        type=_parallel,
        metavar="N",
        help="fetch N time windows concurrently (between --since and --until, default now)",
    )
    p.add_argument("--limit", type=_non_negative_int, metavar="N", help="at most N runs")
    p.add_argument("--no-manifest", action="store_true", help="do not write PATH.manifest.json")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or messages")
    p.set_defaults(handler=_cmd_export)

    p = sub.add_parser(
        "summary",
        parents=[filters, common],
        help="exact rollups of every matching run",
        description=(
            "Exact rollups over every matching run: counts and shares by status, user, "
            "workforce and sentiment; error rate; costs; duration percentiles."
        ),
    )
    p.add_argument(
        "--format",
        choices=SUMMARY_FORMATS,
        help="output format (default: table on a terminal, json otherwise)",
    )
    p.add_argument(
        "--parallel", type=_parallel, metavar="N", help="fetch N time windows concurrently"
    )
    p.set_defaults(handler=_cmd_summary)

    sub.add_parser(
        "emulator",
        help="serve a local Timbal-compatible runs API (see 'timbal-runs emulator --help')",
        add_help=False,
    )

    p = sub.add_parser(
        "demo",
        help="zero-config demo: emulator, export, summary, next steps",
        description=(
            "Start the emulator in-process, export its runs to DIR/runs.jsonl (and "
            "runs.parquet when pyarrow is installed), print their summary and the commands "
            "to point timbal-mcp and Airflow at a running emulator."
        ),
    )
    p.add_argument(
        "--dir", default="timbal-demo", metavar="DIR", help="output folder (default: timbal-demo)"
    )
    p.add_argument(
        "--runs",
        type=_non_negative_int,
        default=DEMO_RUNS,
        metavar="N",
        help=f"runs to generate (default: {DEMO_RUNS})",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks",
    )
    p.set_defaults(handler=_cmd_demo)
    return parser


# --------------------------------------------------------------------------- helpers


def _query(args: argparse.Namespace, now: datetime) -> RunQuery:
    return RunQuery.from_filters({name: getattr(args, name) for name in FILTER_NAMES}, now=now)


def _client(args: argparse.Namespace) -> TimbalClient:
    kwargs: dict[str, Any] = {}
    if args.timeout is not None:
        kwargs["timeout"] = args.timeout
    if args.max_retries is not None:
        kwargs["max_retries"] = args.max_retries
    return TimbalClient(
        api_key=args.api_key,
        host=args.host,
        org_id=args.org_id,
        project_id=args.project_id,
        **kwargs,
    )


def _is_tty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _iso_seconds(value: datetime | None) -> str:
    """UTC ISO 8601 without fractions: ``2026-01-01T12:00:00Z``."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cell(value: str, width: int = _MAX_CELL) -> str:
    return value if len(value) <= width else value[: width - 3] + "..."


def _render(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))

    def line(values: Sequence[str]) -> str:
        cells = [
            v.rjust(widths[i]) if i in right else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def format_table(runs: Iterable[Run]) -> str:
    """An aligned table of runs: id, created, status, duration, cost, user, workforce."""
    headers = ("ID", "CREATED (UTC)", "STATUS", "DURATION", "COST USD", "USER", "WORKFORCE")
    rows = [
        (
            run.id,
            _iso_seconds(run.created_at),
            _cell(run.status, 12),
            human_duration(run.duration_ms),
            f"{run.cost_usd:.4f}",
            _cell(run.user.name or run.user.email),
            _cell(run.workforce.name),
        )
        for run in runs
    ]
    return _render(headers, rows, right={3, 4})


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def format_summary(summary: RunSummary) -> str:
    """The summary as aligned text tables (the numbers are :func:`summarize`'s, unchanged)."""
    s = summary
    lines = [
        f"Runs             {s.total:,}" + ("" if s.complete else " (incomplete)"),
        f"First run        {_iso_seconds(s.first_run_at)}",
        f"Last run         {_iso_seconds(s.last_run_at)}",
        f"Errors           {s.error_count:,} ({_pct(s.error_rate)})",
        f"Cost             ${s.cost_usd_total:,.4f}  ·  {s.cost_credits_total:,.4f} credits",
        f"Duration         p50 {human_duration(s.duration.p50_ms)}  ·  "
        f"p95 {human_duration(s.duration.p95_ms)}  ·  max {human_duration(s.duration.max_ms)}"
        f"  ({s.duration.count:,} runs with a duration)",
    ]

    counted = ("RUNS", "SHARE", "COST USD")

    def section(
        title: str,
        labels: Sequence[str],
        buckets: Sequence[Any],
        label_cells: Callable[[Any], tuple[str, ...]],
    ) -> None:
        """A table: the ``labels`` columns of each bucket, then its counted columns
        (right-aligned)."""
        rows = [
            (*label_cells(b), f"{b.count:,}", _pct(b.share), f"{b.cost_usd:.4f}") for b in buckets
        ]
        headers = (*labels, *counted)
        lines.append("")
        lines.append(title)
        table = _render(headers, rows, set(range(len(labels), len(headers)))) if rows else "(none)"
        lines.extend("  " + row for row in table.split("\n"))

    section("By status", ("STATUS",), s.by_status, lambda b: (b.key or "-",))
    section("By user", ("NAME", "EMAIL"), s.by_user, lambda b: (_cell(b.name), _cell(b.email, 40)))
    section(
        "By workforce",
        ("NAME", "TYPE"),
        s.by_workforce,
        lambda b: (_cell(b.name), _cell(b.type, 12)),
    )
    section("By sentiment", ("SENTIMENT",), s.by_sentiment, lambda b: (b.key or "(none)",))
    return "\n".join(lines)


def _write_json_array(out: IO[bytes], runs: Iterator[Run]) -> None:
    """One JSON array, written once every page has arrived: an array cut short by a failed
    page would not parse, so a failure leaves stdout empty (jsonl and csv stream instead)."""
    items = [JsonlWriter.encode([run])[:-1] for run in runs]
    out.write(b"[\n" + b",\n".join(items) + b"\n]\n" if items else b"[]\n")


class _StderrHandler(logging.Handler):
    """Library log records as ``timbal-runs: message`` lines (and retry counting)."""

    def __init__(self, verbose: bool, quiet: bool) -> None:
        super().__init__(logging.DEBUG if verbose else logging.WARNING)
        self.verbose = verbose
        self.quiet = quiet
        self.progress: ProgressLine | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            retry = "retrying in" in message
            if retry and self.progress is not None:
                self.progress.retries += 1
            if self.quiet or (retry and not self.verbose):
                return
            if not self.verbose and not record.name.startswith("timbal_integrations.export"):
                return
            if self.progress is not None:
                self.progress.clear()
            sys.stderr.write(f"{PROG}: {message}\n")
            sys.stderr.flush()
        except Exception:  # pragma: no cover - never let logging break a command
            self.handleError(record)


_PASS_ARG = re.compile(r"pass (\w+)=\.\.\.")


_VARIABLE_FLAGS: Final = {
    "TIMBAL_API_KEY": "api_key",
    "TIMBAL_API_HOST": "host",
    "TIMBAL_ORG_ID": "org_id",
    "TIMBAL_PROJECT_ID": "project_id",
}


def _config_message(error: ConfigError, args: argparse.Namespace) -> str:
    """The core's message in CLI terms: ``pass api_key=...`` becomes ``pass --api-key``, and
    a variable whose value came from a flag is called by that flag."""
    text = _PASS_ARG.sub(lambda m: f"pass {_flag(m.group(1))}", str(error))
    for variable, dest in _VARIABLE_FLAGS.items():
        if getattr(args, dest, None) is not None and text.startswith(f"{variable}:"):
            text = _flag(dest) + text[len(variable) :]
    return text


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- commands


def _cmd_list(args: argparse.Namespace, ctx: _Context) -> int:
    query = _query(args, datetime.now(UTC))
    fmt = args.format or ("table" if _is_tty(sys.stdout) else "jsonl")
    limit = args.limit
    if limit is None and fmt == "table":
        limit = TABLE_LIMIT
    if limit == 0:
        limit = None
    with _client(args) as client:
        fetch = None if limit is None else limit + (1 if fmt == "table" else 0)
        runs = client.list_runs(query, limit=fetch, parallel=args.parallel)
        out = sys.stdout.buffer
        if fmt == "table":
            shown = list(runs)
            more = limit is not None and len(shown) > limit
            shown = shown[:limit]
            if shown:
                sys.stdout.write(format_table(shown) + "\n")
            else:
                sys.stderr.write(f"{PROG}: no runs match\n")
            if more:
                sys.stdout.flush()
                sys.stderr.write(
                    f"{PROG}: showing the first {limit} runs; --limit N shows more "
                    "(0 for all), --format jsonl|csv|json for machine output\n"
                )
        elif fmt == "json":
            _write_json_array(out, runs)
        else:
            csv_header = fmt == "csv"
            for page in _batched(runs, 50):
                if fmt == "jsonl":
                    out.write(JsonlWriter.encode(page))
                else:
                    data = CsvWriter.encode(page)
                    if csv_header:
                        data = CsvWriter.header() + data
                        csv_header = False
                    out.write(data)
            if csv_header:
                out.write(CsvWriter.header())
        sys.stdout.flush()
    return 0


def _batched(runs: Iterator[Run], size: int) -> Iterator[list[Run]]:
    batch: list[Run] = []
    for run in runs:
        batch.append(run)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _cmd_export(args: argparse.Namespace, ctx: _Context) -> int:
    fmt = infer_format(args.out, args.format)
    if fmt == "parquet" and not parquet_available():
        raise _UsageError(
            f"--format parquet needs pyarrow, which is not installed: {PARQUET_INSTALL_HINT}"
        )
    now = datetime.now(UTC)
    if args.resume:
        pending = pending_export(args.out)
        if pending is not None:
            now = pending.started_at  # relative spans (--since 24h) mean what they meant then
    query = _query(args, now)
    progress = ProgressLine(sys.stderr, enabled=not args.quiet and _is_tty(sys.stderr))
    ctx.progress = progress
    ctx.export_path = args.out
    if ctx.handler is not None:
        ctx.handler.progress = progress
        ctx.handler.quiet = args.quiet
    started = time.monotonic()
    with _client(args) as client:
        result = export_runs(
            client,
            query,
            args.out,
            format=fmt,
            resume=args.resume,
            parallel=args.parallel,
            limit=args.limit,
            manifest=not args.no_manifest,
            progress=progress,
            now=now,
        )
    progress.clear()
    ctx.export_path = None
    if not args.quiet:
        sys.stderr.write(_export_line(result, time.monotonic() - started) + "\n")
    return 0


def _export_line(result: ExportResult, seconds: float) -> str:
    manifest = f"; manifest {result.manifest_path}" if result.manifest_path else ""
    resumed = " (resumed)" if result.resumed else ""
    return (
        f"{PROG}: wrote {result.count:,} runs to {result.path} "
        f"({result.format}, {human_bytes(result.bytes)}) in {seconds:.1f}s{resumed}{manifest}"
    )


def _cmd_summary(args: argparse.Namespace, ctx: _Context) -> int:
    query = _query(args, datetime.now(UTC))
    fmt = args.format or ("table" if _is_tty(sys.stdout) else "json")
    from .summary import summarize

    with _client(args) as client:
        summary = summarize(client.list_runs(query, parallel=args.parallel))
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
    else:
        filters = query.as_dict()
        if filters:
            shown = ", ".join(f"{_flag(k)} {v}" for k, v in filters.items())
            sys.stdout.write(f"Filters          {shown}\n")
        sys.stdout.write(format_summary(summary) + "\n")
    sys.stdout.flush()
    return 0


def _command_path(name: str) -> str:
    """How to spell one of our console scripts so that the printed command works."""
    if shutil.which(name):
        return name
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        try:
            return str(candidate.relative_to(Path.cwd()))
        except ValueError:
            return str(candidate)
    return name


def _cmd_demo(args: argparse.Namespace, ctx: _Context) -> int:
    from .emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, DEFAULT_PROJECT_ID, run_emulator
    from .summary import summarize

    out_dir = Path(args.dir)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    say = sys.stdout.write
    started = time.monotonic()
    with run_emulator(runs=args.runs, seed=1, end=end) as emu:
        say(
            f"Started a Timbal runs emulator in-process at {emu.base_url} "
            f"with {args.runs:,} runs from the last 30 days.\n\n"
        )
        with TimbalClient(
            api_key=emu.api_key, host=emu.base_url, org_id=emu.org_id, project_id=emu.project_id
        ) as client:
            targets = [out_dir / "runs.jsonl"]
            if parquet_available():
                targets.append(out_dir / "runs.parquet")
            for target in targets:
                result = export_runs(client, RunQuery(), target, now=datetime.now(UTC))
                say(
                    f"Exported {result.count:,} runs to {target} ({human_bytes(result.bytes)}, "
                    f"sha256 {result.sha256[:12]}...), manifest {target}.manifest.json\n"
                )
            if len(targets) == 1:
                say(f"Parquet skipped: pyarrow is not installed ({PARQUET_INSTALL_HINT}).\n")
            summary = summarize(client.list_runs(RunQuery()))
            say("\nSummary of every run\n\n" + format_summary(summary) + "\n")
            recent = list(client.list_runs(RunQuery(status="error"), limit=5))
            say("\nThe 5 latest errors\n\n")
            say((format_table(recent) if recent else "(none)") + "\n")
    runs_cmd = _command_path("timbal-runs")
    mcp_cmd = _command_path("timbal-mcp")
    env = {
        "TIMBAL_API_HOST": "http://127.0.0.1:8000",
        "TIMBAL_API_KEY": DEFAULT_API_KEY,
        "TIMBAL_ORG_ID": DEFAULT_ORG_ID,
        "TIMBAL_PROJECT_ID": DEFAULT_PROJECT_ID,
    }
    conn = (
        '{"conn_type": "timbal", "host": "http://127.0.0.1:8000", '
        f'"password": "{DEFAULT_API_KEY}", "extra": {{"org_id": "{DEFAULT_ORG_ID}", '
        f'"project_id": "{DEFAULT_PROJECT_ID}"}}}}'
    )
    lines = [
        "",
        f"Done in {time.monotonic() - started:.1f}s. Next: keep an emulator running and point "
        "the tools at it.",
        "",
        "  # terminal 1: serve the same kind of data on port 8000 (Ctrl-C stops it)",
        f"  {runs_cmd} emulator --port 8000 --runs {args.runs}",
        "",
        "  # terminal 2: settings for timbal-runs, timbal-mcp and the Python client",
        *(f"  export {k}={shlex.quote(v)}" for k, v in env.items()),
        f"  {runs_cmd} list --status error --since 24h",
        f"  {runs_cmd} export --out runs.jsonl --since 7d",
        f"  {runs_cmd} summary --since 7d",
        "",
        "  # the MCP server for AI assistants (stdio; reads the TIMBAL_* variables above)",
        f"  {mcp_cmd}",
        f"  {mcp_cmd} --transport http --port 8765   # or streamable HTTP at "
        "http://127.0.0.1:8765/mcp",
        "",
        "  # Airflow: the default Timbal connection, pointing at the emulator",
        f"  export AIRFLOW_CONN_TIMBAL_DEFAULT={shlex.quote(conn)}",
        "",
    ]
    say("\n".join(lines))
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- main


class _Context:
    """What the error handler needs to know about the command that failed."""

    def __init__(self) -> None:
        self.debug = False
        self.handler: _StderrHandler | None = None
        self.progress: ProgressLine | None = None
        self.export_path: str | None = None

    def saved_note(self) -> str:
        """For an interrupted export: how much is saved and how to continue."""
        if self.export_path is None:
            return ""
        pending = pending_export(self.export_path)
        if pending is None:
            return ""
        return (
            f"; {pending.count:,} runs are saved in {pending.path}.part — run the same "
            "command with --resume to continue"
        )


def _error(ctx: _Context, message: str) -> None:
    if ctx.progress is not None:
        ctx.progress.clear()
    sys.stderr.write(f"{PROG}: error: {_one_line(message)}\n")
    sys.stderr.flush()


def _query_error_message(error: QueryError) -> str:
    field = error.field
    text = str(error)
    prefix = f"{field}: "
    if text.startswith(prefix):
        text = text[len(prefix) :]
    return f"{_flag(field)}: {text}"


def _run(args: argparse.Namespace, ctx: _Context) -> int:
    handler: Callable[[argparse.Namespace, _Context], int] = args.handler
    try:
        return handler(args, ctx)
    except KeyboardInterrupt:
        if ctx.progress is not None:
            ctx.progress.clear()
        sys.stderr.write(f"{PROG}: interrupted{ctx.saved_note()}\n")
        return _EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (say `| head`): stop quietly, without a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _EXIT_FAILURE
    except _UsageError as exc:
        _debug_traceback(ctx)
        _error(ctx, str(exc))
        return _EXIT_USAGE
    except QueryError as exc:
        _debug_traceback(ctx)
        _error(ctx, _query_error_message(exc))
        return _EXIT_USAGE
    except ConfigError as exc:
        _debug_traceback(ctx)
        _error(ctx, _config_message(exc, args))
        return _EXIT_USAGE
    except (TimbalError, OSError) as exc:
        _debug_traceback(ctx)
        message = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and not isinstance(exc, TimbalError):
            message = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        _error(ctx, message + ctx.saved_note())
        return _EXIT_FAILURE


def _debug_traceback(ctx: _Context) -> None:
    if ctx.debug:
        if ctx.progress is not None:
            ctx.progress.clear()
        traceback.print_exc()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``timbal-runs`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((i for i, a in enumerate(arguments) if not a.startswith("-")), None)
    if command is not None and arguments[command] == "emulator":
        from .emulator import main as emulator_main

        return emulator_main(arguments[command + 1 :])
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except _UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {_one_line(str(exc))}\n")
        return _EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    ctx = _Context()
    ctx.debug = bool(args.debug)
    handler = _StderrHandler(verbose=ctx.debug, quiet=False)
    ctx.handler = handler
    library_logger = logging.getLogger("timbal_integrations")
    previous_level = library_logger.level
    library_logger.addHandler(handler)
    library_logger.setLevel(logging.DEBUG if ctx.debug else logging.WARNING)
    try:
        return _run(args, ctx)
    finally:
        library_logger.removeHandler(handler)
        library_logger.setLevel(previous_level)
