"""moto's server mode as a real separate process on loopback.

Tests, benchmarks and the local lab talk to it exactly as to AWS: boto3 with
``endpoint_url`` pointing here. It runs as its own process (``python -m
moto.server``), so the lab can keep it as its AWS control plane and several
clients (the CLI, the lab's services, tests) can share its state.

``reset`` wipes every resource (``POST /moto-api/reset``); ``enforce_iam``
turns on moto's IAM checks so access-denied paths can be exercised.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from rootloop.errors import PlatformError

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class MotoServer:
    """A running moto server process; stop it with ``stop()`` or a ``with`` block."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    host: str = HOST
    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def _post(self, path: str, body: bytes = b"") -> bytes:
        req = urllib.request.Request(
            f"{self.endpoint_url}{path}",
            data=body,
            method="POST",
            headers={"Content-Type": "text/plain"},  # a form type would hide the body
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read()

    def reset(self) -> None:
        """Delete every resource in every service (moto's reset API)."""
        self._post("/moto-api/reset")

    def enforce_iam(self, after_requests: int = 0) -> None:
        """Check IAM on every request after the next ``after_requests`` ones."""
        self._post("/moto-api/reset-auth", str(after_requests).encode())

    def relax_iam(self) -> None:
        """Back to moto's default: every request is allowed."""
        self._post("/moto-api/reset-auth", b"inf")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(
    port: int | None = None,
    *,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    ready_timeout: float = 30.0,
    ecs_running: int | None = None,
) -> MotoServer:
    """Start ``moto.server`` on 127.0.0.1 and wait until it answers.

    ``ecs_running``: how many tasks moto reports running for a new ECS service
    (moto's ``MOTO_ECS_SERVICE_RUNNING``); services with at most that many
    desired tasks start with their rollout ``COMPLETED``.
    """
    port = port or free_port()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="rootloop-moto-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"moto-{port}.log"
    penv = dict(os.environ)
    penv.update(env or {})
    if ecs_running is not None:
        penv["MOTO_ECS_SERVICE_RUNNING"] = str(ecs_running)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=penv,
            start_new_session=True,
        )
    server = MotoServer(port=port, process=proc, log_path=log_path, env=env or {})
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-800:]
            raise PlatformError(
                f"moto server exited with {proc.returncode}: {tail}",
                "is moto[server] installed? (pip install 'moto[server]')",
            )
        if _ready(server.endpoint_url):
            return server
        time.sleep(0.1)
    server.stop()
    raise PlatformError(
        f"moto server did not answer on port {port} within {ready_timeout:g}s", f"see {log_path}"
    )
