"""Issue 16, cases 4 and 5: a hostile file system, and a checkpoint that is not trusted.

4. No temp file of an export is ever written through a symbolic link planted at its
   name (``OUT.part``, ``OUT.part.json.tmp``, ``OUT.manifest.json.tmp``, ``OUT.part.w0``,
   ``OUT.part.convert``): it is refused, or replaced without touching what it points
   to. An ``--out`` that is a FIFO, a device, a directory or a link is refused with one
   line and left as it was.
5. ``--resume`` checks the checkpoint against the partial files (their SHA-256 and run
   counts) and against its own seal: an edited offset, token, window or count, or an
   altered or truncated partial file, is refused with one line, and nothing is
   published.

Case 4 holds for a sync's dataset too (the last section): every file a sync writes goes
through ``open_temp``/``replace_bytes`` (a link planted at a temporary name is replaced,
never written through), and what it reads back (its state, manifest and journal,
bounded; its partitions) is read never through a link: a link, a FIFO or a device where
a dataset file should be is refused in one line naming it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.processes import one_error_line, run_cli
from timbal_integrations import ExportError, RunQuery, TimbalClient, defaults
from timbal_integrations.emulator import Emulator
from timbal_integrations.errors import SyncStateError
from timbal_integrations.export import ExportProgress, export_runs
from timbal_integrations.export.integrity import seal
from timbal_integrations.sync import sync_runs

pytestmark = pytest.mark.timeout(120)

VICTIM = b"precious data that an export must never overwrite\n"


@pytest.fixture
def client(timbal_emulator: Emulator) -> Iterator[TimbalClient]:
    emu = timbal_emulator
    with TimbalClient(
        emu.api_key, host=emu.base_url, org_id=emu.org_id, project_id=emu.project_id, env={}
    ) as made:
        yield made


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_bytes(VICTIM)
    return path


def _interrupt_after(pages: int) -> Callable[[ExportProgress], None]:
    def progress(p: ExportProgress) -> None:
        if p.phase == "fetching" and p.pages >= pages:
            raise KeyboardInterrupt

    return progress


def _interrupted(client: TimbalClient, target: Path, **kwargs: Any) -> None:
    with pytest.raises(KeyboardInterrupt):
        export_runs(client, RunQuery(), target, progress=_interrupt_after(3), **kwargs)


# --------------------------------------------------------------------------- 4. temp files


@pytest.mark.parametrize(
    ("name", "fmt", "parallel", "refused"),
    [
        ("runs.jsonl.part", "jsonl", 1, True),
        ("runs.jsonl.part.json.tmp", "jsonl", 1, False),
        ("runs.jsonl.manifest.json.tmp", "jsonl", 1, False),
        ("runs.jsonl.part.w0", "jsonl", 2, True),
        ("runs.parquet.part.convert", "parquet", 1, False),
    ],
)
def test_a_planted_link_is_never_written_through(
    timbal_emulator: Emulator,
    client: TimbalClient,
    tmp_path: Path,
    victim: Path,
    name: str,
    fmt: str,
    parallel: int,
    refused: bool,
) -> None:
    target = tmp_path / f"runs.{fmt}"
    planted = tmp_path / name
    planted.symlink_to(victim)
    if refused:
        with pytest.raises(ExportError) as info:
            export_runs(client, RunQuery(), target, parallel=parallel)
        assert "is a symbolic link, not a file this export wrote" in str(info.value)
        assert info.value.path == str(planted)
        assert not target.exists()
    else:
        result = export_runs(client, RunQuery(), target, parallel=parallel)
        assert result.count == len(timbal_emulator.runs)
        assert not planted.is_symlink()  # replaced: the link itself, never its target
    assert victim.read_bytes() == VICTIM


def test_a_planted_fifo_or_hard_link_is_refused(
    client: TimbalClient, tmp_path: Path, victim: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    os.mkfifo(tmp_path / "runs.jsonl.part")
    with pytest.raises(ExportError, match=r"is a FIFO \(named pipe\), not a file this export"):
        export_runs(client, RunQuery(), target)
    os.remove(tmp_path / "runs.jsonl.part")
    os.link(victim, tmp_path / "runs.jsonl.part")
    with pytest.raises(ExportError, match="is a file with 2 hard links"):
        export_runs(client, RunQuery(), target)
    assert victim.read_bytes() == VICTIM


def _device(path: Path) -> bool:
    """Make a character device like /dev/null at ``path`` (False when not allowed)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            return False
        raise
    return True


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "symlink"])
def test_an_out_that_is_not_a_regular_file_is_refused_in_one_line(
    timbal_emulator: Emulator, tmp_path: Path, victim: Path, kind: str
) -> None:
    out = tmp_path / "out.jsonl"
    if kind == "fifo":
        os.mkfifo(out)
        expected = "is a FIFO (named pipe), not a regular file"
    elif kind == "device":
        if not _device(out):
            pytest.skip("creating a device node needs privileges this run does not have")
        expected = "is a device, not a regular file"
    elif kind == "directory":
        out.mkdir()
        expected = "is a directory, not a regular file"
    else:
        out.symlink_to(victim)
        expected = "is a symbolic link; an export replaces its target by renaming"
    before = os.lstat(out)
    result = run_cli(["export", "--out", str(out)], timbal_emulator)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert expected in line
    after = os.lstat(out)
    assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode)
    assert after.st_ino == before.st_ino
    assert victim.read_bytes() == VICTIM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "victim.txt"]


