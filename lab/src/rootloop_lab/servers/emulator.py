"""moto's server mode as a real separate process on loopback.

Tests, benchmarks and the local lab talk to it exactly as to AWS: boto3 with
``endpoint_url`` pointing here. It runs as its own process (``python -m
rootloop_lab.servers.emulator``: moto's threaded server), so several clients (the
CLI, the lab's services, tests) can share its state. Unless a port is asked for,
the server binds port 0 itself and writes the port it got to a file the launcher
reads back: no window in which another process can take a port chosen for it.

``reset`` wipes every resource (``POST /moto-api/reset``); ``enforce_iam``
turns on moto's IAM checks so access-denied paths can be exercised.
"""

from __future__ import annotations

import argparse
import os
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
MODULE = "rootloop_lab.servers.emulator"


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
        _stop(self.process, timeout)

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
    """Start moto's server on 127.0.0.1 (``port`` or any free one) and wait until it answers.

    ``ecs_running``: how many tasks moto reports running for a new ECS service
    (moto's ``MOTO_ECS_SERVICE_RUNNING``); services with at most that many
    desired tasks start with their rollout ``COMPLETED``.
    """
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="rootloop-moto-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="moto-", suffix=".log", dir=log_dir)
    os.close(fd)
    log_path = Path(name)
    port_file = log_path.with_suffix(".port")
    penv = dict(os.environ)
    penv.update(env or {})
    if ecs_running is not None:
        penv["MOTO_ECS_SERVICE_RUNNING"] = str(ecs_running)
    cmd = [sys.executable, "-m", MODULE, "--port", str(port or 0), "--port-file", str(port_file)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=penv, start_new_session=True
        )
    deadline = time.monotonic() + ready_timeout
    server: MotoServer | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-800:]
            raise PlatformError(
                f"moto server exited with {proc.returncode}: {tail}",
                "is moto[server] installed? (pip install 'moto[server]')",
            )
        if server is None and port_file.is_file():
            bound = int(port_file.read_text())
            server = MotoServer(port=bound, process=proc, log_path=log_path, env=env or {})
        if server is not None and _ready(server.endpoint_url):
            return server
        time.sleep(0.1)
    _stop(proc)
    raise PlatformError(f"moto server did not answer within {ready_timeout:g}s", f"see {log_path}")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _serve(argv: list[str] | None = None) -> None:
    """The server process: moto's app on werkzeug, its bound port written for the launcher.

    Built from the same parts as moto's ``ThreadedMotoServer``, but in the foreground, so
    a failure to bind ends the process (with the reason in its log) instead of a thread.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args(argv)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from rootloop_lab.servers import sqs_move

    sqs_move.install()  # the DLQ redrive API moto lacks (docs/aws.md)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(HOST, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = int(server.server_address[1])
    os.environ["MOTO_PORT"] = str(port)  # moto builds its own callback URLs from it
    partial = args.port_file.with_suffix(".tmp")
    partial.write_text(str(port))
    partial.replace(args.port_file)  # the launcher never reads half a number
    server.serve_forever()  # until SIGTERM (stop) ends the process


if __name__ == "__main__":
    _serve()
