"""``rootloop serve`` as a real server process: uvicorn on port 0, DBOS on SQLite.

The investigator is the recording fake (``rootloop.serve.testing:record``), so
the side effects of each investigation are lines in a file the test reads.
Timeouts are generous and every wait polls for a condition: the CI box is busy.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rootloop.serve.testing import alertmanager_body, write_map

WAIT = 180.0


def wait_for(what: str, check: Callable[[], object], timeout: float = WAIT) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class ServeProcess:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.proc: subprocess.Popen[str] | None = None
        self.base = ""

    def start(self) -> ServeProcess:
        log = (self.root / "serve.log").open("a")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rootloop.cli.main",
                "serve",
                "--port",
                "0",
                "--config",
                str(self.root / "serve.yaml"),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **self.env},
        )
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            first = lines.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError("serve did not report its port") from None
        assert first, (self.root / "serve.log").read_text()
        self.base = f"http://127.0.0.1:{json.loads(first)['port']}"
        wait_for("readiness", lambda: self.get("/readyz").status_code == 200)
        return self

    def get(self, path: str, **kw: object) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30, **kw)  # type: ignore[arg-type]

    def post(self, path: str, **kw: object) -> httpx.Response:
        return httpx.post(self.base + path, timeout=30, **kw)  # type: ignore[arg-type]

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


@contextmanager
def serve_processes(root: Path, env: dict[str, str]) -> Iterator[Callable[[], ServeProcess]]:
    """Start ``rootloop serve`` processes on demand; stop every one at the end."""
    started: list[ServeProcess] = []

    def make() -> ServeProcess:
        proc = ServeProcess(root, env).start()
        started.append(proc)
        return proc

    try:
        yield make
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    write_map(tmp_path / "checkout.yaml", "checkout", "staging")
    (tmp_path / "serve.yaml").write_text(
        "investigator: rootloop.serve.testing:record\n"
        "queue: {polling_interval_seconds: 0.2}\n"
        "storms: {flap_window_seconds: 600}\n"
        "routes:\n"
        "  - {name: checkout, map: checkout.yaml, match: {service: checkout}}\n",
        encoding="utf-8",
    )
    env = {
        "ROOTLOOP_STATE_DIR": str(tmp_path / "state"),
        "ROOTLOOP_SERVE_FAKE_LOG": str(tmp_path / "effects.log"),
        "ROOTLOOP_SERVE_FAKE_HOLD": str(tmp_path / "hold"),
    }
    with serve_processes(tmp_path, env) as make:
        yield make


def effects(root: Path) -> list[str]:
    path = root / "effects.log"
    return path.read_text().splitlines() if path.exists() else []


def ended(server: ServeProcess, inv_id: str) -> dict | None:
    detail = server.get(f"/investigations/{inv_id}").json()
    # The store's row ends in the workflow's last step; DBOS marks the workflow a moment later.
    return detail if detail["status"] == "ended" and detail["workflow"] == "SUCCESS" else None


def test_real_server_runs_one_investigation_for_a_resent_alert(
    serve: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    server = serve()
    body = alertmanager_body("fp-1", {"alertname": "HighErrorRate", "service": "checkout"})
    verdicts = [server.post("/hooks/alertmanager", json=body).json() for _ in range(20)]
    # The fake ends fast, so later copies may come after the end: within the flap window
    # those start nothing either.
    kinds = [d["verdict"] for v in verdicts for d in v["decisions"]]
    assert kinds.count("started") == 1 and set(kinds) <= {"started", "attached", "flapping"}
    started = [d for v in verdicts for d in v["decisions"] if d["verdict"] == "started"]
    inv_id = started[0]["investigation_id"]
    detail = wait_for("the investigation to end", lambda: ended(server, inv_id))
    assert detail["outcome"] == "healthy"
    assert detail["workflow"] == "SUCCESS"
    assert [line.split()[:2] for line in effects(tmp_path)] == [
        ["start", inv_id],
        ["effect", inv_id],
    ]
    text = server.get("/metrics").text
    assert 'rootloop_serve_investigations_by_outcome{outcome="healthy"} 1.0' in text
    assert server.get("/openapi.json").json()["paths"].keys() >= {"/hooks/sns", "/hooks/generic"}


def test_worker_killed_mid_investigation_is_recovered_and_the_effect_happens_once(
    serve: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.touch()  # the fake investigator waits while this file exists
    first = serve()
    body = alertmanager_body("fp-9", {"alertname": "Latency", "service": "checkout"})
    (decision,) = first.post("/hooks/alertmanager", json=body).json()["decisions"]
    inv_id = decision["investigation_id"]
    wait_for("the investigation to start", lambda: any("start" in x for x in effects(tmp_path)))
    assert first.get(f"/investigations/{inv_id}").json()["status"] == "running"
    first.kill9()

    hold.unlink()
    second = serve()
    detail = wait_for("the recovered investigation to end", lambda: ended(second, inv_id))
    assert detail["outcome"] == "healthy"
    lines = effects(tmp_path)
    starts = [x for x in lines if x.startswith(f"start {inv_id}")]
    assert len(starts) == 2, lines  # the killed attempt and the recovered one
    assert len({s.split("pid=")[1] for s in starts}) == 2  # in two different processes
    assert lines.count(f"effect {inv_id}") == 1
    assert len(second.get("/investigations").json()) == 1
