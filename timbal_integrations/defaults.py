"""Every default of timbal-integrations, in one place.

The core, the command line, the MCP server and the Airflow, Dagster and Prefect
integrations import their defaults from here; none writes a number of its own. Importing
this module imports nothing else.

Requests and retries (the core's clients, ``timbal-runs``, the Airflow hook, the Dagster
resource, the Prefect block)::

    REQUEST_TIMEOUT   30 s per request
    MAX_RETRIES       6 retries after the first attempt (429, 5xx, timeouts, dropped
                      connections), waiting Retry-After (capped at RETRY_AFTER_MAX) or an
                      exponential backoff with full jitter between BACKOFF_BASE and
                      BACKOFF_MAX

The MCP server retries less and waits less (``MCP_MAX_RETRIES``, ``MCP_BACKOFF_MAX``): an
assistant is waiting for the answer, and a failed call is cheap to repeat. So does the
Airflow hook (``AIRFLOW_MAX_RETRIES``, ``AIRFLOW_BACKOFF_MAX``: at most 7.5 s of backoff
per request): Airflow's own task retries are the place to wait out a longer outage.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AIRFLOW_BACKOFF_BASE",
    "AIRFLOW_BACKOFF_MAX",
    "AIRFLOW_MAX_RETRIES",
    "ARROW_BATCH_ROWS",
    "AUTO_PARALLEL_INITIAL",
    "AUTO_PARALLEL_MAX",
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "CHECKPOINT_INTERVAL",
    "CLI_TABLE_LIMIT",
    "DAGSTER_BACKFILL_DAYS",
    "DEMO_RUNS",
    "MAX_CONNECTIONS",
    "MAX_FILTER_CHARS",
    "MAX_PAGE_TOKEN_CHARS",
    "MAX_PARALLEL",
    "MAX_RETRIES",
    "MAX_RETRIES_LIMIT",
    "MAX_RUN_ID_CHARS",
    "MAX_TIME_BUCKETS",
    "MCP_BACKOFF_BASE",
    "MCP_BACKOFF_MAX",
    "MCP_DEFAULT_LIMIT",
    "MCP_DEFAULT_MAX_RUNS",
    "MCP_FEEDBACK_CHARS",
    "MCP_FULL_FIELD_CHARS",
    "MCP_GET_RUN_FULL_CHARS",
    "MCP_GET_RUN_SUMMARY_CHARS",
    "MCP_GET_RUN_SUMMARY_STRUCTURED_CHARS",
    "MCP_MAX_CURSOR_CHARS",
    "MCP_MAX_EMAIL_SCAN",
    "MCP_MAX_LIMIT",
    "MCP_MAX_MAX_RUNS",
    "MCP_MAX_PAGES_PER_CALL",
    "MCP_MAX_REACTIONS",
    "MCP_MAX_RETRIES",
    "MCP_MAX_TIME_BUCKETS",
    "MCP_PREVIEW_CHARS",
    "MCP_RECENT_SCAN_RUNS",
    "MCP_RECENT_TTL",
    "MCP_RESOURCE_CHARS",
    "MCP_SUMMARY_TOP_N",
    "PARALLEL_BUFFER_PAGES",
    "PARQUET_ROW_GROUP_ROWS",
    "REQUEST_TIMEOUT",
    "RETRY_AFTER_MAX",
    "SENSOR_BATCH_SIZE",
    "SENSOR_INTERVAL_SECONDS",
    "SENSOR_LOOKBACK_HOURS",
    "SENSOR_MAX_RUNS",
    "SPOOL_READ_BYTES",
    "SYNC_COMMIT_SECONDS",
    "SYNC_LOOKBACK_SECONDS",
    "SYNC_RECHECK_CONCURRENCY",
    "SYNC_REPORT_IDS",
    "XCOM_MAX_RUNS",
]

# --------------------------------------------------------------------------- requests

REQUEST_TIMEOUT: Final = 30.0
"""Seconds to wait for each HTTP response (connect, read, write and pool)."""

MAX_RETRIES: Final = 6
"""Retries of a request after its first attempt (so at most 7 requests)."""

BACKOFF_BASE: Final = 0.5
"""Seconds: the ceiling of the first backoff; it doubles with every retry."""

BACKOFF_MAX: Final = 30.0
"""Seconds: the largest ceiling of a backoff."""

RETRY_AFTER_MAX: Final = 60.0
"""Seconds: the longest ``Retry-After`` honoured; a larger one is capped to this."""

MAX_RETRIES_LIMIT: Final = 100
"""The most retries a front end accepts as a setting (``--max-retries``, the operator)."""

MAX_CONNECTIONS: Final = 32
"""Connections an asynchronous client keeps open at most."""

MAX_PAGE_TOKEN_CHARS: Final = 8192
"""The longest page token a client sends back."""

MAX_RUN_ID_CHARS: Final = 512
"""The longest run id or idempotency key accepted."""

MAX_FILTER_CHARS: Final = 512
"""The longest string filter value accepted (``status``, ``user_id``...)."""

MAX_TIME_BUCKETS: Final = 1_000
"""The most buckets a summary's time series holds (``bucket="hour"``: about 41 days;
``"day"``: about 2.7 years; ``"week"``: about 19 years). A longer series is refused."""

# --------------------------------------------------------------------------- paging

MAX_PARALLEL: Final = 64
"""The most time windows a listing or an export fetches at once (``parallel=``)."""

PARALLEL_BUFFER_PAGES: Final = 16
"""Pages buffered per window of an ordered parallel listing (bounds its memory)."""

AUTO_PARALLEL_INITIAL: Final = 4
"""Requests ``parallel="auto"`` keeps in flight at first (it grows while throughput does)."""

AUTO_PARALLEL_MAX: Final = 32
"""The most requests ``parallel="auto"`` keeps in flight (the client's connection pool)."""

# --------------------------------------------------------------------------- exports

CHECKPOINT_INTERVAL: Final = 0.2
"""Seconds between two checkpoints of an export while it fetches."""

PARQUET_ROW_GROUP_ROWS: Final = 16_384
"""Rows per Parquet row group; bounds the memory of a Parquet export."""

ARROW_BATCH_ROWS: Final = 4096
"""Rows turned into one Arrow record batch at a time."""

SPOOL_READ_BYTES: Final = 1 << 20
"""Bytes read at a time when hashing, concatenating or converting spool files."""

# --------------------------------------------------------------------------- syncs

SYNC_LOOKBACK_SECONDS: Final = 3 * 86_400
"""How far back of its high-water mark a sync lists runs again (3 days): runs created
then may still finish, be priced or gain reactions."""

SYNC_COMMIT_SECONDS: Final = 30.0
"""Seconds between two commits of a first sync's progress (the days it has completed),
so that a first sync of a long history that is killed continues instead of starting
over."""

SYNC_RECHECK_CONCURRENCY: Final = 8
"""``get_run`` requests a sync has in flight at once to re-check runs that were still
running at the last sync."""

SYNC_REPORT_IDS: Final = 20
"""Run ids a sync report lists at most per kind of change (the counts are always whole)."""

# --------------------------------------------------------------------------- front ends

CLI_TABLE_LIMIT: Final = 50
"""Runs ``timbal-runs list`` shows in its table unless told otherwise."""

DEMO_RUNS: Final = 3000
"""Runs the demo's emulator generates."""

XCOM_MAX_RUNS: Final = 1000
"""Runs the Airflow operator puts into XCom at most, unless told otherwise."""

AIRFLOW_MAX_RETRIES: Final = 4
"""Retries of a request made by the Airflow hook, its operator, sensor and triggers
(fewer than the core's: Airflow's task retries wait out longer outages)."""

AIRFLOW_BACKOFF_BASE: Final = 0.5
"""Seconds: the Airflow hook's first backoff ceiling."""

AIRFLOW_BACKOFF_MAX: Final = 4.0
"""Seconds: the Airflow hook's largest backoff ceiling (so 0.5 + 1 + 2 + 4 = 7.5 s of
backoff at most over its 4 retries)."""

DAGSTER_BACKFILL_DAYS: Final = 30
"""Days (partitions) one run of a Dagster backfill exports at most."""

SENSOR_LOOKBACK_HOURS: Final = 24
"""Hours before the newest matching run that a Dagster sensor's next evaluation looks
again, for runs that started to match late."""

SENSOR_BATCH_SIZE: Final = 100
"""Timbal runs per run a Dagster sensor requests."""

SENSOR_MAX_RUNS: Final = 1000
"""New Timbal runs one Dagster sensor evaluation takes at most."""

SENSOR_INTERVAL_SECONDS: Final = 60
"""Seconds between two evaluations of a Dagster sensor."""

MCP_MAX_RETRIES: Final = 4
"""Retries of a request made by an MCP tool (fewer than the core's: a model is waiting)."""

MCP_BACKOFF_BASE: Final = 0.5
"""Seconds: the MCP server's first backoff ceiling."""

MCP_BACKOFF_MAX: Final = 8.0
"""Seconds: the MCP server's largest backoff ceiling."""

MCP_DEFAULT_LIMIT: Final = 20
"""Runs one ``list_runs`` call returns unless told otherwise."""

MCP_MAX_LIMIT: Final = 200
"""Runs one ``list_runs`` call returns at most."""

MCP_DEFAULT_MAX_RUNS: Final = 10_000
"""Runs ``summarize_runs`` reads unless told otherwise."""

MCP_MAX_MAX_RUNS: Final = 100_000
"""Runs ``summarize_runs`` reads at most."""

MCP_MAX_EMAIL_SCAN: Final = 5_000
"""Runs one ``list_runs`` call scans at most when matching ``user_email``."""

MCP_SUMMARY_TOP_N: Final = 25
"""Buckets each ``summarize_runs`` breakdown keeps (the rest are summed as others)."""

MCP_MAX_PAGES_PER_CALL: Final = 1_000
"""API pages one ``list_runs`` call reads at most."""

MCP_MAX_CURSOR_CHARS: Final = 4096
"""The longest ``list_runs`` cursor accepted back."""


MCP_GET_RUN_SUMMARY_CHARS: Final = 24_000
"""The most characters of the text of a ``get_run`` result with ``detail="summary"``
(what a model reads): about 6,000 tokens, however big the trace."""

MCP_GET_RUN_SUMMARY_STRUCTURED_CHARS: Final = 48_000
"""The most characters of its structured content (JSON keys repeat on every span, so it
is about twice the text for the same tree): about 12,000 tokens."""

MCP_GET_RUN_FULL_CHARS: Final = 80_000
"""The most characters of a ``get_run`` result with ``detail="full"`` (text and
structured content each): about 20,000 tokens, under the ~25k-token result caps of
some assistants."""

MCP_PREVIEW_CHARS: Final = 300
"""Characters of an input, an output or an error a ``get_run`` summary shows."""

MCP_FULL_FIELD_CHARS: Final = 2_000
"""Characters of each input, output or traceback ``get_run(detail="full")`` starts from
(fewer when the trace is too big for its budget)."""

MCP_FEEDBACK_CHARS: Final = 500
"""Characters of a reaction's feedback a ``get_run`` result shows."""

MCP_MAX_REACTIONS: Final = 20
"""Reactions a ``get_run`` result lists (the newest); the run resource has up to 100."""

MCP_RESOURCE_CHARS: Final = 1_000_000
"""The most characters of a ``timbal://runs/...`` resource; a bigger trace has its
longest strings cut (the document says what was cut)."""

MCP_MAX_TIME_BUCKETS: Final = 400
"""Buckets a ``summarize_runs`` time series holds at most (fewer than the core's 1,000:
an assistant reads every bucket)."""

MCP_RECENT_SCAN_RUNS: Final = 1_000
"""Newest runs scanned to learn the statuses, users and workforces in use (completions,
workforce names, unknown filter values)."""

MCP_RECENT_TTL: Final = 60.0
"""Seconds what that scan learned is reused before scanning again."""
