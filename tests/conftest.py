"""Shared test set-up.

- Retries never sleep in tests (the policy still counts and computes delays).
- The emulator fixtures (``timbal_emulator``, ``timbal_emulator_factory``) come from the
  project's own pytest plugin.
- ``make test`` runs the suite in two environments, because Prefect and Airflow cannot
  share one: ``.venv`` (Airflow, Dagster: everything but ``tests/prefect``) and
  ``.venv-prefect`` (``tests/prefect``). Where Prefect is not installed, ``tests/prefect``
  is not collected at all (neither run nor skipped). ``TIMBAL_REQUIRE_AIRFLOW=1``,
  ``TIMBAL_REQUIRE_DAGSTER=1`` and ``TIMBAL_REQUIRE_PREFECT=1`` (set by ``make test``, each
  for its share) make a skipped test of that framework fail the run; with any of them
  set, a run that executed no test at all fails too.
- The leak guard: no test may let a secret (an API key, an MCP auth token) reach a log
  record, captured stdout/stderr, a subprocess's output, an exception message or repr,
  an MCP tool result, a Dagster event (logs, metadata, failures), run or sensor tick, or
  a Prefect event (asset metadata), flow or task result. See "The leak guard" below.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from timbal_integrations import errors, retry
from timbal_integrations.config import Secret
from timbal_integrations.emulator import DEFAULT_API_KEY, Emulator
from timbal_integrations.redact import DISTINCT_CHARS, secret_forms

pytest_plugins = ["timbal_integrations.emulator.pytest_plugin", "pytester"]


@pytest.fixture(autouse=True)
def _no_retry_sleep() -> Iterator[None]:
    with retry.testing(True):
        yield


def _interruptible_children() -> None:
    """Let the suite's children be stopped with Ctrl-C, whatever started the suite.

    A shell that runs a command in the background without job control (``make test &``
    in a script, ``( ... & )``) starts it with SIGINT ignored, and every process it
    starts inherits that: the tests that stop an emulator or an export with SIGINT
    then waited for it forever (a full run launched that way failed five of them)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# The frameworks whose tests a share of ``make test`` requires (marker -> variable).
_REQUIRE = {
    "airflow": "TIMBAL_REQUIRE_AIRFLOW",
    "dagster": "TIMBAL_REQUIRE_DAGSTER",
    "prefect": "TIMBAL_REQUIRE_PREFECT",
}
_skipped: dict[str, list[str]] = {marker: [] for marker in _REQUIRE}
_executed = 0


def _installed(name: str) -> bool:
    """Whether the package is installed (a bare folder of that name on ``sys.path``, which
    Python would take for a namespace package, does not count)."""
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.origin is not None


# Prefect's tests are the share of .venv-prefect: elsewhere they are not collected.
collect_ignore = (
    [] if _installed("prefect") or os.environ.get(_REQUIRE["prefect"]) == "1" else ["prefect"]
)


