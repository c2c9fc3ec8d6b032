"""Test doubles for the service, shipped for users' tests, ours and the bench.

- ``investigate`` / ``approve``: an investigator with no loop and observable side effects.
  Selected with ``investigator: rootloop.serve.testing`` in the serve config. It appends
  ``start <id>`` to ``$ROOTLOOP_SERVE_FAKE_LOG``, waits while ``$ROOTLOOP_SERVE_FAKE_HOLD``
  names a file that exists (so a test can kill the worker mid-investigation), sleeps
  ``$ROOTLOOP_SERVE_FAKE_SECONDS``, then appends ``effect <id>`` — once per investigation,
  keyed like the loop's idempotency keys. With ``$ROOTLOOP_SERVE_FAKE_GATE`` set it
  first pauses at that gate until ``approve`` records an approval.
- ``write_map``, ``alertmanager_body``, ``pagerduty_signature``: inputs of the right shape.
- ``ServeProcess`` / ``serve_processes``: ``rootloop serve`` as a real child process on
  port 0, its port read from its first line of output.
"""

from __future__ import annotations

import fcntl
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

from rootloop.serve.investigate import InvestigationOutcome, InvestigationRequest


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def investigate(request: InvestigationRequest) -> InvestigationOutcome:
    log = Path(os.environ.get("ROOTLOOP_SERVE_FAKE_LOG", "/dev/null"))
    inv = request.investigation_id
    _append(log, f"start {inv} pid={os.getpid()}")
    gate = os.environ.get("ROOTLOOP_SERVE_FAKE_GATE")
    if gate and not _approved(log, inv):
        return InvestigationOutcome("paused", f"waits at gate {gate}", run_id=inv, gate=gate)
    hold = os.environ.get("ROOTLOOP_SERVE_FAKE_HOLD")
    while hold and Path(hold).exists():
        time.sleep(0.1)
    time.sleep(float(os.environ.get("ROOTLOOP_SERVE_FAKE_SECONDS", "0")))
    if f"effect {inv}" not in _lines(log):
        _append(log, f"effect {inv}")
    return InvestigationOutcome("healthy", "recorded by the fake investigator", run_id=inv)


def approve(request: InvestigationRequest, gate: str, approver: str, action: str) -> bool:
    """Grants only the gate the fake pauses at (``$ROOTLOOP_SERVE_FAKE_GATE``); the fake
    has no actions, so ``action`` is not compared."""
    if gate != os.environ.get("ROOTLOOP_SERVE_FAKE_GATE") or gate == "production":
        return False
    log = Path(os.environ.get("ROOTLOOP_SERVE_FAKE_LOG", "/dev/null"))
    _append(log, f"approved {request.investigation_id} {gate} by {approver}")
    return True


def _lines(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines() if log.is_file() else []


def _approved(log: Path, inv: str) -> bool:
    return any(line.startswith(f"approved {inv} ") for line in _lines(log))


def write_map(path: Path, service: str, environment: str = "staging") -> Path:
    """A minimal service map routes can point at (one HTTP check on a closed port)."""
    path.write_text(
        f"service: {service}\nenvironment: {environment}\nupstream: []\ndownstream:\n"
        f"  - {{name: {service}-health, type: http, skill: http-health, "
        f'url: "http://127.0.0.1:9/health"}}\n',
        encoding="utf-8",
    )
    return path


def alertmanager_body(
    fingerprint: str, labels: dict[str, str], status: str = "firing"
) -> dict[str, object]:
    """An Alertmanager v4 webhook body holding one alert."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="' + labels.get("alertname", "") + '"}',
        "status": status,
        "receiver": "rootloop",
        "groupLabels": {},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": f"{labels.get('alertname', 'alert')} is firing"},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.invalid/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def pagerduty_signature(secrets: list[str], body: bytes) -> str:
    import hashlib
    import hmac

    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)


WAIT = 180.0  # generous: CI is a busy two-core machine


def wait_for(what: str, check: Callable[[], object], timeout: float = WAIT) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class ServeProcess:
    """``rootloop serve --port 0 --config <root>/serve.yaml`` as a child process."""

    def __init__(self, root: Path, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.root, self.env, self.args = root, env, args
        self.proc: subprocess.Popen[str] | None = None
        self.base = ""
        # One client for the process's life: building one per call costs more than the call.
        self._client = httpx.Client(timeout=30)

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
                *self.args,
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
        wait_for("readiness", self._ready)
        return self

    def _ready(self) -> bool:
        try:
            return self.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str, **kw: object) -> httpx.Response:
        return self._client.get(self.base + path, **kw)  # type: ignore[arg-type]

    def post(self, path: str, **kw: object) -> httpx.Response:
        return self._client.post(self.base + path, **kw)  # type: ignore[arg-type]

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
        self._client.close()


@contextmanager
def serve_processes(root: Path, env: dict[str, str]) -> Iterator[Callable[..., ServeProcess]]:
    """Start ``rootloop serve`` processes on demand (``make("--no-worker")``); stop them all."""
    started: list[ServeProcess] = []

    def make(*args: str) -> ServeProcess:
        proc = ServeProcess(root, env, args).start()
        started.append(proc)
        return proc

    try:
        yield make
    finally:
        for proc in started:
            proc.stop()
