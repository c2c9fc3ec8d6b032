"""The serve config: defaults, secrets from the environment and files, fleet heartbeats."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rootloop.errors import UserError
from rootloop.serve.config import ServeConfig, load_config
from rootloop.serve.fleet import Heartbeat, executors
from rootloop.serve.store import Store

SECRET = "s3cr3t-for-tests-0123456789"


def test_embedded_default_uses_sqlite_under_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOTLOOP_STATE_DIR", str(tmp_path))
    config = load_config(None)
    assert config.routes == [] and not config.shared
    assert config.database() == f"sqlite:///{tmp_path / 'serve' / 'dbos.sqlite'}"
    assert config.resolved_executor_id() == "local"
    assert config.sources.sns.topic_arns == []


def test_secrets_from_env_and_file_and_relative_map_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PD_SECRET", SECRET)
    (tmp_path / "generic.secret").write_text(SECRET + "\n")
    (tmp_path / "serve.yaml").write_text(
        "sources:\n"
        "  pagerduty: {secrets: [env:PD_SECRET]}\n"
        f"  generic: {{secrets: ['file:{tmp_path / 'generic.secret'}']}}\n"
        "routes:\n  - {name: a, map: maps/a.yaml}\n"
    )
    config = load_config(tmp_path / "serve.yaml")
    assert config.sources.pagerduty.secrets[0].get_secret_value() == SECRET
    assert config.sources.generic.secrets[0].get_secret_value() == SECRET
    assert config.routes[0].map == (tmp_path / "maps" / "a.yaml").resolve()


def test_postgres_config_gives_each_process_its_own_executor_id() -> None:
    config = ServeConfig(database_url="postgresql://u@127.0.0.1:5/db")  # type: ignore[arg-type]
    assert config.shared
    assert config.resolved_executor_id() != config.resolved_executor_id()
    assert "u@127.0.0.1" not in repr(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("database_url: mysql://x\n", "postgresql"),
        ("routes: [{name: 'bad name', map: a.yaml}]\n", "routes.0.name"),
        ("routes: [{name: a, map: a.yaml, match_re: {x: '('}}]\n", "regular expression"),
        ("storms: {rate_limit: {max: 0}}\n", "rate_limit.max"),
        ("- a list\n", "mapping"),
        ("a: [unclosed\n", "YAML"),
    ],
)
def test_bad_configs_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_config(path)


def test_a_silent_worker_is_claimed_by_exactly_one_live_worker(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'fleet.sqlite'}")
    recovered: list[tuple[str, str]] = []

    def heartbeat(name: str) -> Heartbeat:
        return Heartbeat(
            store,
            name,
            lambda dead: recovered.append((name, dead)) or 1,
            every_seconds=1,
            dead_after_seconds=30,
        )

    dead, alive_a, alive_b = heartbeat("dead"), heartbeat("a"), heartbeat("b")
    for hb in (dead, alive_a, alive_b):
        hb.beat()
    assert alive_a.reap() == [] and recovered == []  # everyone is fresh
    with store.engine.begin() as conn:
        conn.execute(
            executors.update()
            .where(executors.c.executor_id == "dead")
            .values(last_seen=time.time() - 60)
        )
    claims = alive_a.reap() + alive_b.reap()
    assert claims == ["dead"]
    assert recovered == [("a", "dead")]
