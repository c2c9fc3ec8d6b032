"""Commands other distributions add through ``rootloop.cli_plugins`` (the lab adds
``lab``, ``demo``, ``bench``); a broken plugin costs only its own commands."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
import typer
from typer.testing import CliRunner

from rootloop.cli import main


def register_hello(app: typer.Typer) -> None:
    @app.command("hello")
    def hello() -> None:
        typer.echo("hello from a plugin")


def plugins(*entries: tuple[str, str]) -> list[EntryPoint]:
    return [EntryPoint(name, value, main.PLUGIN_GROUP) for name, value in entries]


def test_plugins_add_commands_and_a_broken_one_is_only_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = plugins(
        ("broken", "rootloop_no_such_plugin.cli:register"),
        ("hello", f"{__name__}:register_hello"),
        ("hello", "rootloop_no_such_plugin.again:register"),  # same name seen twice: skipped
    )
    monkeypatch.setattr(
        main, "entry_points", lambda group: found if group == main.PLUGIN_GROUP else []
    )
    app = typer.Typer()

    @app.command("core")
    def core() -> None: ...

    main.load_plugins(app)

    warning = capsys.readouterr().err
    assert "'broken'" in warning and "rootloop_no_such_plugin" in warning
    assert "again" not in warning
    result = CliRunner().invoke(app, ["hello"])
    assert result.exit_code == 0 and "hello from a plugin" in result.output


def test_the_installed_lab_registers_its_commands() -> None:
    commands = {c.name or c.callback.__name__ for c in main.app.registered_commands if c.callback}
    names = commands | {g.name for g in main.app.registered_groups}
    assert {"demo", "bench", "lab"} <= names  # rootloop-lab is installed in the dev venv
    assert {"run", "sweep", "validate"} <= names
