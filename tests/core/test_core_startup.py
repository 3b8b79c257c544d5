"""Start-up of our console scripts: httpx's CLI is not imported, GC pauses are scoped."""

from __future__ import annotations

import gc
import importlib.util
import json
import subprocess
import sys

import pytest

from timbal_integrations._startup import importing, without


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.skipif(
    importlib.util.find_spec("rich") is None or importlib.util.find_spec("click") is None,
    reason="httpx imports its CLI only when click and rich are installed",
)
def test_httpx_cli_is_not_imported_by_our_commands() -> None:
    code = (
        "import json, sys\n"
        "from timbal_integrations._startup import defer_httpx_cli\n"
        "defer_httpx_cli()\n"
        "import httpx\n"
        "print(json.dumps(sorted(m for m in ('rich', 'click', 'pygments') if m in sys.modules)))\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    # Without the stand-in, httpx does import them (so the test above can fail).
    plain = _run("import json, sys, httpx; print(json.dumps('rich' in sys.modules))")
    assert json.loads(plain.stdout) is True


def test_httpx_main_still_works_after_the_stand_in() -> None:
    code = (
        "import sys\n"
        "from timbal_integrations._startup import defer_httpx_cli\n"
        "defer_httpx_cli()\n"
        "import httpx\n"
        "sys.argv = ['httpx', '--help']\n"
        "httpx.main()\n"
    )
    result = _run(code)
    if importlib.util.find_spec("rich") is None or importlib.util.find_spec("click") is None:
        assert result.returncode != 0  # httpx's own message: install httpx[cli]
        assert "httpx[cli]" in result.stdout + result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


def test_stand_in_is_not_installed_once_httpx_is_loaded() -> None:
    import httpx

    from timbal_integrations._startup import defer_httpx_cli

    before = sys.modules.get("httpx._main")
    defer_httpx_cli()
    assert sys.modules.get("httpx._main") is before
    assert httpx.main is not None


def test_importing_pauses_and_restores_the_gc() -> None:
    assert gc.isenabled()
    with importing():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with importing():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_importing_restores_the_gc_after_an_error() -> None:
    with pytest.raises(ImportError), importing():
        import timbal_integrations_no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert gc.isenabled()


def test_timbal_runs_console_script_runs() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['timbal-runs', '--version']\n"
        "from timbal_integrations._startup import timbal_runs\n"
        "sys.exit(timbal_runs())\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("timbal-runs ")


def test_without_blocks_a_module_for_a_while() -> None:
    code = (
        "import json, sys\n"
        "from timbal_integrations._startup import without\n"
        "assert 'colorsys' not in sys.modules\n"
        "with without('colorsys', 'json'):\n"
        "    try:\n"
        "        import colorsys\n"
        "    except ImportError:\n"
        "        print('blocked')\n"
        "    import json  # already imported: untouched\n"
        "import colorsys\n"
        "print(colorsys.rgb_to_hsv(1.0, 0.0, 0.0))\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["blocked", "(0.0, 1.0, 1.0)"]


def test_without_unblocks_after_an_error() -> None:
    def fail() -> None:
        with without("timbal_integrations_never_imported"):
            assert sys.modules["timbal_integrations_never_imported"] is None
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert "timbal_integrations_never_imported" not in sys.modules
