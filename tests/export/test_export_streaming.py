"""Flat memory, throughput against a bare HTTP loop, crashes around the final rename, and
Parquet without pyarrow."""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.export.conftest import ClientFor
from tests.export.helpers_export import NOW, jsonl_ids
from timbal_integrations import ExportError, RunQuery
from timbal_integrations.emulator import Emulator
from timbal_integrations.export import (
    PARQUET_INSTALL_HINT,
    export_runs,
    parquet_available,
    pending_export,
)


@pytest.fixture(scope="module")
def big_emulator() -> Iterator[Emulator]:
    """10,000 runs, its page cache warmed (so only our side allocates while measuring)."""
    from timbal_integrations.emulator import run_emulator

    with run_emulator(runs=10_000) as emu:
        with httpx.Client(base_url=emu.base_url, headers=emu.headers()) as http:
            token = None
            while True:
                response = http.get(emu.runs_url, params={"page_token": token} if token else None)
                token = orjson.loads(response.content)["next_page_token"]
                if not token:
                    break
        yield emu


def _peak(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("fmt", "small", "large"), [("jsonl", 500, 5000), ("parquet", 5000, 10_000)]
)
def test_memory_stays_flat(
    big_emulator: Emulator,
    client_for: ClientFor,
    tmp_path: Path,
    fmt: str,
    small: int,
    large: int,
) -> None:
    if fmt == "parquet" and not parquet_available():
        pytest.skip("pyarrow is not installed")
    client = client_for(big_emulator)
    peaks = {
        n: _peak(
            lambda n=n: export_runs(client, RunQuery(), tmp_path / f"{n}.{fmt}", limit=n, now=NOW)
        )
        for n in (small, large)
    }
    # Python allocations do not grow with the number of runs (Parquet row groups live in
    # Arrow's memory, a bounded amount too; the benchmark checks the process RSS).
    assert peaks[large] < peaks[small] * 1.5 + 1_000_000, peaks
    assert peaks[large] < 16_000_000, peaks


def test_throughput_against_a_bare_http_loop(
    big_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    """The engine against the physical limit, in-process (the emulator shares our GIL here;
    ``make bench`` measures the real target with the emulator in its own process)."""
    emu = big_emulator

    def bare() -> float:
        start = time.perf_counter()
        with (
            httpx.Client(base_url=emu.base_url, headers=emu.headers()) as http,
            (tmp_path / "bare.json").open("wb") as out,
        ):
            token = None
            while True:
                response = http.get(emu.runs_url, params={"page_token": token} if token else None)
                out.write(response.content)
                out.write(b"\n")
                token = orjson.loads(response.content)["next_page_token"]
                if not token:
                    break
        return time.perf_counter() - start

    def ours() -> float:
        start = time.perf_counter()
        export_runs(client_for(emu), RunQuery(), tmp_path / "ours.jsonl", now=NOW)
        return time.perf_counter() - start

    bare_s = min(bare() for _ in range(2))
    ours_s = min(ours() for _ in range(2))
    ratio = bare_s / ours_s
    sys.stderr.write(
        f"\nbare loop {10_000 / bare_s:,.0f} runs/s, export_runs {10_000 / ours_s:,.0f} runs/s "
        f"(ratio {ratio:.2f})\n"
    )
    assert len(jsonl_ids(tmp_path / "ours.jsonl")) == 10_000
    assert ratio > 0.3  # a sanity floor for a shared 2-core CI box, not the target


def _crash_on(monkeypatch: pytest.MonkeyPatch, name: str, when: Any) -> None:
    """Make ``os.<name>`` die like a killed process when ``when(*args)`` holds."""
    real = getattr(os, name)

    def crashing(*args: Any, **kwargs: Any) -> Any:
        if when(*args):
            raise KeyboardInterrupt  # the process dies here
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, crashing)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_crash_just_before_the_rename(
    timbal_emulator: Emulator,
    client_for: ClientFor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    if fmt == "parquet" and not parquet_available():
        pytest.skip("pyarrow is not installed")
    target = tmp_path / f"runs.{fmt}"
    with monkeypatch.context() as patch:
        _crash_on(patch, "replace", lambda src, dst, *a: str(dst) == str(target))
        with pytest.raises(KeyboardInterrupt):
            export_runs(client_for(timbal_emulator), RunQuery(), target)
    assert not target.exists()
    resumer = client_for(timbal_emulator)
    result = export_runs(resumer, RunQuery(), target, resume=True)
    assert result.resumed
    assert result.count == 3000
    assert resumer.requests_made == 0  # the finished file was published as it was
    assert pending_export(target) is None


def test_crash_just_after_the_rename(
    timbal_emulator: Emulator,
    client_for: ClientFor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "runs.jsonl"
    with monkeypatch.context() as patch:
        _crash_on(
            patch,
            "remove",
            lambda path, *a: str(path).endswith(".part.json") and target.exists(),
        )
        with pytest.raises(KeyboardInterrupt):
            export_runs(client_for(timbal_emulator), RunQuery(), target)
    assert target.exists()  # complete: the rename happened
    assert pending_export(target) is not None
    first = target.read_bytes()
    resumer = client_for(timbal_emulator)
    result = export_runs(resumer, RunQuery(), target, resume=True)
    assert result.resumed
    assert resumer.requests_made == 0
    assert target.read_bytes() == first
    assert pending_export(target) is None
    assert jsonl_ids(target) == [r["id"] for r in timbal_emulator.runs]


def test_parquet_without_pyarrow_says_how_to_install(
    client_for: ClientFor,
    timbal_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert not parquet_available()
    client = client_for(timbal_emulator)
    with pytest.raises(ExportError, match="needs pyarrow") as info:
        export_runs(client, RunQuery(), tmp_path / "runs.parquet")
    assert PARQUET_INSTALL_HINT in str(info.value)
    assert client.requests_made == 0
    assert list(tmp_path.iterdir()) == []
