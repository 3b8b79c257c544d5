"""The options every ``timbal-runs`` command shares: connection flags, filter flags, and
turning them into the core's ``RunQuery`` and client.

The flags ``--api-key --host --org-id --project-id`` override ``TIMBAL_API_KEY``,
``TIMBAL_API_HOST``, ``TIMBAL_ORG_ID`` and ``TIMBAL_PROJECT_ID``; the filters are the
core's, by the same names everywhere (``--user-id`` is ``user_id``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from .. import defaults
from ..config import VARIABLES
from ..limits import AUTO, Parallel
from ..query import FILTER_NAMES, RunQuery
from .draw import COLOR_CHOICES
from .parsing import OneLineParser, Subcommands, UsageError, flag, seconds, whole_number

if TYPE_CHECKING:
    from ..client import TimbalClient
    from ..retry import OnRetry

__all__ = [
    "FILTER_HELP",
    "NON_NEGATIVE",
    "PARALLEL",
    "RETRIES",
    "Parents",
    "add_color",
    "add_parallel",
    "check_format",
    "client_for",
    "parents",
    "query_from",
    "setting_names",
]

FILTER_HELP: Final = {
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

_METAVARS: Final = {
    "since": "TIME",
    "until": "TIME",
    "metadata": "JSON",
    "sort_by": "FIELD",
    "sort_order": "ORDER",
}

NON_NEGATIVE: Final = whole_number(minimum=0)
"""A whole number, 0 or more (``--limit``, ``--runs``)."""

_WINDOWS: Final = whole_number(minimum=1, maximum=defaults.MAX_PARALLEL, what="a number")


def PARALLEL(text: str) -> Parallel:
    """``--parallel``: a number of requests in flight (1 to 64), or ``auto``."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return _WINDOWS(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number from 1 to {defaults.MAX_PARALLEL}, or auto"
        ) from None


RETRIES: Final = whole_number(
    minimum=0, maximum=defaults.MAX_RETRIES_LIMIT, what="a number of retries"
)
"""``--max-retries``: a number of retries."""


def add_parallel(
    parser: argparse.ArgumentParser,
    help: str | None = None,
    default: Parallel | None = None,
) -> None:
    """Add ``--parallel N|auto`` (requests in flight over pieces of time that balance
    themselves; ``auto`` picks N within the API's rate limit). ``default`` is what a
    command uses without the flag (None: sequential): ``export``, ``summary`` and
    ``sync`` default to ``auto`` (see benchmarks/RESULTS.md, sections 5 and 6)."""
    if help is None:
        help = (
            "keep N requests in flight, or auto (the default): as many as throughput and "
            "the rate limit allow; 1 for one request at a time"
            if default == AUTO
            else "keep N requests in flight (or auto: as many as the rate limit allows)"
        )
    parser.add_argument("--parallel", type=PARALLEL, metavar="N|auto", help=help, default=default)


def add_color(parser: argparse.ArgumentParser) -> None:
    """Add ``--color auto|always|never`` (read it with :func:`.draw.style_for`)."""
    parser.add_argument(
        "--color",
        choices=COLOR_CHOICES,
        default="auto",
        help="colour: auto (default: on a terminal, unless NO_COLOR is set), always, never",
    )


def check_format(fmt: str | None) -> None:
    """A usage error when the file format ``fmt`` (``--format``, or the one a file name
    implies) is Parquet and pyarrow is not installed, saying how to install it."""
    if fmt != "parquet":
        return
    from ..export import PARQUET_INSTALL_HINT, parquet_available

    if not parquet_available():
        raise UsageError(
            f"--format parquet needs pyarrow, which is not installed: {PARQUET_INSTALL_HINT}"
        )


@dataclass(frozen=True)
class Parents:
    """The parent parsers commands share: ``filters`` (the filter flags), ``common``
    (connection, retries, timeout, ``--debug``) and ``debug`` (``--debug`` alone)."""

    filters: OneLineParser
    common: OneLineParser
    debug: OneLineParser

    def query_command(
        self, commands: Subcommands, name: str, *, help: str, description: str
    ) -> OneLineParser:
        """The subparser of a command that queries runs: filters and connection flags."""
        return commands.add_parser(
            name, parents=[self.filters, self.common], help=help, description=description
        )


def _debug() -> OneLineParser:
    parent = OneLineParser(add_help=False)
    parent.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and every retry",
    )
    return parent


def _common() -> OneLineParser:
    parent = OneLineParser(add_help=False, parents=[_debug()])
    group = parent.add_argument_group("connection (flags override the TIMBAL_* variables)")
    group.add_argument("--api-key", metavar="KEY", help="API key (TIMBAL_API_KEY)")
    group.add_argument(
        "--host", metavar="HOST", help="API host or URL (TIMBAL_API_HOST; api.timbal.ai)"
    )
    group.add_argument("--org-id", metavar="ID", help="organisation id (TIMBAL_ORG_ID)")
    group.add_argument("--project-id", metavar="ID", help="project id (TIMBAL_PROJECT_ID)")
    group.add_argument(
        "--max-retries",
        type=RETRIES,
        metavar="N",
        help="retries of a failed request (429, 5xx, network) before giving up "
        f"(default: {defaults.MAX_RETRIES})",
    )
    group.add_argument(
        "--timeout",
        type=seconds,
        metavar="SECONDS",
        help="the most one request may take in all: connecting, sending and reading the "
        f"whole response, however slowly the server sends it (default: "
        f"{defaults.REQUEST_TIMEOUT:g}; at most {defaults.MAX_REQUEST_TIMEOUT:g})",
    )
    return parent


def _filters() -> OneLineParser:
    parent = OneLineParser(add_help=False)
    group = parent.add_argument_group("filters")
    for name in FILTER_NAMES:
        kwargs: dict[str, Any] = {"dest": name, "help": FILTER_HELP[name]}
        if name == "roots":
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        else:
            kwargs["metavar"] = _METAVARS.get(name, "VALUE")
        group.add_argument(flag(name), **kwargs)
    return parent


def parents() -> Parents:
    """Fresh parent parsers for the commands."""
    return Parents(filters=_filters(), common=_common(), debug=_debug())


def query_from(args: argparse.Namespace, now: datetime) -> RunQuery:
    """The filter flags as the core's query (``now`` resolves spans such as ``24h``)."""
    return RunQuery.from_filters({name: getattr(args, name) for name in FILTER_NAMES}, now=now)


def client_for(args: argparse.Namespace, *, on_retry: OnRetry | None = None) -> TimbalClient:
    """A client configured by the connection flags (the variables fill in the rest)."""
    from ..client import TimbalClient

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
        on_retry=on_retry,
        **kwargs,
    )


def setting_names(args: argparse.Namespace) -> dict[str, str]:
    """What messages call the core's names on this command line (for ``describe``).

    Every argument of the command is its flag (``user_id`` → ``--user-id``, ``api_key``
    → ``--api-key``), and a ``TIMBAL_*`` variable whose value came from a flag is called
    by that flag.
    """
    names = {dest: flag(dest) for dest in vars(args) if dest not in ("command", "run")}
    for setting, variable in VARIABLES.items():
        names.setdefault(setting, flag(setting))
        if getattr(args, setting, None) is not None:
            names[variable] = flag(setting)
    return names
