"""``timbal-mcp`` (and ``python -m mcp_server``): run the ``timbal`` MCP server.

Configuration comes from ``TIMBAL_API_KEY``, ``TIMBAL_API_HOST``, ``TIMBAL_ORG_ID`` and
``TIMBAL_PROJECT_ID``; the flags ``--api-key``, ``--api-host``, ``--org-id`` and
``--project-id`` override them. Missing settings are reported on stderr at start; the
server still starts, and each tool call reports the same problem until it is fixed.

Transports: stdio (the default, for Claude Desktop, Claude Code, VS Code...) and
streamable HTTP (``--transport http --host 127.0.0.1 --port 8765``). Over HTTP, a
non-loopback ``--host`` requires a bearer token (``--auth-token`` or
``TIMBAL_MCP_TOKEN``) that every request must carry, and connections are bounded:
``--header-timeout`` (seconds to send a request's headers, 10), ``--idle-timeout`` (an
idle keep-alive connection, 5) and ``--max-connections`` (100).

Exit status: 0 on a clean stop, 2 on bad usage (bad flags, a non-loopback host without
a token), 1 when the server cannot start (say the port is taken).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Final

from timbal_integrations import defaults
from timbal_integrations._version import __version__

from ._hosts import is_loopback

__all__ = ["build_parser", "console", "main"]

_LOG_LEVELS: Final = ("debug", "info", "warning", "error")
_MIN_TOKEN_CHARS: Final = 16


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``timbal-mcp``."""
    parser = argparse.ArgumentParser(
        prog="timbal-mcp",
        description=(
            "Serve Timbal run history to AI assistants over MCP (tools list_runs, get_run, "
            "summarize_runs). Settings come from TIMBAL_API_KEY, TIMBAL_API_HOST, "
            "TIMBAL_ORG_ID and TIMBAL_PROJECT_ID unless given as flags."
        ),
    )
    parser.add_argument("--version", action="version", version=f"timbal-mcp {__version__}")
    parser.add_argument(
        "--transport",
        choices=("stdio", "http", "streamable-http"),
        default="stdio",
        help="stdio (default) or http (streamable HTTP)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="HTTP port (8765; 0 picks one)")
    parser.add_argument("--path", default="/mcp", help="HTTP endpoint path (/mcp)")
    parser.add_argument(
        "--auth-token",
        default=None,
        help="bearer token every HTTP request must carry (default: TIMBAL_MCP_TOKEN); "
        "required when --host is not a loopback address",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a Host header value HTTP clients may use besides localhost (repeatable); "
        "DNS-rebinding protection refuses others",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=defaults.MCP_HTTP_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="HTTP: seconds a client has to send a request's headers, from connecting or "
        f"from the request's first byte; slower connections are closed "
        f"({defaults.MCP_HTTP_HEADER_TIMEOUT:g})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=int,
        default=defaults.MCP_HTTP_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="HTTP: seconds an idle keep-alive connection stays open "
        f"({defaults.MCP_HTTP_IDLE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=defaults.MCP_HTTP_MAX_CONNECTIONS,
        metavar="N",
        help="HTTP: connections open at once, at most; one more closes the connection "
        "waiting longest for its headers, or is refused "
        f"({defaults.MCP_HTTP_MAX_CONNECTIONS})",
    )
    parser.add_argument("--api-key", default=None, help="Timbal API key (TIMBAL_API_KEY)")
    parser.add_argument("--api-host", default=None, help="Timbal API host (TIMBAL_API_HOST)")
    parser.add_argument("--org-id", default=None, help="organisation id (TIMBAL_ORG_ID)")
    parser.add_argument("--project-id", default=None, help="project id (TIMBAL_PROJECT_ID)")
    parser.add_argument(
        "--log-level", choices=_LOG_LEVELS, default="warning", help="stderr log level (warning)"
    )
    return parser


def _fail(message: str) -> int:
    print(f"timbal-mcp: error: {message}", file=sys.stderr, flush=True)
    return 2


def console() -> int:
    """The ``timbal-mcp`` console script: :func:`main` in a process of its own."""
    from timbal_integrations._startup import defer_httpx_cli

    defer_httpx_cli()
    return main(_own_process=True)


def main(argv: Sequence[str] | None = None, *, _own_process: bool = False) -> int:
    """Run the server until it is stopped; returns the exit status."""
    args = build_parser().parse_args(argv)
    transport = "http" if args.transport == "streamable-http" else args.transport
    token = args.auth_token if args.auth_token is not None else os.environ.get("TIMBAL_MCP_TOKEN")
    token = token.strip() if token else None
    if transport == "http":
        if not 0 <= args.port <= 65535:
            return _fail(f"--port {args.port} is not a TCP port (0 to 65535)")
        if not args.path.startswith("/"):
            return _fail(f"--path {args.path!r} must start with '/'")
        limit = defaults.MAX_REQUEST_TIMEOUT
        if not 0 < args.header_timeout <= limit:
            return _fail(
                f"--header-timeout {args.header_timeout:g} is not a number of seconds above 0 "
                f"and at most {limit:g}"
            )
        if not 1 <= args.idle_timeout <= limit:
            return _fail(
                f"--idle-timeout {args.idle_timeout} is not a whole number of seconds from 1 "
                f"to {limit:g}"
            )
        if not 1 <= args.max_connections <= 100_000:
            return _fail(f"--max-connections {args.max_connections} is not from 1 to 100,000")
        if not token and not is_loopback(args.host):
            return _fail(
                f"--host {args.host} is not a loopback address: set --auth-token (or "
                "TIMBAL_MCP_TOKEN) so that only clients holding the token can connect"
            )
        if token is not None and len(token) < _MIN_TOKEN_CHARS:
            return _fail(
                f"the bearer token is too short (at least {_MIN_TOKEN_CHARS} characters; "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )

    level = args.log_level.upper()
    logging.basicConfig(
        level=level, stream=sys.stderr, format="timbal-mcp: %(levelname)s %(name)s: %(message)s"
    )

    # Imported after parsing, so that --help and usage errors stay fast.
    from timbal_integrations._startup import importing, without

    with importing(freeze=_own_process):
        from timbal_integrations.errors import ConfigError
        from timbal_integrations.wording import describe

        from .server import ServerSettings, create_server

    settings = ServerSettings(
        api_key=args.api_key,
        host=args.api_host,
        org_id=args.org_id,
        project_id=args.project_id,
    )
    try:
        config = settings.resolve()
    except ConfigError as exc:
        problem = describe(exc, "terminal", names=settings.flag_names())
        print(
            f"timbal-mcp: configuration problem: {problem}. The server starts anyway, and "
            "every tool call will report this until it is fixed.",
            file=sys.stderr,
            flush=True,
        )
    else:
        if level in ("DEBUG", "INFO"):
            print(
                f"timbal-mcp: project {config.org_id}/{config.project_id} at {config.base_url}",
                file=sys.stderr,
                flush=True,
            )
    # Logging is configured above, so the handler the SDK builds with rich (when
    # installed) would be discarded: keep it from importing rich for nothing.
    with importing(freeze=_own_process), without("rich"):
        server = create_server(settings, log_level=level)

    if transport == "stdio":
        if sys.stdin.isatty():
            print(
                "timbal-mcp: speaking MCP on stdin/stdout; add this command to an MCP client "
                "(see the README), or use --transport http",
                file=sys.stderr,
                flush=True,
            )
        with contextlib.suppress(KeyboardInterrupt):
            server.run("stdio")
        return 0

    from .transport import build_http_app, serve_http

    try:
        app = build_http_app(
            server, host=args.host, path=args.path, token=token, allowed_hosts=args.allowed_host
        )
    except ValueError as exc:
        return _fail(str(exc))
    try:
        serve_http(
            app,
            host=args.host,
            port=args.port,
            path=args.path,
            log_level=args.log_level,
            header_timeout=args.header_timeout,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections,
        )
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # uvicorn exits this way when it cannot bind
        return 1 if exc.code else 0
    except OSError as exc:
        print(f"timbal-mcp: error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(console())
