"""Hardening: a loud warning off loopback, and a cap on generated runs."""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest

from timbal_integrations.emulator import MAX_RUNS, PublicBindWarning, create_app, run_emulator
from timbal_integrations.emulator.server import exposure_warning, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.7", "203.0.113.9"])
def test_other_addresses(host: str) -> None:
    assert not is_loopback(host)


def test_warning_names_the_address_the_port_and_the_public_key() -> None:
    text = exposure_warning("0.0.0.0", 8000, "demo-key")
    assert "0.0.0.0 (every network interface), port 8000" in text
    assert "public demo API key 'demo-key'" in text
    lan = exposure_warning("192.168.1.20", 8000, "a-private-key-123")
    assert "192.168.1.20, port 8000" in lan
    assert "a-private-key-123" not in lan  # a real key is never printed


def test_run_emulator_off_loopback_warns() -> None:
    # Bound to 0.0.0.0 for a moment; it is only called on 127.0.0.1.
    with contextlib.ExitStack() as stack:
        with pytest.warns(PublicBindWarning, match=r"0\.0\.0\.0 \(every network interface\)"):
            emu = stack.enter_context(run_emulator(runs=5, host="0.0.0.0"))
        assert emu.listen_url == f"http://0.0.0.0:{emu.port}"
        assert emu.base_url == f"http://127.0.0.1:{emu.port}"
        assert httpx.get(emu.runs_url, headers=emu.headers()).status_code == 200


def test_run_emulator_on_loopback_is_quiet(recwarn: pytest.WarningsRecorder) -> None:
    with run_emulator(runs=5) as emu:
        assert emu.listen_url == emu.base_url
    assert not [w for w in recwarn if issubclass(w.category, PublicBindWarning)]


@pytest.mark.parametrize("live", [False, True])
def test_runs_above_the_cap_fail_at_once(live: bool) -> None:
    start = time.process_time()
    with pytest.raises(ValueError, match=r"runs: at most 1,000,000 runs .* got 100,000,000"):
        create_app(runs=100_000_000, live=live)
    with pytest.raises(ValueError, match=r"runs: at most 1,000,000"):
        create_app(runs=MAX_RUNS + 1, live=live)
    assert time.process_time() - start < 5  # refused before generating anything
    assert MAX_RUNS == 1_000_000


def test_a_live_future_counts_towards_the_cap() -> None:
    with pytest.raises(ValueError, match=r"950,000 runs plus 221,667 in the live future"):
        create_app(runs=950_000, live=True)
