"""rootloop's public API: what ``import rootloop`` exposes, that it runs inside a caller's
event loop, and that the example in docs/architecture.md runs as written."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rootloop
from rootloop.models import Status
from rootloop.models.actions import SetEnvVar
from rootloop.testing import (
    RecordingExecutor,
    RecordingPublisher,
    ScriptedReasoner,
    StaticWorld,
    actions_land_on_static_checks,
    write_map,
)

ROOT = Path(__file__).resolve().parents[2]


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_import_rootloop_exposes_the_api_and_loads_the_loop_only_when_asked(
    tmp_path: Path,
) -> None:
    probe = python(
        "import sys, inspect, rootloop\n"
        "print('loop loaded at import:', 'rootloop.loop' in sys.modules)\n"
        "import rootloop.loop  # binds the private module rootloop.sweep on the package\n"
        "for name in ('investigate', 'load_map', 'sweep'):\n"
        "    fn = getattr(rootloop, name)\n"
        "    print(name, inspect.iscoroutinefunction(fn), callable(fn))\n"
        "print(sorted(set(rootloop.__all__) - set(dir(rootloop))))\n",
        tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert lines[0] == "loop loaded at import: False"
    assert lines[1:4] == ["investigate True True", "load_map False True", "sweep True True"]
    assert lines[4] == "[]"  # every name in __all__ is there


def test_a_run_without_a_model_never_loads_the_model_framework(tmp_path: Path) -> None:
    """The loop, its runner, the report and the rules reasoner work with no LLM: a
    rules-only run (and the CLI) does not pay for importing pydantic-ai."""
    probe = python(
        "import sys, rootloop.runner, rootloop.report, rootloop.reasoning.rules\n"
        "import rootloop.cli.main\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic_ai'))\n",
        tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = rootloop.nope  # type: ignore[attr-defined]


async def test_investigate_runs_inside_the_callers_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Already in a running loop (this test's): rootloop must not start one of its own."""
    running = asyncio.get_running_loop()

    def no_nested_loop(*_a: object, **_k: object) -> None:
        raise AssertionError("asyncio.run called inside rootloop.investigate")

    monkeypatch.setattr(asyncio, "run", no_nested_loop)
    world = StaticWorld().set("db", Status.CRITICAL, "pool exhausted")
    fix = SetEnvVar(target="db", cluster="c", service="db", name="POOL", value="20")
    executor = RecordingExecutor({"set-env": lambda _a: world.heal("db")})
    seen_loops: set[int] = set()

    def on_event(_event: rootloop.Event) -> None:
        seen_loops.add(id(asyncio.get_running_loop()))

    with actions_land_on_static_checks():
        result = await rootloop.investigate(
            write_map(tmp_path, world),
            reasoner=ScriptedReasoner({"db": fix}),
            executor=executor,
            publisher=RecordingPublisher(),
            on_event=on_event,
            memory=False,
        )
    assert result.status == "healthy" and executor.applied == [fix]
    assert seen_loops == {id(running)}


def snippet() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Public API", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "docs/architecture.md: no python example under '## Public API'"
    return found.group(1)


def test_the_example_in_the_architecture_doc_runs(tmp_path: Path) -> None:
    ran = python(snippet(), tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "healthy" in ran.stdout


async def test_a_malformed_run_id_is_a_clear_error_and_nothing_runs(tmp_path: Path) -> None:
    world = StaticWorld().set("db", Status.CRITICAL, "errors")
    executor = RecordingExecutor()
    with pytest.raises(rootloop.UserError, match="is not a run id"):
        await rootloop.investigate(
            write_map(tmp_path, world),
            reasoner=ScriptedReasoner(),
            executor=executor,
            run_id="../../etc",
            memory=False,
            state_dir=tmp_path / "state",
        )
    assert executor.applied == [] and not (tmp_path / "state" / "runs").exists()
