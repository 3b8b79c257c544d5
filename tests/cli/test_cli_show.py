"""``timbal-runs show RUN_ID``: the run's span tree, tokens, failure and reactions, drawn
on a pseudo-terminal (colour on, ``NO_COLOR`` off) and piped (plain), ASCII when the
encoding cannot draw; JSON for machines; server text never reaches the terminal raw."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli.helpers_cli import SGR, on_terminal, plain, visible_width
from tests.support.processes import cli_env, one_error_line, run_cli
from timbal_integrations.emulator import Emulator, generate_runs, make_trace, run_emulator


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """Runs with reactions, one with a 200-span trace, one with hostile text."""
    with run_emulator(runs=400, seed=21) as emulator:
        base = emulator.details[5]
        emulator.add_run(
            {**base, "id": "big-run", "idempotency_key": "big-key", "trace": make_trace(200)}
        )
        hostile_span = {
            "path": "agent\x1b[2J",
            "call_id": "c1",
            "parent_call_id": None,
            "t0": 1,
            "t1": 2,
            "status": {"code": "error", "reason": None, "message": "x"},
            "error": {"type": "Boom\x07", "message": "bad \x1b]0;pwned\x07 \u202etxt\r\nnext"},
            "usage": {},
        }
        emulator.add_run(
            {
                **base,
                "id": "hostile",
                "idempotency_key": "hostile-key",
                "status": "error",
                "user": {**base["user"], "name": "Eve\x1b[31m"},
                "trace": [hostile_span],
            }
        )
        emulator.add_reaction("hostile", "negative", "\x1b[1mloud\x1b[0m\nsecond line")
        emulator.add_run({**base, "id": "no-trace", "idempotency_key": "nt", "trace": "garbage"})
        yield emulator


def failed_run(emu: Emulator) -> dict[str, Any]:
    return next(
        d
        for d in emu.details
        if d["status"] == "error"
        and d["id"] not in ("hostile", "big-run", "no-trace")
        and d["last_reaction_sentiment"] == "negative"
        and emu.reactions(d["id"])[0]["feedback"]
    )


def spans(detail: dict[str, Any]) -> list[dict[str, Any]]:
    trace = detail["trace"]
    return list(trace.values()) if isinstance(trace, dict) else list(trace)


def test_piped_it_is_plain_text_with_every_part(emu: Emulator) -> None:
    detail = failed_run(emu)
    result = run_cli(["show", detail["id"]], emu, env=cli_env(emu, PYTHONIOENCODING="utf-8"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out  # no colour when piped
    assert out.startswith(f"Run {detail['id']}")
    assert "✗ error" in out
    assert detail["user"]["email"] in out
    assert detail["workforce"]["name"] in out
    assert detail["status_detail"]["message"] in out
    tree = out.split("Trace · ", 1)[1].split("\n\n", 1)[0].splitlines()
    assert tree[0].startswith(f"{len(spans(detail))} spans")
    names = [s["path"].rsplit(".", 1)[-1] for s in spans(detail)]
    body = "\n".join(tree[1:])
    for name in names:
        assert name in body
    assert "├── " in body or "└── " in body
    root = next(s for s in spans(detail) if s["parent_call_id"] is None)
    total_in = sum(v for k, v in root["usage"].items() if k.endswith(":input_tokens"))
    assert f"{total_in:,} in" in tree[1]  # the root's line carries the run's tokens
    assert "Tokens by model" in out
    for key, value in root["usage"].items():
        model, _, counter = key.partition(":")
        assert model in out
        assert f"{counter} {value:,}" in out
    assert "Where it failed" in out
    reactions = emu.reactions(detail["id"])
    assert f"Reactions ({len(reactions)})" in out
    for reaction in reactions:
        assert reaction["user"]["name"] in out
        if reaction["feedback"]:
            assert reaction["feedback"][:40] in out
    assert result.stderr == ""


def test_on_a_terminal_it_is_coloured_unless_no_color(emu: Emulator) -> None:
    detail = failed_run(emu)
    env = cli_env(emu, PYTHONIOENCODING="utf-8")
    env.pop("NO_COLOR", None)
    code, out, err = on_terminal(["show", detail["id"]], env)
    assert code == 0, err
    assert "\x1b[31m✗ error\x1b[0m" in out  # the run's status, in red
    assert "\x1b[32m✓ success\x1b[0m" in out
    assert "\x1b[1mTrace · " in out
    code, quiet, err = on_terminal(["show", detail["id"]], {**env, "NO_COLOR": "1"})
    assert code == 0, err
    assert "\x1b" not in quiet
    assert quiet == plain(out)  # the same picture, without colour
    code, forced, _ = on_terminal(["show", detail["id"], "--color", "never"], env)
    assert "\x1b" not in forced
    piped_colour = run_cli(["show", detail["id"], "--color", "always"], emu)
    assert "\x1b[31m" in piped_colour.stdout


def test_ascii_when_the_encoding_cannot_draw(emu: Emulator) -> None:
    detail = failed_run(emu)
    result = run_cli(["show", detail["id"]], emu, env=cli_env(emu, PYTHONIOENCODING="ascii"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii()
    assert "|-- " in result.stdout or "`-- " in result.stdout
    assert "x error" in result.stdout


def test_lines_fit_the_terminal(emu: Emulator) -> None:
    env = cli_env(emu, PYTHONIOENCODING="utf-8")
    code, out, err = on_terminal(["show", "big-run"], env, columns=72)
    assert code == 0, err
    lines = out.splitlines()
    assert max(visible_width(line) for line in lines) <= 72
    tree = plain(out).split("Trace · ", 1)[1].split("\n\n", 1)[0].splitlines()
    assert tree[0].startswith("200 spans")
    assert len(tree) == 201  # every span, one line each


def test_json_for_machines(emu: Emulator) -> None:
    detail = failed_run(emu)
    result = run_cli(["show", detail["idempotency_key"], "--format", "json"], emu)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["run"]["id"] == detail["id"]
    assert doc["run"]["trace"] == detail["trace"]  # the trace as the API sent it
    assert [r["id"] for r in doc["reactions"]] == [r["id"] for r in emu.reactions(detail["id"])]
    summary = doc["trace_summary"]
    assert summary["spans"] == len(spans(detail))
    assert summary["duration_ms"] == detail["duration_ms"]
    assert summary["failures"][-1]["path"] == next(
        s["path"] for s in spans(detail) if s["parent_call_id"] is None
    )
    assert summary["usage_by_model"]


def test_server_text_is_sanitised(emu: Emulator) -> None:
    env = cli_env(emu, PYTHONIOENCODING="utf-8")
    code, out, err = on_terminal(["show", "hostile"], env)
    assert code == 0, err
    leftovers = SGR.sub("", out)
    assert "\x1b" not in leftovers  # only our own colour sequences
    assert "\x07" not in out
    assert "\u202e" not in out
    assert "\r" not in out
    # Shown as visible escapes (the core's terminal_safe, as in every table and error
    # line), white space folded to one line.
    assert "bad \\x1b]0;pwned\\x07 \\u202etxt next" in leftovers
    assert "\\x1b[1mloud\\x1b[0m second line" in leftovers
    piped = run_cli(["show", "hostile"], emu)
    assert "\x1b" not in piped.stdout


def test_a_run_without_a_readable_trace(emu: Emulator) -> None:
    result = run_cli(["show", "no-trace"], emu)
    assert result.returncode == 0, result.stderr
    assert "Trace: not readable" in result.stdout


def test_an_unknown_run_is_one_error_line(emu: Emulator) -> None:
    result = run_cli(["show", "01NOSUCHRUN"], emu)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "404" in line
    assert "01NOSUCHRUN" in line
    usage = run_cli(["show"], emu)
    assert usage.returncode == 2
    assert "RUN_ID" in one_error_line(usage.stderr)


def test_a_running_run_shows_its_open_calls(timbal_emulator_factory: Any) -> None:
    records = generate_runs(30, seed=8)
    emu = timbal_emulator_factory(runs=records)
    running = next(d for d in emu.details if d["status"] == "running")
    result = run_cli(["show", running["id"]], emu, env=cli_env(emu, PYTHONIOENCODING="utf-8"))
    assert result.returncode == 0, result.stderr
    assert "… running" in result.stdout