def _required() -> list[str]:
    return [marker for marker, variable in _REQUIRE.items() if os.environ.get(variable) == "1"]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _executed
    if report.when == "call" and (report.passed or report.failed):
        _executed += 1
    if report.skipped:
        for marker, skipped in _skipped.items():
            if marker in report.keywords:
                skipped.append(report.nodeid)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A test module skipped whole (``importorskip`` at import) counts for its folder."""
    if report.skipped:
        parts = report.nodeid.replace("\\", "/").split("/")
        for marker, skipped in _skipped.items():
            if marker in parts:
                skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    required = _required()
    if not required:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for marker in required:
        skipped = _skipped[marker]
        if not skipped:
            continue
        if reporter is not None:
            reporter.write_line(
                f"FAILED: {len(skipped)} {marker} test(s) were skipped, but "
                f"{_REQUIRE[marker]}=1 requires them: {skipped[0]} ...",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _executed == 0 and not session.config.option.collectonly:
        if reporter is not None:
            reporter.write_line("FAILED: no test was executed", red=True)
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED


# ---------------------------------------------------------------------------------------
# The leak guard.
#
# A session-wide registry of secrets, filled automatically:
#   - every API key a client resolves (each ``Secret`` built, wherever it comes from),
#   - the key of every emulator started by ``timbal_emulator_factory``,
#   - every auth token given to the MCP HTTP transport's ``BearerTokenMiddleware``,
# and by hand with the ``leak_guard`` fixture (``leak_guard.register(value)``).
# With each secret, the forms a server may echo it in are registered too (URL-encoded,
# base64 at each alignment: ``timbal_integrations.redact.secret_forms``) and its last 8
# characters (those with at least 4 different characters: "00000000" is not a leak). The
# emulator's public demo key (``demo-key``, printed by ``timbal-runs demo`` on purpose)
# and values shorter than 8 characters (too likely to occur by chance) are never
# registered.
#
# Collected per test phase, and searched for every registered secret when the phase
# ends: log records (a handler on the root logger), what pytest captured of
# stdout/stderr (fd level, so subprocesses that inherit them too), what a test read
# back with capsys/capfd, the output of ``subprocess.run(...)``, the message and repr
# of every TimbalError created (except those a test builds itself, say to check that a
# message gets scrubbed), and every MCP tool result or tool error (tapped once
# ``mcp_server.server`` is imported, as test modules do at collection). A passing test
# through which a secret leaked is turned into a failure naming where it leaked.
# Collection is cheap: log records are kept and formatted only at the check.

_MIN_SECRET = 8
_PUBLIC = frozenset({DEFAULT_API_KEY})


class LeakGuard:
    """The registry of secrets and what the current test phase produced."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self._lock = threading.Lock()
        self._records: list[logging.LogRecord] = []
        self._texts: list[tuple[str, str]] = []

    # -- registry ----------------------------------------------------------------------

    def register(self, value: object) -> None:
        """Watch for ``value`` (a str or a Secret) from now on, for the whole session."""
        if isinstance(value, Secret):
            value = value.get()
        if not isinstance(value, str):
            return
        text = value.strip()
        if len(text) >= _MIN_SECRET and text not in _PUBLIC:
            derived = {text[-_MIN_SECRET:], *secret_forms(text)}
            forms = {form for form in derived if len(set(form)) >= DISTINCT_CHARS}
            forms.add(text)
            with self._lock:
                self.secrets.update(form for form in forms if len(form) >= _MIN_SECRET)

    # -- collection --------------------------------------------------------------------

    def record(self, record: logging.LogRecord) -> None:
        with self._lock:
            self._records.append(record)

    def text(self, where: str, value: object) -> None:
        """Something a test or the code under test produced, to be searched."""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value:
            with self._lock:
                self._texts.append((where, value))

    def error(self, exc: BaseException) -> None:
        """A new exception: its message and repr are fixed at creation, so read them now."""
        name = type(exc).__name__
        self.text(f"a {name} message", str(exc))
        self.text(f"a {name} repr", repr(exc))

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._texts.clear()

    # -- checking ----------------------------------------------------------------------

    def find(self, where: str, text: str) -> str | None:
        """A description of the first secret in ``text``, or None."""
        for secret in self.secrets:
            if secret in text:
                at = text.index(secret)
                context = text[max(0, at - 60) : at].replace("\n", " ")
                return (
                    f"a registered secret ({secret[:3]}..., {len(secret)} chars) appeared in "
                    f"{where}, after: {context!r}"
                )
        return None

    def check(self, where: str, text: str) -> None:
        """Fail now if ``text`` holds a secret (for tests' own explicit checks)."""
        problem = self.find(where, text)
        if problem is not None:
            pytest.fail(problem, pytrace=False)

    def _collected(self) -> Iterable[tuple[str, str]]:
        with self._lock:
            records = list(self._records)
            texts = list(self._texts)
        for record in records:
            try:
                message = record.getMessage()
            except Exception:  # a malformed record is its emitter's problem, not a leak
                message = str(record.msg)
            yield f"a log record of {record.name!r}", message
            if record.exc_info and record.exc_info[1] is not None:
                yield f"the exception logged by {record.name!r}", repr(record.exc_info[1])
                yield f"the exception logged by {record.name!r}", str(record.exc_info[1])
        yield from texts

    def problems(self, extra: Iterable[tuple[str, str]] = ()) -> list[str]:
        if not self.secrets:
            return []
        found = []
        for where, text in [*self._collected(), *extra]:
            problem = self.find(where, text)
            if problem is not None:
                found.append(problem)
        return found


