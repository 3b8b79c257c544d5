"""The tools of the ``timbal`` MCP server: ``list_runs``, ``get_run``, ``summarize_runs``.

Each tool turns its arguments into a :class:`~timbal_integrations.query.RunQuery`, calls
the core's asynchronous client, and shapes the result for a model to read. Nothing here
speaks HTTP, parses a date, or re-implements a filter. One job a module:

- :mod:`.toolbox`: :class:`TimbalTools`, the tools as the SDK publishes them, bound to
  the settings and one shared API client;
- :mod:`.scope`: a call's filters as a query (checked before any request), workforce
  names resolved and unknown filter values found among the recent runs
  (:mod:`mcp_server.known`, :mod:`mcp_server.recent`);
- :mod:`.list_runs`: a page of runs and its cursor; :mod:`.get_run`: one run and its
  reactions; :mod:`.summarize_runs`: the rollups and time series.

Every failure becomes a tool error worded by the core for an assistant, in this server's
names of its settings (:mod:`mcp_server.failures`). Every result and every error (the
resources' and prompts' too) is redacted of the API key by the core's
:func:`~timbal_integrations.redact.redact` (a server that echoes the key, or part of it,
in a run's fields, a trace, a reaction or an error cannot make the server repeat it).
"""

from __future__ import annotations

from .toolbox import TimbalTools

__all__ = ["TimbalTools"]
