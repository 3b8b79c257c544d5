"""A real Airflow deployment: api-server (execution API), scheduler (LocalExecutor),
dag-processor and triggerer, each its own process, on a SQLite metadata DB of their own.

It proves what ``dag.test()`` cannot: a deferrable ``TimbalRunSensor`` really defers (its
task instance is ``deferred`` while a trigger row exists, the triggerer runs the trigger,
and the task then succeeds), a timed-out wait leaves nothing behind in the triggerer, and
the ``AssetWatcher`` of ``TimbalNewRunsTrigger`` turns new failed runs into asset events
once, across a restart of the triggerer.

Everything is bounded (generous timeouts, polling the metadata DB and the emulator, never
sleeping as synchronisation) and every process started is stopped, even on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.helpers_airflow import LiveRuns, answered, connection_json, copy_run
from timbal_integrations.emulator import Emulator, generate_runs, run_emulator

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(420)]

KEY = "tk_airflow_deployment_2b9d4f6a8e13"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
WAIT = 120.0  # seconds: the most any one step may take on a loaded 2-core machine

DAGS = textwrap.dedent(
    '''
    """DAGs of the deployment test (written by tests/airflow/test_airflow_deployment.py)."""

    from datetime import UTC, datetime

    import os

    from airflow.sdk import DAG, Asset, AssetAlias, AssetWatcher, task

    from airflow_provider.operators.timbal import TimbalListRunsOperator
    from airflow_provider.sensors.timbal import TimbalRunSensor
    from airflow_provider.triggers.timbal import TimbalNewRunsTrigger

    START = datetime(2025, 12, 1, tzinfo=UTC)

    for dag_id, timeout in (("timbal_deploy_wait", 300), ("timbal_deploy_timeout", 4)):
        with DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False):
            TimbalRunSensor(
                task_id="wait",
                run_id="{{ dag_run.conf['run'] }}",
                timbal_conn_id="timbal_deploy",
                deferrable=True,
                poke_interval=0.5,
                timeout=timeout,
            )

    with DAG(dag_id="timbal_deploy_export", schedule=None, start_date=START, catchup=False):
        TimbalListRunsOperator(
            task_id="export",
            timbal_conn_id="timbal_deploy",
            since="{{ dag_run.conf['since'] }}",
            until="{{ dag_run.conf['until'] }}",
            output_path=os.environ["TIMBAL_DEPLOY_EXPORTS"] + "/runs.csv",
            outlets=[AssetAlias("timbal_deploy_runs")],
        )

    failures = Asset(
        "timbal_deploy_failures",
        watchers=[
            AssetWatcher(
                name="timbal_deploy_failures_watcher",
                trigger=TimbalNewRunsTrigger(
                    timbal_conn_id="timbal_deploy", status="error", poke_interval=0.5
                ),
            )
        ],
    )

    with DAG(dag_id="timbal_deploy_on_failures", schedule=[failures], start_date=START):

        @task
        def triage(triggering_asset_events=None):
            return sum(e.extra["payload"]["count"] for e in triggering_asset_events[failures])

        triage()
    '''
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Deployment:
    """The Airflow processes, their environment, and read access to their metadata DB."""

    def __init__(self, home: Path, emu: Emulator) -> None:
        self.home = home
        self.emu = emu
        self.port = _free_port()
        self.lineage = home / "openlineage.jsonl"
        (home / "dags").mkdir(parents=True)
        (home / "dags" / "timbal_deploy_dags.py").write_text(DAGS)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW_", "AIRFLOW__", "TIMBAL_"))
        }
        self.env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                    f"http://127.0.0.1:{self.port}/execution/"
                ),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                "AIRFLOW_CONN_TIMBAL_DEPLOY": connection_json(emu),
                "TIMBAL_DEPLOY_EXPORTS": str(home / "exports"),
                # OpenLineage events of every task, to a file the test reads.
                "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                    {"type": "file", "log_file_path": str(self.lineage), "append": True}
                ),
            }
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(self, name: str, *args: str) -> None:
        with self.log_path(name).open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [AIRFLOW, *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped with its children
            )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        # The dag-processor stops on SIGINT, not SIGTERM.
        sig = signal.SIGINT if name == "dag-processor" else signal.SIGTERM
        try:
            os.killpg(process.pid, sig)
            process.wait(30)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # anything left in its group
        process.wait(10)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [AIRFLOW, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        assert out.returncode == 0, f"airflow {' '.join(args)}: {out.stderr[-3000:]}"
        return out.stdout

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        uri = f"file:{self.home / 'airflow.db'}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def wait_for(self, what: str, condition: Callable[[], Any], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"airflow {name} exited while waiting for {what}")
            try:
                value = condition()
            except sqlite3.OperationalError:  # locked, or a table not created yet
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.2)

    def tails(self) -> str:
        parts = []
        for path in sorted(self.home.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def ti_states(self, dag_id: str, run_id: str) -> list[str]:
        return [
            row[0]
            for row in self.query(
                "select state from task_instance where dag_id = ? and run_id = ?", dag_id, run_id
            )
        ]

    def trigger_dag(self, dag_id: str, conf: dict[str, Any]) -> str:
        self.wait_for(
            f"{dag_id} to be parsed",
            lambda: self.query(
                "select 1 from dag where dag_id = ? and is_paused = 0 and is_stale = 0", dag_id
            ),
        )
        run_id = f"manual__{dag_id}__{secrets.token_hex(4)}"
        self.cli("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf))
        return run_id


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    now = datetime.now(UTC).replace(microsecond=0)
    records = generate_runs(30, seed=17, end=now, span=timedelta(minutes=20))
    for record in records[:2]:
        record.update(status="running", duration_ms=None, status_detail={"step": "llm"})
    RUNNING[:] = records[:2]
    with run_emulator(runs=records, api_key=KEY) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def deployment(
    emu: Emulator, tmp_path_factory: pytest.TempPathFactory, airflow_db: Any
) -> Iterator[Deployment]:
    deploy = Deployment(tmp_path_factory.mktemp("airflow-deployment"), emu)
    try:
        deploy.cli("db", "migrate")
        deploy.start(
            "api-server", "api-server", "--apps", "execution", "--host", "127.0.0.1",
            "--port", str(deploy.port), "--workers", "1",
        )  # fmt: skip
        deploy.start("scheduler", "scheduler", "--skip-serve-logs")
        deploy.start("dag-processor", "dag-processor")
        deploy.start("triggerer", "triggerer", "--skip-serve-logs")
        yield deploy
    except BaseException:
        print(deploy.tails())
        raise
    finally:
        deploy.stop_all()
    logs = " ".join(p.read_text(errors="replace") for p in deploy.home.rglob("*.log"))
    assert KEY not in logs, "the API key reached an Airflow log"


@pytest.fixture
def live(emu: Emulator, leak_guard: Any) -> LiveRuns:
    leak_guard.register(KEY)  # the suite's leak guard watches this emulator's key too
    return LiveRuns(emu)


RUNNING: list[dict[str, Any]] = []  # the runs made ``running`` by the emu fixture


def _running(index: int) -> dict[str, Any]:
    return RUNNING[index]


def _gets(emu: Emulator) -> int:
    return answered(emu, "get")


def test_the_deferrable_sensor_defers_to_the_real_triggerer(
    deployment: Deployment, emu: Emulator, live: LiveRuns
) -> None:
    run = _running(0)
    try:
        dag_run = deployment.trigger_dag("timbal_deploy_wait", {"run": run["id"]})
        deployment.wait_for(
            "the sensor to be deferred",
            lambda: deployment.ti_states("timbal_deploy_wait", dag_run) == ["deferred"],
        )
        (classpath, kwargs) = deployment.wait_for(
            "its trigger row",
            lambda: deployment.query(
                "select t.classpath, t.kwargs from trigger t join task_instance ti "
                "on ti.trigger_id = t.id where ti.dag_id = ? and ti.run_id = ?",
                "timbal_deploy_wait",
                dag_run,
            ),
        )[0]
        assert classpath == "airflow_provider.triggers.timbal.TimbalRunTrigger"
        assert KEY not in kwargs
        before = _gets(emu)
        deployment.wait_for("the triggerer to poll the run", lambda: _gets(emu) >= before + 2)
        live.update_run(run["id"], status="success", duration_ms=4321)
        deployment.wait_for(
            "the sensor to succeed",
            lambda: deployment.ti_states("timbal_deploy_wait", dag_run) == ["success"],
        )
        assert not deployment.query(
            "select 1 from trigger where classpath like '%TimbalRunTrigger'"
        )
    except BaseException:
        print(deployment.tails())
        raise


def test_a_timed_out_wait_leaves_nothing_running_in_the_triggerer(
    deployment: Deployment, emu: Emulator, live: LiveRuns
) -> None:
    run = _running(1)
    try:
        dag_run = deployment.trigger_dag("timbal_deploy_timeout", {"run": run["id"]})
        deployment.wait_for(
            "the sensor to be deferred",
            lambda: deployment.ti_states("timbal_deploy_timeout", dag_run) == ["deferred"],
        )
        deployment.wait_for(
            "the sensor to time out",
            lambda: deployment.ti_states("timbal_deploy_timeout", dag_run) == ["failed"],
        )
        assert not deployment.query(
            "select 1 from trigger where classpath like '%TimbalRunTrigger'"
        )
        # Nothing polls the run any more: the emulator sees no new request for a while.
        after = _gets(emu)
        deadline = time.monotonic() + 3.0  # six poke intervals
        while time.monotonic() < deadline:
            assert _gets(emu) == after, "the trigger still polls after the timeout"
            time.sleep(0.1)
        log = "".join(
            p.read_text(errors="replace")
            for p in (deployment.home / "logs").rglob("*")
            if p.is_file() and "timbal_deploy_timeout" in str(p)
        )
        assert f"Timbal run {run['id']!r} was still not finished at the sensor's timeout" in log
    except BaseException:
        print(deployment.tails())
        raise


def test_an_export_reports_its_asset_event_and_its_lineage(
    deployment: Deployment, emu: Emulator, live: LiveRuns
) -> None:
    since = min(r["created_at"] for r in emu.runs)
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    try:
        dag_run = deployment.trigger_dag("timbal_deploy_export", {"since": since, "until": until})
        deployment.wait_for(
            "the export to succeed",
            lambda: deployment.ti_states("timbal_deploy_export", dag_run) == ["success"],
        )
        path = deployment.home / "exports" / "runs.csv"
        rows = len(path.read_text().splitlines()) - 1
        assert rows > 0
        ((uri, extra),) = deployment.query(
            "select a.uri, e.extra from asset_event e join asset a on a.id = e.asset_id "
            "where e.source_dag_id = 'timbal_deploy_export' and e.source_run_id = ?",
            dag_run,
        )
        assert uri == f"file://{path}"
        assert json.loads(extra)["count"] == rows

        def complete() -> list[dict[str, Any]]:
            if not deployment.lineage.exists():
                return []
            events = [json.loads(line) for line in deployment.lineage.read_text().splitlines()]
            return [
                e
                for e in events
                if e.get("eventType") == "COMPLETE"
                and e.get("job", {}).get("name") == "timbal_deploy_export.export"
            ]

        (event,) = deployment.wait_for("the OpenLineage COMPLETE event", complete)
        (source,) = event["inputs"]
        assert source["namespace"] == "timbal://" + emu.base_url.removeprefix("http://")
        assert source["name"] == f"orgs/{emu.org_id}/projects/{emu.project_id}/runs"
        assert "timbalRunsQuery" in source["facets"]
        (written,) = event["outputs"]
        assert (written["namespace"], written["name"]) == ("file", str(path))
        assert written["outputFacets"]["outputStatistics"]["rowCount"] == rows
    except BaseException:
        print(deployment.tails())
        raise


def test_the_asset_watcher_fires_once_per_batch_across_a_triggerer_restart(
    deployment: Deployment, emu: Emulator, live: LiveRuns
) -> None:
    def events() -> list[dict[str, Any]]:
        rows = deployment.query(
            "select e.extra from asset_event e join asset a on a.id = e.asset_id "
            "where a.name = 'timbal_deploy_failures' order by e.id"
        )
        return [json.loads(row[0])["payload"] for row in rows]

    def lists() -> int:
        return answered(emu, "list")

    def failed(minutes_ago: float) -> dict[str, Any]:
        created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        stamp = created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return copy_run(emu.runs[-1], status="error", created_at=stamp)

    try:
        deployment.wait_for("the watcher's baseline listing", lambda: lists() >= 2)
        first = [failed(1), failed(2)]
        for run in first:
            live.add_run(run)
        deployment.wait_for("the first asset event", lambda: len(events()) == 1)
        assert events()[0]["count"] == 2
        assert set(events()[0]["run_ids"]) == {r["id"] for r in first}
        deployment.wait_for(
            "the DAG scheduled on the asset to run",
            lambda: deployment.query(
                "select 1 from dag_run where dag_id = 'timbal_deploy_on_failures' "
                "and state = 'success'"
            ),
        )

        deployment.stop("triggerer")
        while_down = failed(0.5)
        live.add_run(while_down)
        deployment.start("triggerer", "triggerer", "--skip-serve-logs")
        deployment.wait_for("the event after the restart", lambda: len(events()) == 2)
        polled = lists()
        deployment.wait_for("a few more listings", lambda: lists() >= polled + 4)
        payloads = events()
        assert len(payloads) == 2  # the first batch was not fired again
        assert payloads[1]["run_ids"] == [while_down["id"]]
    except BaseException:
        print(deployment.tails())
        raise
