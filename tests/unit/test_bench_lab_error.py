"""A scenario the lab cannot stage is a row that says so, not the end of the bench: the
other scenarios still run and the table is still written, and the exit code says the
bench did not run everything."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer

from rootloop.errors import PlatformError
from rootloop_lab.cli import bench as bench_cli


class LabThatCannotStage:
    """Every injection fails, as the lab's would when a fault never takes hold."""

    def __init__(self) -> None:
        self.injected: list[str] = []
        self.down_called = False

    def inject(self, name: str) -> None:
        self.injected.append(name)
        raise PlatformError(f"{name}: the fault did not take hold within 90s", "see the log")

    def down(self) -> None:
        self.down_called = True


class FakeCleanLab:
    def __init__(self, root: Path) -> None:
        self.lab = LabThatCannotStage()
        self.clean: dict[str, Any] | None = {"fingerprint": 1}
        self.rebuilds = 0

    def ready(self, phases: Any) -> str:
        if self.clean is None:
            self.rebuilds += 1
            self.clean = {"fingerprint": 1}
            return "built"
        return "in place"


def test_a_scenario_the_lab_cannot_stage_is_a_row_and_the_bench_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[FakeCleanLab] = []

    def clean_lab(root: Path) -> FakeCleanLab:
        made.append(FakeCleanLab(root))
        return made[-1]

    truth = SimpleNamespace(root_cause="x", category="y", fixable=True, gate=None)
    scenario = SimpleNamespace(truth=truth, pack="test")
    monkeypatch.setattr(bench_cli, "CleanLab", clean_lab)
    monkeypatch.setattr("rootloop_lab.packs.get", lambda name: scenario)
    monkeypatch.setenv("ROOTLOOP_STATE_DIR", str(tmp_path / "state"))
    table = tmp_path / "bench.md"

    with pytest.raises(typer.Exit) as exit_:
        bench_cli.bench(scenarios=["first", "second"], markdown=table)

    assert exit_.value.exit_code == 1
    (clean,) = made
    assert clean.lab.injected == ["first", "second"]  # the bench went on after the first
    assert clean.rebuilds == 1  # the lab is rebuilt before the next scenario, not trusted
    assert clean.lab.down_called
    text = table.read_text()
    assert "| first | lab error |" in text and "| second | lab error |" in text
    assert "the lab could not stage 2: first, second" in text
