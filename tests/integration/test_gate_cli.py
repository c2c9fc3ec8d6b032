"""``rootloop gate``, ``validate`` and ``run`` as real processes: decisions as JSON, bad
input as one clear paragraph (exit 2), never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rootloop.cli import main as cli_main
from tests.unit.gate_support import REDIS, RESTART, base_map, write_map


def rootloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rootloop.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def gate(tmp_path: Path, data: dict, action: dict) -> dict:
    path = write_map(tmp_path, data)
    out = rootloop("gate", "-t", str(path), "--action", json.dumps(action), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("data", "action", "decision", "gate_name"),
    [
        (base_map(), RESTART, "allow", None),
        (base_map(environment="eu-prod"), RESTART, "refuse", "production"),
        (base_map(environment="ｐｒｏｄ"), REDIS, "refuse", "production"),
        (
            base_map(cluster="prodcluster"),
            {**RESTART, "cluster": "prodcluster"},
            "refuse",
            "production",
        ),
        (base_map(), {**REDIS, "target": "payments-api"}, "refuse", "target"),
        (
            base_map(),
            {"kind": "run-migration", "target": "postgresql", "name": "x", "sql": "TRUNCATE p"},
            "pause",
            "schema",
        ),
        (base_map(policy={"autonomy": "propose"}), REDIS, "pause", "autonomy"),
    ],
    ids=["allow", "eu-prod", "full-width", "prodcluster", "mismatch", "schema", "propose"],
)
def test_gate_prints_one_decision(tmp_path, data, action, decision, gate_name):
    out = gate(tmp_path, data, action)
    assert (out["decision"], out["gate"]) == (decision, gate_name), out
    assert out["reason"] and out["level"] in ("observe", "propose", "act")


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"kind": "format-disk", "target": "x"}', "unknown kind"),
        ('{"kind": "restart", "target": "payments-api"}', "field 'cluster'"),
        ("[1, 2]", "must be a JSON object"),
        ("[" * 3000 + "]" * 3000, "--action"),
    ],
)
def test_gate_rejects_a_bad_action_clearly(tmp_path, action, expected):
    path = write_map(tmp_path, base_map())
    out = rootloop("gate", "-t", str(path), "--action", action, cwd=tmp_path)
    assert out.returncode == 2 and expected in " ".join(out.stderr.split()), out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


BAD_MAPS = {
    "non-utf8.yaml": b"service: x\nenvironment: staging\n\xff\xfe\n",
    "deep.json": ("[" * 3000 + "]" * 3000).encode(),
    "deep.yaml": ("a: " + "[" * 3000 + "]" * 3000).encode(),
    "memory.yaml": b"service: x\nenvironment: staging\nmemory: {root: 7}\n",
    "regex.yaml": b'service: x\nenvironment: staging\npolicy: {production_name_pattern: "(x"}\n',
    "inf.yaml": b"service: x\nenvironment: staging\npolicy: {settle_seconds: .inf}\n",
    "nan.yaml": b"service: x\nenvironment: staging\npolicy: {error_rate_threshold: .nan}\n",
    "dup.yaml": b"service: x\nenvironment: staging\nenvironment: production\n",
    "dup.json": b'{"service": "x", "environment": "staging", "environment": "prod"}',
}
EXPECTED = {
    "non-utf8.yaml": "not UTF-8",
    "deep.json": "nested",
    "deep.yaml": "nested",
    "memory.yaml": "memory.root",
    "regex.yaml": "production_name_pattern",
    "inf.yaml": "settle_seconds",
    "nan.yaml": "error_rate_threshold",
    "dup.yaml": "written twice",
    "dup.json": "written twice",
}


def in_process(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """The CLI's own entry point (its last-resort handler included), without a new process."""
    monkeypatch.setattr(sys, "argv", ["rootloop", *args])
    with pytest.raises(SystemExit) as exit_:
        cli_main.main()
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), " ".join((captured.err + captured.out).split())


@pytest.mark.parametrize("name", sorted(BAD_MAPS))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_maps_get_one_clear_paragraph_from_validate_and_run(
    tmp_path, monkeypatch, capsys, name, command
):
    path = tmp_path / name
    path.write_bytes(BAD_MAPS[name])
    args = ["--state-dir", str(tmp_path / "state")] if command == "run" else []
    code, text = in_process(monkeypatch, capsys, command, "-t", str(path), *args)
    assert code == 2, text
    assert EXPECTED[name] in text and "Traceback" not in text


def test_bad_maps_as_a_real_process(tmp_path):
    (tmp_path / "maps").mkdir()
    out = rootloop("validate", "-t", str(tmp_path / "maps"), cwd=tmp_path)
    assert out.returncode == 2 and "is a directory" in out.stderr
    path = tmp_path / "memory.yaml"
    path.write_bytes(BAD_MAPS["memory.yaml"])
    out = rootloop("run", "-t", str(path), "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert out.returncode == 2 and "memory.root" in out.stderr and "Traceback" not in out.stderr


def test_the_last_resort_prints_one_line_and_where_the_trace_is(monkeypatch, capsys):
    def broken() -> None:
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(cli_main, "app", broken)
    with pytest.raises(SystemExit) as exit_:
        cli_main.main()
    assert exit_.value.code == 70
    err = " ".join(capsys.readouterr().err.split())
    assert "RuntimeError: something unexpected" in err and "Traceback" not in err
    trace = Path(err.split("the full trace is in ")[1].strip())
    assert "Traceback" in trace.read_text() and "something unexpected" in trace.read_text()
    trace.unlink()
