"""``timbal-runs demo``: the zero-config tour, against an emulator started in-process.

Exports the emulator's runs to ``DIR/runs.jsonl`` (and ``runs.parquet`` with pyarrow),
prints their summary and the latest errors, then the commands to point ``timbal-runs``,
``timbal-mcp`` and an Airflow connection at a running emulator.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from ... import defaults
from ...export import PARQUET_INSTALL_HINT, export_runs, parquet_available
from ...query import RunQuery
from ..failures import Context
from ..options import NON_NEGATIVE, Parents
from ..parsing import Subcommands
from ..progress import human_bytes
from ..render import format_summary, format_table

__all__ = ["NAME", "add_parser", "run"]

NAME: Final = "demo"
DEMO_RUNS: Final = defaults.DEMO_RUNS


def add_parser(commands: Subcommands, parents: Parents) -> None:
    """Add ``demo`` and its flags (no connection flags: it starts its own emulator)."""
    p = commands.add_parser(
        NAME,
        parents=[parents.debug],
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
        type=NON_NEGATIVE,
        default=DEMO_RUNS,
        metavar="N",
        help=f"runs to generate (default: {DEMO_RUNS})",
    )
    p.set_defaults(run=run)


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


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Run the demo."""
    from ...client import TimbalClient
    from ...emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, DEFAULT_PROJECT_ID, run_emulator
    from ...summary import summarize

    out_dir = Path(args.dir)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    say = sys.stdout.write
    started = time.monotonic()
    with run_emulator(runs=args.runs, seed=1, end=end) as emu:
        say(
            f"Started a Timbal runs emulator in-process at {emu.base_url} "
            f"with {args.runs:,} runs from the last 30 days.\n\n"
        )
        with TimbalClient(env=emu.env()) as client:
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
