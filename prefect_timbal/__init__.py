"""Prefect integration for Timbal run history: a credentials block, tasks and a flow.

- :class:`TimbalCredentials`: a block (``api_key`` as a ``SecretStr``, ``org_id``,
  ``project_id``, ``host``) giving configured clients; register it with
  ``prefect block register -m prefect_timbal``.
- Tasks :func:`list_runs`, :func:`export_runs` and :func:`summarize_runs`, with the same
  filter names as everywhere in timbal-integrations; given retries, they retry only
  errors a retry may fix (:func:`retry_unless_permanent`, usable on your own tasks).
- :func:`export_runs_flow`: the runs of a window to a file, recorded as a Prefect asset
  with the count, the SHA-256 and the window as metadata.

Everything is a thin translation onto the core (``timbal_integrations``), which does the
HTTP, paging, retries, filter validation and file writing.
"""

from .credentials import TimbalCredentials
from .flows import export_runs_flow
from .tasks import export_runs, list_runs, retry_unless_permanent, summarize_runs

__all__ = [
    "TimbalCredentials",
    "export_runs",
    "export_runs_flow",
    "list_runs",
    "retry_unless_permanent",
    "summarize_runs",
]
