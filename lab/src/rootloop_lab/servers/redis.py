"""A throwaway Redis server on loopback, for tests and the local lab.

Configured entirely on the command line: 127.0.0.1 only, a free port, no RDB or
AOF persistence, its working directory in ``directory``, ``maxmemory`` and the
eviction policy settable. Nothing is written outside ``directory``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from rootloop.errors import PlatformError
from rootloop_lab.servers.ports import free_port
from rootloop_lab.servers.process import stop_escalating

DEBIAN_PACKAGE = "redis-server"


@dataclass
class RedisServer:
    """A running server. ``url`` reaches database 0."""

    host: str
    port: int
    dir: Path
    log_file: Path
    password: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        """A synchronous client with short socket timeouts (for setup code, not skills)."""
        return redis.Redis(
            host=self.host,
            port=self.port,
            db=db,
            password=self.password,
            socket_connect_timeout=5,
            socket_timeout=10,
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        stop_escalating(self.process, ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)))
        self.process = None

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def redis_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
    )
    if found is None:
        raise PlatformError(
            "redis-server not found", f"install it: apt-get install {DEBIAN_PACKAGE}"
        )
    return found


def start_redis(
    directory: str | Path,
    *,
    port: int | None = None,
    maxmemory: int | str = 0,
    maxmemory_policy: str = "noeviction",
    maxclients: int | None = None,
    password: str | None = None,
    settings: dict[str, str | int] | None = None,
    timeout: float = 20.0,
) -> RedisServer:
    """Start ``redis-server`` and wait until it answers PING.

    ``maxmemory`` is bytes or a Redis size ("64mb"); 0 means no limit.
    ``settings`` are extra ``--name value`` directives.
    """
    binary = redis_binary()
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        srv = _launch(
            binary,
            directory,
            port or free_port(),
            maxmemory,
            maxmemory_policy,
            maxclients,
            password,
            settings or {},
        )
        try:
            _wait_ready(srv, timeout)
            return srv
        except _PortTaken:
            srv.stop()
            if attempt + 1 == attempts:
                raise PlatformError(
                    f"Redis could not bind port {srv.port}", "the port is in use; pass another one"
                ) from None
        except BaseException:
            srv.stop()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


class _PortTaken(Exception):
    pass


def _launch(
    binary: str,
    directory: Path,
    port: int,
    maxmemory: int | str,
    policy: str,
    maxclients: int | None,
    password: str | None,
    settings: dict[str, str | int],
) -> RedisServer:
    log_file = directory / f"redis-{port}.log"
    params: dict[str, str | int] = {
        "port": port,
        "bind": "127.0.0.1",
        "dir": str(directory),
        "save": "",
        "appendonly": "no",
        "daemonize": "no",
        "logfile": str(log_file),
        "maxmemory": maxmemory,
        "maxmemory-policy": policy,
    }
    if maxclients is not None:
        params["maxclients"] = maxclients
    if password:
        params["requirepass"] = password
    params.update(settings)
    cmd = [binary]
    for k, v in params.items():
        cmd += [f"--{k}", str(v)]
    with open(log_file, "ab") as log:  # config errors go to stderr before the log opens
        proc = subprocess.Popen(
            cmd,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    return RedisServer(
        host="127.0.0.1",
        port=port,
        dir=directory,
        log_file=log_file,
        password=password,
        process=proc,
    )


def _wait_ready(srv: RedisServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        assert srv.process is not None
        if srv.process.poll() is not None:
            err = ""
            with contextlib.suppress(OSError):
                err = srv.log_file.read_text(errors="replace")
            if "Address already in use" in err:
                raise _PortTaken
            raise PlatformError(
                f"redis-server exited with code {srv.process.returncode} "
                f"before it was ready: {err.strip()[-600:]}"
            )
        client = srv.client()
        try:
            # the answer must come from our process, not from another server on the port
            if client.info("server").get("process_id") == srv.process.pid:
                return
        except redis.RedisError as exc:
            last = str(exc)
        finally:
            client.close()
        time.sleep(0.05)
    raise PlatformError(f"Redis on port {srv.port} was not ready after {timeout:g}s: {last}")
