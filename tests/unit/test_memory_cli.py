"""The history commands and 'note', through typer's runner on a real memory directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from tests.unit.test_memory_helpers import later, lock_run, oom_run
from typer.testing import CliRunner

from rootloop.cli import history
from rootloop.errors import StateError
from rootloop.memory import Memory, MemoryConfig

runner = CliRunner()


@pytest.fixture
def memdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "memory"
    monkeypatch.setenv("ROOTLOOP_MEMORY_DIR", str(root))
    monkeypatch.setenv("ROOTLOOP_EMBEDDINGS", "off")
    monkeypatch.setenv("COLUMNS", "200")
    with Memory(root, MemoryConfig(embeddings="off")) as m:
        ctx, f, _ = oom_run("20261120-090000-aaaa", started=later(0))
        m.archive(ctx, f)
        ctx, f = lock_run("20261120-093000-bbbb", started=later(30))
        m.archive(ctx, f)
    return root


def cli() -> typer.Typer:
    top = typer.Typer()
    top.add_typer(history.app, name="history")
    top.command("note")(history.note_command)
    return top


def test_history_lists_recent_runs_per_service(memdir: Path) -> None:
    out = runner.invoke(cli(), ["history"])
    assert out.exit_code == 0, out.output
    assert out.output.index("20261120-093000-bbbb") < out.output.index("20261120-090000-aaaa")
    out = runner.invoke(cli(), ["history", "--service", "orders"])
    assert "bbbb" in out.output and "aaaa" not in out.output


def test_history_search_show_and_note(memdir: Path) -> None:
    out = runner.invoke(cli(), ["history", "search", "OOMKilled"])
    assert out.exit_code == 0 and "20261120-090000-aaaa" in out.output
    assert "keyword only" in out.output
    out = runner.invoke(cli(), ["note", "restart never helps here; raise memory first"])
    assert out.exit_code == 0 and "20261120-093000-bbbb" in out.output  # the last run
    out = runner.invoke(cli(), ["note", "seen again", "--run", "20261120-0900"])
    assert "20261120-090000-aaaa" in out.output  # a unique prefix is enough
    out = runner.invoke(cli(), ["history", "search", "restart never helps"])
    assert "20261120-093000-bbbb" in out.output
    out = runner.invoke(cli(), ["history", "show", "20261120-0900"])
    assert out.exit_code == 0
    for text in ("Root cause", "Tried and did not help", "seen again"):
        assert text in out.output


def test_history_prune_dry_run(memdir: Path) -> None:
    out = runner.invoke(cli(), ["history", "prune", "--dry-run"])
    assert out.exit_code == 0 and "Would remove 0 transcript(s)" in out.output


def test_unknown_run_is_a_clear_error(memdir: Path) -> None:
    out = runner.invoke(cli(), ["history", "show", "nope"])
    assert isinstance(out.exception, StateError) and "recent:" in str(out.exception)


def test_note_without_any_run_is_a_clear_error(tmp_path: Path) -> None:
    with (
        Memory(tmp_path / "m", MemoryConfig(embeddings="off")) as m,
        pytest.raises(StateError, match="no run in memory"),
    ):
        m.add_note(None, "hello")


def test_previous_context_panel_lists_failed_actions(memdir: Path) -> None:
    from rich.console import Console

    with Memory(memdir, MemoryConfig(embeddings="off")) as m:
        prior = m.prior("checkout", ["web"])
    console = Console(record=True, width=160)
    console.print(history.previous_context(prior))
    text = console.export_text()
    assert "previous context" in text and "force a new deployment of checkout" in text
