"""The lab's supervisor daemon: ``python -m rootloop_lab.supervisor <lab-dir>``.

Owns every lab process and thread: moto's server, PostgreSQL, Redis, the ECS
agent and its tasks, the lambda-worker, the CI runner and its GitHub-shaped
API, the deployer, log shipping, metrics and background traffic. It writes
``lab.json`` (status ``ready`` once every service answers its health check) and
stops everything on SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from rootloop_lab import capacity, cloud, procs, repo, snapshot
from rootloop_lab.agent import Agent
from rootloop_lab.ci import CiRunner, CiStore
from rootloop_lab.deployer import Deployer
from rootloop_lab.github_api import GitHubApi
from rootloop_lab.layout import ECS_SERVICES, FUNCTION, PG_MAX_CONNECTIONS, LabState, Layout
from rootloop_lab.logship import LogShipper
from rootloop_lab.metrics import Metrics
from rootloop_lab.servers import postgres as local_pg
from rootloop_lab.servers import redis as local_redis
from rootloop_lab.servers.ports import free_or_new
from rootloop_lab.traffic import Traffic

log = logging.getLogger("rootloop_lab.supervisor")
READY_TIMEOUT = 60.0


class Supervisor:
    def __init__(self, root: Path) -> None:
        self.layout = Layout(root)
        self.stop_event = threading.Event()
        self.state = LabState(supervisor_pid=os.getpid(), started_at=time.time())
        prev = self.layout.read_state()
        if prev is not None:
            self.state.ports = prev.ports
        self.pg: local_pg.PostgresServer | None = None
        self.redis: local_redis.RedisServer | None = None
        self.emu: cloud.Emulator | None = None
        self.agent: Agent | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.parts: list[Any] = []  # things with stop_event or stop()
        self.threads: list[threading.Thread] = []
        self.api: GitHubApi | None = None
        self.restore_event = threading.Event()  # SIGUSR1: put the lab back clean in place

    # -- start ------------------------------------------------------------
    def start(self) -> None:
        """A lab from nothing: the servers, then the world on them (``_build``)."""
        p = self.state.ports
        for name in ("payments_api", "api_gateway", "frontend_app", "notification_svc", "ci"):
            setattr(p, name, free_or_new(getattr(p, name)))
        self.emu = cloud.Emulator(free_or_new(p.moto))
        p.moto = self.emu.port
        with ThreadPoolExecutor(4) as ex:
            pg = ex.submit(self._start_pg)
            rd = ex.submit(
                local_redis.start_redis, self.layout.root / "redis", port=free_or_new(p.redis)
            )
            self.pg, self.redis = pg.result(), rd.result()
        self.layout.record_pid("postgres", self.pg.process.pid)  # type: ignore[union-attr]
        self.layout.record_pid("redis", self.redis.process.pid)  # type: ignore[union-attr]
        self.state.ports.postgres, self.state.ports.redis = self.pg.port, self.redis.port
        self.state.pg_data_dir = str(self.pg.data_dir)
        self._build(first=True)

    def restore(self) -> None:
        """The clean lab again, in place (``rootloop_lab.snapshot``): every service process
        and thread stopped, PostgreSQL, Redis, the emulator and the files put back, then
        the same world built on them as by ``start``. Keeps moto and the imports warm."""
        started = time.monotonic()
        self.state.status, self.state.error = "starting", ""
        self.state.generation += 1
        self.state.started_at = time.time()
        self.layout.write_state(self.state)
        self._stop_parts()
        stopped = time.monotonic()
        assert self.pg is not None and self.redis is not None and self.emu is not None
        snapshot.restore_postgres(self.pg.dsn_for("postgres"))
        redis_dir, port = self.layout.root / "redis", self.redis.port
        self.redis.stop()
        shutil.rmtree(redis_dir, ignore_errors=True)
        self.redis = local_redis.start_redis(redis_dir, port=port)
        self.layout.record_pid("redis", self.redis.process.pid)  # type: ignore[union-attr]
        snapshot.reset_emulator(self.emu.endpoint)
        snapshot.wipe_files(self.layout.root)
        reset = time.monotonic()
        self._build(first=False)
        log.info(
            "lab restored in place in %.1fs (stopping %.1fs, state back %.1fs, start %.1fs)",
            time.monotonic() - started,
            stopped - started,
            reset - stopped,
            time.monotonic() - reset,
        )

    def _build(self, *, first: bool) -> None:
        """Queues, repository, schema, AWS resources, services, CI, traffic: until ready."""
        assert self.emu is not None and self.pg is not None
        with ThreadPoolExecutor(2) as ex:
            sha_f = ex.submit(repo.create, self.layout)
            queues = ex.submit(cloud.create_queues, self.state)
            sha = sha_f.result()
            self.state = queues.result()
        if first:
            self._init_db()
            snapshot.take_postgres(self.pg.dsn_for("postgres"))
        t_res = time.monotonic()
        cloud.create_resources(self.state, sha)
        with ThreadPoolExecutor(1) as ex:  # hosts and providers, while the rest is set up
            hosts = ex.submit(capacity.create, self.emu.endpoint)
            cloud.create_mapping(self.emu, self.state)
            self._ensure_clone()
            self.layout.write_state(self.state)
            hosts.result()
        t_parts = time.monotonic()

        shipper = LogShipper(self.emu.endpoint)
        self.agent = Agent(self.layout, self.emu)
        self.agent.shipper = shipper
        self.agent.capacity = capacity.Capacity(self.emu)
        store = CiStore(self.layout)
        self.api = GitHubApi(store, self.state.ports.ci)
        self.api.start()
        runner = CiRunner(self.layout, store, self.api.html(), Deployer(self.emu.endpoint))
        metrics = Metrics(self.emu, self.agent)
        traffic = Traffic(self.state.ports.api_gateway)
        self.parts = [self.agent, shipper, runner, metrics]
        self.threads = []
        for part in self.parts:
            self._thread(part.run, type(part).__name__)
        self._start_worker(shipper)
        self._wait_healthy()
        log.info(
            "resources %.1fs, services healthy %.1fs",
            t_parts - t_res,
            time.monotonic() - t_parts,
        )
        self.parts.append(traffic)
        self._thread(traffic.run, "traffic")
        self.state.status, self.state.ready_at = "ready", time.time()
        self.layout.write_state(self.state)
        log.info("lab ready in %.1fs", self.state.ready_at - self.state.started_at)

    def _thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, daemon=True, name=name)
        thread.start()
        self.threads.append(thread)

    def _start_pg(self) -> local_pg.PostgresServer:
        return local_pg.start_postgres(
            self.layout.root / "pg",
            port=free_or_new(self.state.ports.postgres),
            max_connections=PG_MAX_CONNECTIONS,
        )

    def _init_db(self) -> None:
        assert self.pg is not None
        schema = (repo.TEMPLATE / "schema.sql").read_text()
        with psycopg.connect(self.pg.dsn_for("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname='payments'").fetchone():
                conn.execute("CREATE DATABASE payments")
            for role in ("payments", "worker"):
                if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname=%s", (role,)).fetchone():
                    conn.execute(f"CREATE ROLE {role} LOGIN")
        with psycopg.connect(self.pg.dsn_for("payments"), autocommit=True) as conn:
            conn.execute(schema)
            conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO payments, worker")
            conn.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO payments, worker")

    def _ensure_clone(self) -> None:
        """rootloop's own working copy of the repository (the map's ``self.repo.path``)."""
        clone = self.layout.root / "repo" / "payments-api"
        if not clone.exists():
            repo.git("clone", "-q", str(self.layout.origin), str(clone), cwd=self.layout.root)

    def _start_worker(self, shipper: LogShipper) -> None:
        assert self.emu is not None
        out = self.layout.logs / "lambda-worker.log"
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONUNBUFFERED": "1",
            "HOME": os.environ.get("HOME", "/tmp"),
            **cloud.aws_env(self.emu.endpoint),
            "FUNCTION_NAME": FUNCTION,
            "QUEUE_URL": self.state.queue_url,
        }
        with open(out, "ab") as fh:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "rootloop_lab.apps.lambda_worker"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.layout.root,
            )
        self.layout.record_pid("lambda-worker", self.worker.pid)
        day = time.strftime("%Y/%m/%d")
        shipper.watch(out, f"/aws/lambda/{FUNCTION}", f"{day}/[$LATEST]{self.worker.pid:08x}")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = set(ECS_SERVICES)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                with contextlib.suppress(OSError):
                    url = f"{self.state.url(name)}/health"
                    with urllib.request.urlopen(url, timeout=2) as resp:
                        if resp.status == 200:
                            pending.discard(name)
            time.sleep(0.2)
        if pending:
            names = ", ".join(sorted(pending))
            raise RuntimeError(f"not healthy after {READY_TIMEOUT:g}s: {names}")

    # -- run / stop -------------------------------------------------------
    def watch_worker(self, shipper: LogShipper | None = None) -> None:
        """Restart the worker if it dies (a Lambda poller always comes back)."""
        if self.worker is not None and self.worker.poll() is not None and shipper is not None:
            self._start_worker(shipper)

    def serve(self) -> None:
        while not self.stop_event.wait(0.2):
            if self.restore_event.is_set():
                self.restore_event.clear()
                try:
                    self.restore()
                except Exception as exc:  # the Lab rebuilds from nothing on "failed"
                    log.exception("restoring the lab in place failed")
                    self.state.status, self.state.error = "failed", f"restore: {exc}"
                    self.layout.write_state(self.state)
                    return
                continue
            shipper = next((p for p in self.parts if isinstance(p, LogShipper)), None)
            self.watch_worker(shipper)

    def _stop_parts(self, *, ship_logs: bool = False, join_timeout: float = 60.0) -> None:
        """Every thread, task, worker and fault helper the services run on; not the servers.
        A thread still busy after ``join_timeout`` (a CI job) fails a restore: it could
        act on the clean lab."""
        for part in self.parts:
            part.stop_event.set()
        if not ship_logs:
            # a restore throws their state away: no graceful shutdown to wait for
            self._kill_processes()
        if self.agent is not None:
            self.agent.stop_all()
        if self.worker is not None:
            procs.stop_group(self.worker.pid, timeout=3)
            self.layout.forget_pid("lambda-worker")
            self.worker = None
        for name, pid in self.layout.recorded_pids().items():
            if name.startswith(("fault-", "task-")):
                procs.stop_group(pid, timeout=2)
                self.layout.forget_pid(name)
        if self.api is not None:
            with contextlib.suppress(Exception):
                self.api.stop()
        if ship_logs:
            for shipper in [p for p in self.parts if isinstance(p, LogShipper)]:
                with contextlib.suppress(Exception):
                    shipper.ship_all()
        deadline = time.monotonic() + join_timeout
        busy = []
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                busy.append(thread.name)
        if busy and not ship_logs:
            raise snapshot.RestoreError(f"still busy after {join_timeout:g}s: {', '.join(busy)}")
        self.parts, self.threads = [], []

    def _kill_processes(self) -> None:
        pids = [t.proc.pid for ts in (self.agent.tasks.values() if self.agent else []) for t in ts]
        pids += [self.worker.pid] if self.worker is not None else []
        pids += [p for n, p in self.layout.recorded_pids().items() if n.startswith("fault-")]
        for pid in pids:
            procs.kill_group(pid, signal.SIGKILL)

    def stop(self) -> None:
        self.state.status = "stopping"
        with contextlib.suppress(Exception):
            self.layout.write_state(self.state)
        self._stop_parts(ship_logs=True, join_timeout=5.0)
        if self.pg is not None:
            self.pg.stop()
            self.layout.forget_pid("postgres")
        if self.redis is not None:
            self.redis.stop()
            self.layout.forget_pid("redis")
        if self.emu is not None:
            with contextlib.suppress(Exception):
                self.emu.stop()
        self.state.status = "stopped"
        with contextlib.suppress(Exception):
            self.layout.write_state(self.state)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    root = Path(args[0]).resolve()
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sup = Supervisor(root)
    sup.layout.record_pid("supervisor", os.getpid())

    def on_term(signum: int, _frame: object) -> None:
        sup.stop_event.set()

    def on_restore(signum: int, _frame: object) -> None:
        sup.restore_event.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGUSR1, on_restore)
    try:
        sup.layout.write_state(sup.state)
        sup.start()
        sup.serve()
    except Exception as exc:
        log.exception("lab failed")
        sup.state.status, sup.state.error = "failed", f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            sup.layout.write_state(sup.state)
        sup.stop()
        sup.state.status = "failed"
        sup.layout.write_state(sup.state)
        sup.layout.forget_pid("supervisor")
        return 1
    sup.stop()
    sup.layout.forget_pid("supervisor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
