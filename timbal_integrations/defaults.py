"""Every default of timbal-integrations, in one place.

The core, the command line, the MCP server and the Airflow, Dagster and Prefect
integrations import their defaults from here; none writes a number of its own. Importing
this module imports nothing else.

Requests and retries (the core's clients, ``timbal-runs``, the Airflow hook, the Dagster
resource, the Prefect block)::

    REQUEST_TIMEOUT   30 s per request, in all: connecting, sending and every read of the
                      body (each phase is bounded by it too)
    MAX_RESPONSE_BYTES  64 MiB of decoded body per response, at most
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
    "MAX_EMPTY_PAGES",
    "MAX_FILTER_CHARS",
    "MAX_METADATA_CHARS",
    "MAX_METADATA_DEPTH",
    "MAX_PAGES",
    "MAX_PAGE_TOKEN_CHARS",
    "MAX_PARALLEL",
    "MAX_REQUEST_TIMEOUT",
    "MAX_RESPONSE_BYTES",
    "MAX_RETRIES",
    "MAX_RETRIES_LIMIT",
    "MAX_RUN_ID_CHARS",
    "MAX_TIME_BUCKETS",
    "MAX_URL_CHARS",
    "MCP_BACKOFF_BASE",
    "MCP_BACKOFF_MAX",
    "MCP_DEFAULT_LIMIT",
    "MCP_DEFAULT_MAX_RUNS",
    "MCP_FEEDBACK_CHARS",
    "MCP_FULL_FIELD_CHARS",
    "MCP_GET_RUN_FULL_CHARS",
    "MCP_GET_RUN_SUMMARY_CHARS",
    "MCP_GET_RUN_SUMMARY_STRUCTURED_CHARS",
    "MCP_HTTP_HEADER_TIMEOUT",
    "MCP_HTTP_IDLE_TIMEOUT",
    "MCP_HTTP_MAX_CONNECTIONS",
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
    "SYNC_MAX_STATE_BYTES",
    "SYNC_RECHECK_CONCURRENCY",
    "SYNC_REPORT_IDS",
    "XCOM_MAX_RUNS",
]

# --------------------------------------------------------------------------- requests

REQUEST_TIMEOUT: Final = 30.0
"""Seconds one HTTP request may take in all: waiting for a connection, connecting,
sending, and every read of the response (headers and body, however slowly the server
sends them). Each of those phases is bounded by it too."""

MAX_REQUEST_TIMEOUT: Final = 3600.0
"""Seconds: the longest request timeout accepted as a setting."""

MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
"""Bytes of one response body, counted as they are decoded (gzip, deflate, br): reading
stops past it. A page of runs is a few hundred kB; a run's detail with a big trace a few
MB."""

MAX_URL_CHARS: Final = 65_536
"""The longest request URL sent (httpx's own limit): longer filters are refused first."""

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

MAX_PAGE_TOKEN_CHARS: Final = 16_384
"""The longest page token, in characters as sent (percent-encoded): one given by a
caller is refused beyond it, one handed out by the server is a broken response."""

MAX_RUN_ID_CHARS: Final = 512
"""The longest run id or idempotency key accepted."""

MAX_FILTER_CHARS: Final = 512
"""The longest string filter value accepted (``status``, ``user_id``...)."""

MAX_METADATA_CHARS: Final = 4096
"""The longest ``metadata`` filter, in characters of compact JSON."""

MAX_METADATA_DEPTH: Final = 10
"""The deepest nesting of objects and arrays a ``metadata`` filter may have."""

MAX_TIME_BUCKETS: Final = 1_000
"""The most buckets a summary's time series holds (``bucket="hour"``: about 41 days;
``"day"``: about 2.7 years; ``"week"``: about 19 years). A longer series is refused."""

# --------------------------------------------------------------------------- paging

MAX_EMPTY_PAGES: Final = 1000
"""Empty pages in a row (each with a next page token) a listing follows at most."""

MAX_PAGES: Final = 1_000_000
"""Pages one listing (one time window) follows at most."""

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

SYNC_MAX_STATE_BYTES: Final = 64 * 1024 * 1024
"""The largest ``state.json``, ``manifest.json`` or journal a sync reads: larger is not
a sync's own file (a manifest of ten years of daily partitions is about 1 MB)."""

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

MCP_MAX_CURSOR_CHARS: Final = 4 * -(-(2 * MAX_PAGE_TOKEN_CHARS + 256) // 3)
"""The longest ``list_runs`` cursor accepted back: room for any page token the client
accepts from the server. A cursor is base64 of JSON; a token character that JSON
escapes (6 bytes) takes 3 of the token's bound, percent-encoded, so its JSON is at most
twice the bound, plus the cursor's other fields."""

MCP_HTTP_HEADER_TIMEOUT: Final = 10.0
"""Seconds a client of ``timbal-mcp --transport http`` has to send a request's headers,
from its first byte (or from connecting)."""

MCP_HTTP_IDLE_TIMEOUT: Final = 5
"""Seconds an idle keep-alive connection to ``timbal-mcp --transport http`` stays open."""

MCP_HTTP_MAX_CONNECTIONS: Final = 100
"""Connections ``timbal-mcp --transport http`` holds open at once, at most."""

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
