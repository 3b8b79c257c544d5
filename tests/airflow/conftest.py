"""Real Airflow 3 for the provider's tests: a fresh SQLite metadata DB in a temp AIRFLOW_HOME.

Airflow reads its configuration when first imported, so the ``AIRFLOW_*`` variables are
set here, at import time; Airflow itself is imported only inside fixtures and tests (it
takes over a second), so collecting the rest of the suite stays fast. The DAGs folder is
``examples/airflow``: ``dag.test()`` re-parses it, so the example DAGs themselves run.

A second DAG bundle, ``timbal-test-dags`` (tests/airflow/dags), holds DAGs that only the
tests run, through Airflow's real task supervisor (``run_supervised``), whose task log
files are what Airflow users read.

The example DAGs use the connection ``timbal_default`` (``AIRFLOW_CONN_TIMBAL_DEFAULT``,
JSON form, pointing at the session's emulator) and the Variable ``timbal_export_root``
(``AIRFLOW_VAR_TIMBAL_EXPORT_ROOT``, a fresh directory per test).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.helpers_airflow import (
    DAGS_FOLDER,
    TEST_DAGS_FOLDER,
    AirflowEnv,
    RunDag,
    connection_json,
)
from timbal_integrations.emulator import Emulator

_HOME = Path(tempfile.mkdtemp(prefix="timbal-airflow-home-"))
atexit.register(shutil.rmtree, _HOME, True)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        # The task supervisor polls its task process at this interval (5 s by default).
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": name,
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(path)},
                }
                for name, path in (
                    ("dags-folder", DAGS_FOLDER),
                    ("timbal-test-dags", TEST_DAGS_FOLDER),
                )
            ]
        ),
    }
)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A fresh metadata DB, reset once per session; returns AIRFLOW_HOME."""
    pytest.importorskip("airflow", reason="needs the airflow extra")
    from airflow.utils import db

    db.resetdb()
    return _HOME


@pytest.fixture(scope="session")
def airflow_env(airflow_db: Path, timbal_emulator: Emulator) -> Iterator[AirflowEnv]:
    """``timbal_default`` points at the session emulator for the whole session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_TIMBAL_DEFAULT", connection_json(timbal_emulator))
        yield AirflowEnv(emu=timbal_emulator, home=airflow_db)


@pytest.fixture
def export_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory as the Variable ``timbal_export_root`` of the example DAGs."""
    root = tmp_path / "exports"
    monkeypatch.setenv("AIRFLOW_VAR_TIMBAL_EXPORT_ROOT", str(root))
    return root


@pytest.fixture
def example_dags(airflow_env: AirflowEnv) -> dict[str, Any]:
    """The example DAGs, parsed from examples/airflow as Airflow parses them.

    Parsed afresh for every test: ``dag.test()`` runs tasks in-process on these very
    objects, and a run's ``conf`` can stay behind in them.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return dict(bag.dags)


@pytest.fixture(scope="session")
def run_dag(airflow_env: AirflowEnv) -> RunDag:
    """``run_dag(dag, **dag_test_kwargs)``: ``dag.test()`` for example and inline DAGs alike.

    An inline DAG (defined in a test, outside the DAGs folder) is written to the metadata
    DB first, as the DAG processor would, so that ``dag.test()`` finds it serialized.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()

    def run(dag: Any, **kwargs: Any) -> Any:
        if not str(dag.fileloc).startswith(str(DAGS_FOLDER)):
            bag = DagBag(dag_folder=os.devnull)
            bag.bag_dag(dag)
            sync_bag_to_db(bag, "dags-folder", None)
        return dag.test(**kwargs)

    return run


@pytest.fixture(scope="session")
def xcom() -> Callable[..., Any]:
    """``xcom(dag_run, task_id, map_index=-1)``: the task instance's return value."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    def get(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
        with create_session() as session:
            row = session.execute(
                XComModel.get_many(
                    run_id=dag_run.run_id,
                    dag_ids=dag_run.dag_id,
                    task_ids=task_id,
                    map_indexes=map_index,
                    key="return_value",
                ).with_only_columns(XComModel.value)
            ).first()
        assert row is not None, f"no XCom from {task_id}[{map_index}] in {dag_run.run_id}"
        return XComModel.deserialize_value(row)

    return get


@pytest.fixture(scope="session")
def task_states() -> Callable[[Any], dict[tuple[str, int], str]]:
    """``task_states(dag_run)``: ``{(task_id, map_index): state}`` from the metadata DB."""

    def states(dag_run: Any) -> dict[tuple[str, int], str]:
        return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}

    return states


@dataclass
class SupervisedRun:
    """A task instance run by Airflow's task supervisor: its final state and its log file."""

    state: str
    log: str


@pytest.fixture(scope="session")
def run_supervised(airflow_env: AirflowEnv) -> Callable[..., SupervisedRun]:
    """``run_supervised(dag_id, task_id, logical_date)``: one task, the way workers run it.

    The supervisor forks a task process that parses the DAG from its bundle
    (``timbal-test-dags``), talks back over the supervisor's socket, and has its logs
    written, through the secrets masker, to a file under ``AIRFLOW_HOME/logs``.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.executors import workloads
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor, supervise_task
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    bundle = "timbal-test-dags"
    DagBundlesManager().sync_bundles_to_db()
    bag = BundleDagBag(
        dag_folder=str(TEST_DAGS_FOLDER), bundle_path=TEST_DAGS_FOLDER, bundle_name=bundle
    )
    assert bag.import_errors == {}
    sync_bag_to_db(bag, bundle, None)

    def run(dag_id: str, task_id: str, logical_date: datetime) -> SupervisedRun:
        with create_session() as session:
            dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
            assert dag is not None
            interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(
                run_after=logical_date
            )
            dag_run = session.scalar(
                select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date)
            )
            if dag_run is None:  # the tasks of one logical date share a DAG run
                dag_run = dag.create_dagrun(
                    run_id=f"supervised__{uuid.uuid4().hex}",
                    logical_date=logical_date,
                    data_interval=interval,
                    run_after=logical_date,
                    conf=None,
                    run_type=DagRunType.MANUAL,
                    state=DagRunState.RUNNING,
                    triggered_by=DagRunTriggeredByType.TEST,
                    triggering_user_name="pytest",
                    session=session,
                )
            session.commit()
            ti = dag_run.get_task_instance(task_id, session=session)
            assert ti is not None
            ti.try_number = 1
            ti.state = TaskInstanceState.QUEUED
            session.commit()
            workload = workloads.ExecuteTask.make(ti, bundle_info=workloads.BundleInfo(name=bundle))
            ti_key = (ti.dag_id, ti.run_id, ti.task_id)
        log_path = airflow_env.home / "logs" / workload.log_path
        supervise_task(
            ti=workload.ti,  # type: ignore[arg-type]
            bundle_info=workload.bundle_info,
            dag_rel_path=workload.dag_rel_path,
            token="",
            client=InProcessTestSupervisor._api_client(bag.dags[dag_id]),
            log_path=str(log_path),
        )
        with create_session() as session:
            state = session.scalars(
                TaskInstance.__table__.select()
                .with_only_columns(TaskInstance.state)
                .where(
                    TaskInstance.dag_id == ti_key[0],
                    TaskInstance.run_id == ti_key[1],
                    TaskInstance.task_id == ti_key[2],
                )
            ).one()
        return SupervisedRun(state=str(state), log=log_path.read_text())

    return run