_guard = LeakGuard()


class _GuardHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _guard.record(record)


def _tap_secret() -> None:
    original = Secret.__init__

    @functools.wraps(original)
    def init(self: Secret, value: str) -> None:
        original(self, value)
        _guard.register(value)

    Secret.__init__ = init  # type: ignore[method-assign]


_ERRORS_FILE = os.path.normcase(errors.__file__)
_TESTS_DIR = os.path.normcase(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _built_by_a_test() -> bool:
    """True when test code itself built the error (say, to check that it gets scrubbed)."""
    frame = sys._getframe(2)
    while frame is not None and os.path.normcase(frame.f_code.co_filename) == _ERRORS_FILE:
        frame = frame.f_back  # type: ignore[assignment]
    return frame is not None and os.path.normcase(frame.f_code.co_filename).startswith(_TESTS_DIR)


def _tap_errors() -> None:
    """The message and repr of every TimbalError, as it is created."""
    base = errors.TimbalError

    def init(self: BaseException, *args: Any) -> None:
        Exception.__init__(self, *args)
        if not _built_by_a_test():
            _guard.error(self)

    base.__init__ = init  # type: ignore[assignment,method-assign]


def _tap_subprocess() -> None:
    original = subprocess.run

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = original(*args, **kwargs)
        except subprocess.SubprocessError as exc:  # CalledProcessError, TimeoutExpired
            _guard.text("a subprocess's stdout", getattr(exc, "stdout", None))
            _guard.text("a subprocess's stderr", getattr(exc, "stderr", None))
            raise
        _guard.text("a subprocess's stdout", result.stdout)
        _guard.text("a subprocess's stderr", result.stderr)
        return result

    subprocess.run = run  # type: ignore[assignment]


def _tap_readouterr() -> None:
    original = pytest.CaptureFixture.readouterr

    @functools.wraps(original)
    def readouterr(self: pytest.CaptureFixture[Any]) -> Any:
        result = original(self)
        _guard.text("stdout read with capsys/capfd", result.out)
        _guard.text("stderr read with capsys/capfd", result.err)
        return result

    pytest.CaptureFixture.readouterr = readouterr  # type: ignore[method-assign]


_mcp_tapped = False
_dagster_tapped = False
_prefect_tapped = False


def _record_results(where: Callable[[Any], str], call: Any) -> Any:
    """Wrap the method ``call`` so that the repr of what it returns is searched."""

    @functools.wraps(call)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = call(self, *args, **kwargs)
        _guard.text(where(self), repr(result))
        return result

    return wrapper


def _record_argument(where: str, call: Any) -> Any:
    """Wrap the method ``call`` so that the repr of its first argument is searched."""

    @functools.wraps(call)
    def wrapper(self: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
        _guard.text(where, repr(item))
        return call(self, item, *args, **kwargs)

    return wrapper


def _tap_dagster() -> None:
    """Dagster's events (logs, materialisation metadata, failures), runs and sensor ticks."""
    global _dagster_tapped
    if _dagster_tapped or "dagster" not in sys.modules:
        return
    _dagster_tapped = True
    from dagster import DagsterInstance, SensorDefinition

    def run(_: Any) -> str:
        return "a Dagster run (config, tags)"

    instance: Any = DagsterInstance
    instance.handle_new_event = _record_argument("a Dagster event", instance.handle_new_event)
    instance.create_run = _record_results(run, instance.create_run)
    instance.create_run_for_job = _record_results(run, instance.create_run_for_job)
    sensor: Any = SensorDefinition
    sensor.evaluate_tick = _record_results(
        lambda self: f"the Dagster sensor tick of {self.name}", sensor.evaluate_tick
    )


def _result_of(kind: str, runnable: Any) -> str:
    return f"the result of Prefect {kind} {runnable.name}"


def _tap_prefect() -> None:
    """Prefect's events (asset metadata), flow and task results (logs reach the root
    logger: its ``prefect.flow_runs``/``prefect.task_runs`` loggers propagate)."""
    global _prefect_tapped
    if _prefect_tapped or "prefect" not in sys.modules:
        return
    _prefect_tapped = True
    from prefect.events.worker import EventsWorker
    from prefect.flows import Flow
    from prefect.tasks import Task

    worker: Any = EventsWorker
    worker.send = _record_argument("a Prefect event", worker.send)
    for kind, cls in (("flow", Flow), ("task", Task)):
        runnable: Any = cls
        runnable.__call__ = _record_results(functools.partial(_result_of, kind), runnable.__call__)


def _tap_async(owner: Any, name: str, where: str) -> None:
    """Record what ``owner.name`` (an async method) returns or raises."""
    original = getattr(owner, name)

    @functools.wraps(original)
    async def tapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await original(self, *args, **kwargs)
        except Exception as exc:
            _guard.text(f"an MCP {where} error", str(exc))
            raise
        dump = getattr(result, "model_dump_json", None)
        _guard.text(f"an MCP {where}", dump() if dump else repr(result))
        return result

    setattr(owner, name, tapped)


def _tap_mcp() -> None:
    """MCP tool results and errors, resources, prompts and completions, and HTTP auth
    tokens (once the server is imported)."""
    global _mcp_tapped
    if _mcp_tapped or "mcp_server.server" not in sys.modules:
        return
    _mcp_tapped = True
    from mcp_server import _sdk, completions, resources, transport

    _tap_async(resources.RunResources, "run", "resource")
    _tap_async(resources.RunResources, "trace", "resource")
    _tap_async(_sdk.TimbalPrompt, "render", "prompt")
    _tap_async(completions.Completions, "complete", "completion")

    tool_run = _sdk.TimbalTool.run

    @functools.wraps(tool_run)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await tool_run(self, *args, **kwargs)
        except Exception as exc:
            _guard.text(f"an MCP tool error of {self.name}", str(exc))
            raise
        dump = getattr(result, "model_dump_json", None)
        _guard.text(f"an MCP result of {self.name}", dump() if dump else repr(result))
        return result

    _sdk.TimbalTool.run = run  # type: ignore[method-assign]

    middleware_init = transport.BearerTokenMiddleware.__init__

    @functools.wraps(middleware_init)
    def init(self: Any, app: Any, token: str) -> None:
        _guard.register(token)
        middleware_init(self, app, token)

    transport.BearerTokenMiddleware.__init__ = init  # type: ignore[method-assign]


_handler = _GuardHandler(level=logging.NOTSET)


def _tap_logging() -> None:
    """(Re)attach the handler: logging set-up such as Airflow's may replace root handlers."""
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)


def pytest_configure(config: pytest.Config) -> None:
    _interruptible_children()
    _tap_secret()
    _tap_errors()
    _tap_subprocess()
    _tap_readouterr()
    _tap_logging()


@pytest.fixture(autouse=True)
def _leak_check() -> Iterator[None]:
    """Keeps the taps in place; the check runs as each test phase is reported."""
    _tap_mcp()
    _tap_dagster()
    _tap_prefect()
    _tap_logging()
    yield
    _tap_logging()


@pytest.fixture
def leak_guard() -> LeakGuard:
    """The session's leak guard: ``register(secret)``, ``check(where, text)``."""
    return _guard


@pytest.fixture
def timbal_emulator_factory(timbal_emulator_factory: Callable[..., Emulator]) -> Any:
    """The plugin's factory, with each emulator's key registered with the leak guard."""

    def start(**kwargs: Any) -> Emulator:
        emulator = timbal_emulator_factory(**kwargs)
        _guard.register(emulator.api_key)
        return emulator

    return start


def pytest_runtest_setup(item: pytest.Item) -> None:
    _guard.reset()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    if call.when == "setup":
        return report  # setup's output is checked with the call's
    if not report.passed:  # failed or skipped: nothing to add
        _guard.reset()
        return report
    # The call's report also carries setup's output; teardown's carries everything again.
    phases = (" setup", " call") if call.when == "call" else (" teardown",)
    captured = [(name.lower(), text) for name, text in report.sections if name.endswith(phases)]
    problems = _guard.problems(captured)
    _guard.reset()
    if problems:
        report.outcome = "failed"
        report.longrepr = "secret leaked: " + "\n".join(dict.fromkeys(problems))
    return report
