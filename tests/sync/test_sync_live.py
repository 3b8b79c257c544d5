"""The sync against a live emulator over real sockets: the emulator's clock moves (runs
finish, reactions arrive, new runs appear), hooks change and remove runs, and after
every sync the WHOLE dataset is compared, field by field, with the emulator's truth."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from tests.sync.conftest import ClientOf, LiveEmulator
from tests.sync.helpers_sync import (
    created,
    get_requests,
    list_requests,
    mtimes,
    old_final_runs,
    read_dataset,
    read_json,
    truth,
)
from timbal_integrations import RunQuery
from timbal_integrations.emulator import Emulator
from timbal_integrations.sync import SyncReport, sync_runs

pytest.importorskip("pyarrow.parquet")

# The emulator's runs take up to 8 days and gain reactions up to 10 days after they end:
# with a 19-day lookback every change it makes to a run is seen (the default lookback's
# limits are tested below, against a model of what it can see).
SEES_EVERYTHING = "19d"


def sync(client_of: ClientOf, emu: Emulator, out: Path, **kwargs: object) -> SyncReport:
    assert emu.clock is not None
    return sync_runs(client_of(emu), RunQuery(), out, now=emu.clock.now(), **kwargs)  # type: ignore[arg-type]


def open_ids(out: Path) -> set[str]:
    return {entry["id"] for entry in read_json(out / "state.json")["open"]}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_sync_through_time_is_exact(
    live_emulator: LiveEmulator, client_of: ClientOf, tmp_path: Path, fmt: str
) -> None:
    emu = live_emulator()
    assert emu.clock is not None
    out = tmp_path / "data"
    # An old run held running: older than the lookback, it is only seen again by id.
    held, gone_open = old_final_runs(emu, timedelta(days=25))[:2]
    emu.hold_running(held)
    emu.hold_running(gone_open)  # stays running until it vanishes
    # A recent run held running, let go before the next sync: it ends inside the window.
    recent_held = emu.runs[3]["id"]
    emu.hold_running(recent_held)

    first = sync(client_of, emu, out, format=fmt, lookback=SEES_EVERYTHING)
    assert first.mode == "first"
    assert first.added == first.runs == len(emu.runs)
    assert read_dataset(out, fmt) == truth(emu, fmt)
    assert held in open_ids(out)
    assert first.still_open == sum(r["status"] == "running" for r in emu.runs) > 1

    # Runs finish, reactions arrive, new runs appear.
    emu.hold_running(recent_held, False)
    emu.clock.advance(timedelta(hours=7))
    report = sync(client_of, emu, out)
    assert report.mode == "incremental"
    assert report.format == fmt  # the dataset's, without saying it again
    assert report.added > 0
    assert recent_held in report.changed_ids["status"]
    assert report.changed_fields["duration"] >= 1
    assert report.rechecked == 2  # the old held runs: the open runs older than the window
    assert read_dataset(out, fmt) == truth(emu, fmt)

    # A reaction and a repriced run, by hand; a day passes.
    recent = emu.runs[40]
    emu.add_reaction(recent["id"], "negative", "Wrong order number.")
    emu.update_run(emu.runs[90]["id"], cost_usd=1.5, cost_credits=150.0)
    emu.clock.advance(timedelta(days=1))
    report = sync(client_of, emu, out)
    assert recent["id"] in report.changed_ids["sentiment"]
    assert report.changed_fields["cost"] >= 1
    assert read_dataset(out, fmt) == truth(emu, fmt)

    # The old run finishes, 25+ days old, far outside the lookback: re-checked by id.
    emu.hold_running(held, False)
    emu.clock.advance(timedelta(hours=2))
    emu.request_log.clear()
    report = sync(client_of, emu, out)
    assert held in get_requests(emu)
    assert held in report.changed_ids["status"]
    assert held not in open_ids(out)
    assert read_dataset(out, fmt) == truth(emu, fmt)

    # Two runs vanish: one in the window, one open run older than it (a 404 by id).
    assert gone_open in open_ids(out)
    gone_recent = emu.runs[5]["id"]
    emu.remove_run(gone_recent)
    emu.remove_run(gone_open)
    emu.clock.advance(timedelta(hours=1))
    report = sync(client_of, emu, out)
    assert report.vanished == 2
    assert sorted(report.vanished_ids) == sorted([gone_recent, gone_open])
    assert read_dataset(out, fmt) == truth(emu, fmt)

    # Many days later: long runs end, late reactions come, the window keeps moving.
    for _ in range(4):
        emu.clock.advance(timedelta(days=2, hours=5))
        sync(client_of, emu, out)
        assert read_dataset(out, fmt) == truth(emu, fmt)

    manifest = read_json(out / "manifest.json")
    assert manifest["count"] == len(emu.runs)
    assert manifest["running_count"] == sum(r["status"] == "running" for r in emu.runs)
    assert sorted(manifest["partitions"]) == sorted(
        {created(r).date().isoformat() for r in emu.runs}
    )


def test_a_sync_that_changes_nothing_lists_the_window_and_rechecks_open_runs(
    live_emulator: LiveEmulator, client_of: ClientOf, tmp_path: Path
) -> None:
    """Only the window's pages plus one request per open run older than it; no partition
    is rewritten (their modification times stay)."""
    emu = live_emulator()
    out = tmp_path / "data"
    held = old_final_runs(emu, timedelta(days=10))[:3]
    for run_id in held:
        emu.hold_running(run_id)
    sync(client_of, emu, out)
    before = mtimes(out)
    manifest = (out / "manifest.json").read_bytes()
    was_open = open_ids(out)
    emu.request_log.clear()
    report = sync(client_of, emu, out)

    assert report.since is not None
    in_window = {r["id"] for r in emu.runs if report.since <= created(r) < report.until}
    pages = max(1, -(-len(in_window) // 100))
    assert list_requests(emu) == report.requests.list_pages == pages
    rechecked = sorted(was_open - in_window)
    assert set(held) <= set(rechecked)
    assert sorted(get_requests(emu)) == rechecked
    assert report.requests.total == len(emu.request_log) == pages + len(rechecked)
    assert report.requests.retries == 0
    assert (report.added, report.changed, report.vanished) == (0, 0, 0)
    assert report.partitions_rewritten == 0
    assert report.partitions_unchanged == report.partitions == len(before)
    assert mtimes(out) == before
    assert read_dataset(out, "jsonl") == truth(emu, "jsonl")
    assert read_json(out / "manifest.json")["partitions"] == orjson.loads(manifest)["partitions"]


def test_default_lookback_misses_only_late_reactions_on_old_final_runs(
    live_emulator: LiveEmulator, client_of: ClientOf, tmp_path: Path
) -> None:
    """With the default 3-day lookback, the dataset is exactly what the sync can see: a
    model keeps, for each run, the emulator's truth at the last sync that listed it (its
    window held it) or fetched it by id (it was still running); that is the dataset. And
    the model differs from the truth only where the README says it may: the sentiment of
    runs that had ended and were older than the lookback when a reaction came."""
    emu = live_emulator()
    assert emu.clock is not None
    out = tmp_path / "data"
    model: dict[str, object] = {}
    behind = 0
    for step in range(8):
        was_open = open_ids(out) if step else set()
        report = sync(client_of, emu, out)
        now = {r["id"]: r for r in emu.runs}
        for run_id, run in now.items():
            window = report.since is None or report.since <= created(run) < report.until
            if window or run_id in was_open or run_id not in model:
                model[run_id] = run
        assert read_dataset(out, "jsonl") == model
        assert set(model) == set(now)
        for run_id, kept in model.items():
            if kept != now[run_id]:
                assert isinstance(kept, dict)
                differs = {k for k in kept if kept[k] != now[run_id][k]}
                assert differs == {"last_reaction_sentiment"}, (run_id, differs)
                assert kept["status"] != "running"
                assert report.since is not None
                assert created(kept) < report.since
                behind += 1
        emu.clock.advance(timedelta(days=1, hours=3))
    assert behind > 0  # the emulator does send reactions after three days


@pytest.mark.parametrize(
    "filters",
    [{"status": "error"}, {"sentiment": "negative"}, {"status": "running"}],
    ids=["status-error", "sentiment-negative", "status-running"],
)
def test_filters_on_fields_that_change_stay_exact(
    live_emulator: LiveEmulator,
    client_of: ClientOf,
    tmp_path: Path,
    filters: dict[str, str],
) -> None:
    """A run enters the dataset when it comes to match (an old run that ends in error,
    re-checked by id, included) and leaves it when it no longer does."""
    emu = live_emulator()
    assert emu.clock is not None
    query = RunQuery(**filters)
    out = tmp_path / "data"
    # An old run that ended in error, held running: it matches status=error only later.
    held = old_final_runs(emu, timedelta(days=25), status="error")[0]
    emu.hold_running(held)

    def step() -> SyncReport:
        assert emu.clock is not None
        report = sync_runs(
            client_of(emu), query, out, lookback=SEES_EVERYTHING, now=emu.clock.now()
        )
        assert read_dataset(out, "jsonl") == truth(emu, "jsonl", query)
        return report

    step()
    assert held in open_ids(out)
    emu.clock.advance(timedelta(hours=9))
    step()
    emu.hold_running(held, False)
    emu.clock.advance(timedelta(days=1))
    report = step()
    assert held in get_requests(emu)
    if filters == {"status": "error"}:
        assert held in report.added_ids
    if filters == {"status": "running"}:
        assert report.unmatched > 0
        assert held in report.unmatched_ids
    for _ in range(3):
        emu.clock.advance(timedelta(days=2))
        step()


def test_a_parallel_first_sync_writes_the_same_dataset(
    live_emulator: LiveEmulator, client_of: ClientOf, tmp_path: Path
) -> None:
    emu = live_emulator()
    one = sync(client_of, emu, tmp_path / "one", format="csv")
    four = sync(client_of, emu, tmp_path / "four", format="csv", parallel=4)
    assert (one.runs, one.partitions) == (four.runs, four.partitions)
    assert mtimes(tmp_path / "one").keys() == mtimes(tmp_path / "four").keys()
    for name in mtimes(tmp_path / "one"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "four" / name).read_bytes()
    assert read_dataset(tmp_path / "four", "csv") == truth(emu, "csv")


def test_full_refresh_rebuilds_and_keeps_unchanged_partitions(
    live_emulator: LiveEmulator, client_of: ClientOf, tmp_path: Path
) -> None:
    emu = live_emulator()
    assert emu.clock is not None
    out = tmp_path / "data"
    query = RunQuery(since="2025-12-20")
    sync_runs(client_of(emu), query, out, now=emu.clock.now())
    before = mtimes(out)
    # Every run of one old day vanishes (a sync cannot see it; a full refresh does, and
    # removes the day's partition).
    day = created(emu.runs[-1]).date().replace(day=20)
    doomed = [r["id"] for r in emu.runs if created(r).date() == day]
    for run_id in doomed:
        emu.remove_run(run_id)
    report = sync_runs(client_of(emu), query, out, full_refresh=True, now=emu.clock.now())
    assert report.mode == "full_refresh"
    assert report.partitions_removed == 1
    assert not (out / f"runs/dt={day.isoformat()}").exists()
    assert read_dataset(out, "jsonl") == truth(emu, "jsonl", query)
    after = mtimes(out)
    unchanged = [name for name in after if after[name] == before.get(name)]
    assert len(unchanged) == len(after) == report.partitions_unchanged == 11
    assert report.partitions_rewritten == 0


def test_a_first_sync_commits_its_progress_and_an_interrupted_one_continues(
    live_emulator: LiveEmulator,
    client_of: ClientOf,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first sync of a long history commits the days it has completed now and then, so
    one that is stopped continues from there (its lookback listed again) instead of
    starting over."""
    from timbal_integrations import defaults
    from timbal_integrations.sync import SyncProgress

    monkeypatch.setattr(defaults, "SYNC_COMMIT_SECONDS", 0.0)  # commit at every new day
    emu = live_emulator()
    out = tmp_path / "data"

    def stop_after(pages: int) -> object:
        def progress(p: SyncProgress) -> None:
            if p.phase == "fetching" and p.pages >= pages:
                raise KeyboardInterrupt

        return progress

    with pytest.raises(KeyboardInterrupt):
        sync(client_of, emu, out, format="csv", progress=stop_after(12))
    state = read_json(out / "state.json")
    mark = state["high_water_mark"]
    assert mark.endswith("T00:00:00.000000Z")  # complete up to a day's start
    saved = read_dataset(out, "csv")
    assert saved
    assert all(run_id in truth(emu, "csv") for run_id in saved)
    assert read_json(out / "manifest.json")["last_sync"]["mode"] == "first"

    emu.request_log.clear()
    report = sync(client_of, emu, out)
    assert report.mode == "incremental"
    assert read_dataset(out, "csv") == truth(emu, "csv")
    full = -(-len(emu.runs) // 100)
    assert report.requests.list_pages < full - 8  # did not list everything again