# --------------------------------------------------------------------------- 5. checkpoint


def _checkpoint(target: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(Path(f"{target}.part.json").read_bytes())
    return data


def _write_checkpoint(target: Path, data: dict[str, Any], *, reseal: bool = False) -> None:
    if reseal:
        data["integrity"] = seal(data)
    Path(f"{target}.part.json").write_bytes(orjson.dumps(data))


def _resumed_after(
    emu: Emulator, client: TimbalClient, target: Path, edit: Callable[[dict[str, Any]], Any]
) -> str:
    """Interrupt an export to ``target``, ``edit`` its checkpoint's JSON, resume it with
    ``timbal-runs export --resume``: the one error line it exits 1 with."""
    _interrupted(client, target)
    data = _checkpoint(target)
    edit(data)
    _write_checkpoint(target, data)
    result = run_cli(["export", "--out", str(target), "--resume"], emu)
    assert result.returncode == 1, result.stderr
    return one_error_line(result.stderr)


EDITS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("offset", lambda d: d.update(offset=d["offset"] // 2)),
    ("token", lambda d: d.update(token="bm90IGEgcmVhbCB0b2tlbg")),
    ("window", lambda d: d.update(windows=[[d["windows"][0][0], d["windows"][0][1] - 86_400_000]])),
    ("count", lambda d: d.update(count=d["count"] - 50)),
    ("fetched_all", lambda d: d.update(fetched_all=True)),
]


@pytest.mark.parametrize(("what", "edit"), EDITS, ids=[what for what, _ in EDITS])
def test_an_edited_checkpoint_is_refused_and_nothing_is_published(
    timbal_emulator: Emulator,
    client: TimbalClient,
    tmp_path: Path,
    what: str,
    edit: Callable[[dict[str, Any]], Any],
) -> None:
    # Before: each of these published a corrupt or incomplete file with exit 0.
    target = tmp_path / "runs.jsonl"
    line = _resumed_after(timbal_emulator, client, target, edit)
    assert "integrity: the checkpoint was changed after it was written" in line
    assert "export without resume to start over" in line
    assert not target.exists()
    assert not Path(f"{target}.manifest.json").exists()


def test_a_resealed_count_still_has_to_match_the_file(
    timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path
) -> None:
    # Even a checkpoint edited by someone who recomputes its seal cannot claim runs the
    # partial file does not hold.
    target = tmp_path / "runs.jsonl"
    _interrupted(client, target)
    data = _checkpoint(target)
    data["count"] -= 50
    _write_checkpoint(target, data, reseal=True)
    with pytest.raises(ExportError, match=r"holds 150 lines where its checkpoint says 100"):
        export_runs(client, RunQuery(), target, resume=True)
    assert not target.exists()


@pytest.mark.parametrize("damage", ["flip", "truncate"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_an_altered_or_truncated_partial_file_is_refused(
    timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path, damage: str, fmt: str
) -> None:
    target = tmp_path / f"runs.{fmt}"
    _interrupted(client, target)
    part = Path(f"{target}.part")
    data = bytearray(part.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x20  # one letter's case, deep inside the saved runs
        expected = "are not the ones its checkpoint covers (their SHA-256 differs)"
    else:
        del data[len(data) // 3 :]
        expected = "is shorter than its checkpoint says"
    part.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=re.escape(expected)) as info:
        export_runs(client, RunQuery(), target, resume=True)
    assert info.value.path == str(part)
    assert not target.exists()


def test_an_altered_spool_of_a_parallel_export_is_refused(
    timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    with pytest.raises(KeyboardInterrupt):
        export_runs(client, RunQuery(), target, parallel=3, progress=_interrupt_after(12))
    spools = _checkpoint(target)["spools"]
    index = next(i for i, spool in enumerate(spools) if spool["offset"] > 0)
    spool = Path(f"{target}.part.w{index}")
    data = bytearray(spool.read_bytes())
    data[10] ^= 0x01
    spool.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=rf"its checkpoint \(spools\[{index}\]\)") as info:
        export_runs(client, RunQuery(), target, parallel=3, resume=True)
    assert info.value.path == str(spool)
    assert not target.exists()


def test_an_intact_checkpoint_still_resumes_exactly(
    timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path
) -> None:
    for fmt, parallel in (("jsonl", 1), ("csv", 1), ("csv", 3), ("parquet", 2)):
        target = tmp_path / f"runs-{parallel}.{fmt}"
        _interrupted(client, target, parallel=parallel)
        result = export_runs(client, RunQuery(), target, parallel=parallel, resume=True)
        assert result.resumed
        assert result.count == len(timbal_emulator.runs)


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda d: d.pop("sha256"), "sha256"),
        (lambda d: d.update(sha256="not-a-hash"), "sha256"),
        (lambda d: d.pop("integrity"), "integrity"),
        (lambda d: d["identity"].pop("csv_safe"), "identity.csv_safe"),
        (lambda d: d.update(window=99), "window"),
        (lambda d: d.update(base_offset=10**9), "base_offset"),
    ],
)
def test_wrong_types_or_missing_keys_name_the_key(
    timbal_emulator: Emulator,
    client: TimbalClient,
    tmp_path: Path,
    damage: Callable[[dict[str, Any]], Any],
    field: str,
) -> None:
    line = _resumed_after(timbal_emulator, client, tmp_path / "runs.jsonl", damage)
    assert f"is not valid: {field}: " in line


def test_a_checkpoint_that_is_a_link_to_something_endless_is_refused(
    client: TimbalClient, tmp_path: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    Path(f"{target}.part.json").symlink_to("/dev/zero")
    with pytest.raises(ExportError, match="is a symbolic link"):
        export_runs(client, RunQuery(), target, resume=True)


# --------------------------------------------------------------------------- 4. a sync

SYNC_NOW = datetime(2026, 2, 1, tzinfo=UTC)  # after every run of the session emulator
SYNC_QUERY = RunQuery(status="error", since="2025-12-25")


def _synced(client: TimbalClient, out: Path) -> None:
    sync_runs(client, SYNC_QUERY, out, format="csv", now=SYNC_NOW)


@pytest.mark.parametrize(
    "name", ["state.json.tmp", "manifest.json.tmp", ".sync-journal.json.tmp", ".sync.lock"]
)
def test_a_link_planted_at_a_name_a_sync_writes_is_never_written_through(
    client: TimbalClient, tmp_path: Path, victim: Path, name: str
) -> None:
    out = tmp_path / "data"
    _synced(client, out)
    planted = out / name
    planted.unlink(missing_ok=True)
    planted.symlink_to(victim)
    later = SYNC_NOW + timedelta(hours=1)
    if name == ".sync.lock":  # reopened, not replaced: refused
        with pytest.raises(SyncStateError) as info:
            sync_runs(client, SYNC_QUERY, out, now=later)
        assert "is a symbolic link, not a file a sync wrote" in str(info.value)
        assert info.value.path == str(planted)
    else:
        sync_runs(client, SYNC_QUERY, out, now=later)
        assert not planted.exists()  # the link itself was replaced and renamed away
    assert victim.read_bytes() == VICTIM


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
@pytest.mark.parametrize("name", ["state.json", "manifest.json", "partition"])
def test_a_dataset_file_that_is_not_a_regular_file_is_refused(
    client: TimbalClient, tmp_path: Path, victim: Path, kind: str, name: str
) -> None:
    out = tmp_path / "data"
    _synced(client, out)
    # A partition is read back by a full refresh (which trusts no manifest).
    partition = name == "partition"
    path = sorted((out / "runs").glob("dt=*/runs.csv"))[-1] if partition else out / name
    path.unlink()
    if kind == "symlink":
        path.symlink_to(victim)
        expected = "is a symbolic link, not a file a sync wrote"
    else:
        os.mkfifo(path)
        expected = "is a FIFO (named pipe), not a file a sync wrote"
    later = SYNC_NOW + timedelta(hours=1)
    with pytest.raises(SyncStateError) as info:
        sync_runs(client, SYNC_QUERY, out, now=later, full_refresh=partition)
    assert expected in str(info.value)
    assert info.value.path == str(path)
    assert victim.read_bytes() == VICTIM


def test_a_state_too_large_to_be_a_syncs_is_refused_unread(
    client: TimbalClient, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    _synced(client, out)
    state = out / "state.json"
    with state.open("r+b") as fh:  # sparse: no disk or memory spent on it
        fh.truncate(defaults.SYNC_MAX_STATE_BYTES + 1)
    with pytest.raises(SyncStateError) as info:
        sync_runs(client, SYNC_QUERY, out, now=SYNC_NOW + timedelta(hours=1))
    assert f"is larger than {defaults.SYNC_MAX_STATE_BYTES:,} bytes" in str(info.value)


def test_timbal_runs_sync_says_it_in_one_line(
    timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path, victim: Path
) -> None:
    out = tmp_path / "data"
    _synced(client, out)
    (out / "state.json").unlink()
    (out / "state.json").symlink_to(victim)
    result = run_cli(["sync", "--out", str(out), "--status", "error"], timbal_emulator)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert "state.json is a symbolic link, not a file a sync wrote" in line
    assert victim.read_bytes() == VICTIM
