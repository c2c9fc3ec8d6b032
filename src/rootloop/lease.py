"""One investigation per service and environment: a lease in the state store.

Two runs acting on one service at once undo each other's fixes and judge each
other's side effects, so a run first takes the lease of ``<service>@<environment>``
and acts only while it holds it. The lease is a row in ``<state>/leases.sqlite3``
(SQLite serialises the writers; ``BEGIN IMMEDIATE`` makes take-or-fail atomic):

- it expires ``ttl`` seconds after its last heartbeat, so a holder killed with
  ``kill -9`` frees it without anyone's help; a holder on this host whose process
  is gone frees it at once;
- a live holder renews it from a heartbeat thread every ``ttl / 3``;
- ``check()`` is asked right before each side effect: a run that lost its lease
  (it stalled past the expiry and another took over) stops before acting.

A second run finds the lease held and gets ``LeaseHeld`` (the CLI exits with code
6), or waits for it with ``acquire(wait=...)``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rootloop.errors import ControlFlow, UserError

DEFAULT_TTL = 60.0
TTL_ENV = "ROOTLOOP_LEASE_TTL"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lease (
    scope TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    run_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    acquired_at REAL NOT NULL,
    expires_at REAL NOT NULL
)"""


@dataclass(frozen=True)
class Holder:
    run_id: str
    pid: int
    host: str
    expires_at: float

    def describe(self) -> str:
        until = datetime.fromtimestamp(self.expires_at, UTC).strftime("%H:%M:%S UTC")
        return f"run {self.run_id} (pid {self.pid} on {self.host}, lease until {until})"


class LeaseHeld(UserError):
    """Another live run holds the lease: this one must not act."""

    exit_code = 6

    def __init__(self, scope: str, holder: Holder) -> None:
        self.scope, self.holder = scope, holder
        super().__init__(
            f"{scope} is already being investigated by {holder.describe()}. "
            f"Wait for it (rootloop status {holder.run_id}), or run again with --wait SECONDS; "
            "a holder that was killed frees the lease when it expires."
        )


class LeaseLost(ControlFlow):
    """This run no longer holds its lease: stop before the next side effect."""


def default_ttl() -> float:
    try:
        return max(1.0, float(os.environ.get(TTL_ENV, DEFAULT_TTL)))
    except ValueError:
        return DEFAULT_TTL


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) acts no more: it is gone
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"
    return True


class Lease:
    """The lease of one scope, as one run would hold it."""

    def __init__(
        self,
        root: Path,
        service: str,
        environment: str,
        run_id: str,
        *,
        ttl: float | None = None,
    ) -> None:
        self.path = Path(root) / "leases.sqlite3"
        self.scope = f"{service}@{environment}"
        self.run_id = run_id
        self.ttl = ttl or default_ttl()
        self.token = secrets.token_hex(8)
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- storage ------------------------------------------------------------------
    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def holder(self) -> Holder | None:
        """Who holds the scope now (None: nobody, or an expired or dead holder)."""
        with self._db() as db:
            return self._live_holder(db)

    def _live_holder(self, db: sqlite3.Connection) -> Holder | None:
        row = db.execute(
            "SELECT run_id, pid, host, expires_at, token FROM lease WHERE scope = ?",
            (self.scope,),
        ).fetchone()
        if row is None:
            return None
        holder = Holder(row[0], row[1], row[2], row[3])
        if row[4] == self.token:
            return holder
        if holder.expires_at <= time.time():
            return None
        if holder.host == self.host and not _pid_alive(holder.pid):
            return None
        return holder

    # -- taking, keeping, giving back -------------------------------------------------
    def try_acquire(self) -> Holder | None:
        """Take the lease; returns the other holder instead when it is taken."""
        with self._db() as db:
            other = self._live_holder(db)
            if other is not None and not self._mine(db):
                return other
            now = time.time()
            db.execute(
                "INSERT OR REPLACE INTO lease VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.scope, self.token, self.run_id, os.getpid(), self.host, now, now + self.ttl),
            )
        return None

    def acquire(self, wait: float = 0.0, poll: float = 1.0) -> None:
        """Take the lease, waiting up to ``wait`` seconds for a holder to finish."""
        deadline = time.monotonic() + wait
        while True:
            other = self.try_acquire()
            if other is None:
                return
            if time.monotonic() >= deadline:
                raise LeaseHeld(self.scope, other)
            time.sleep(min(poll, max(0.05, deadline - time.monotonic())))

    def _mine(self, db: sqlite3.Connection) -> bool:
        row = db.execute("SELECT token FROM lease WHERE scope = ?", (self.scope,)).fetchone()
        return row is not None and row[0] == self.token

    def renew(self) -> bool:
        """Push the expiry out; False when the lease is no longer this run's."""
        with self._db() as db:
            cur = db.execute(
                "UPDATE lease SET expires_at = ? WHERE scope = ? AND token = ? AND expires_at > ?",
                (time.time() + self.ttl, self.scope, self.token, time.time()),
            )
            return cur.rowcount == 1

    def check(self) -> None:
        """Raise ``LeaseLost`` unless this run holds an unexpired lease right now."""
        with self._db() as db:
            row = db.execute(
                "SELECT token, expires_at FROM lease WHERE scope = ?", (self.scope,)
            ).fetchone()
        if row is None or row[0] != self.token or row[1] <= time.time():
            raise LeaseLost(
                f"run {self.run_id} no longer holds the lease of {self.scope}: "
                "stopped before acting; resume it with 'rootloop resume'"
            )

    def release(self) -> None:
        self.stop_heartbeat()
        with self._db() as db:
            db.execute("DELETE FROM lease WHERE scope = ? AND token = ?", (self.scope, self.token))

    # -- heartbeat ------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        if self._beat is not None:
            return
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.ttl / 3):
                with contextlib.suppress(sqlite3.Error):
                    if not self.renew():
                        return  # lost: check() says so before the next side effect

        self._beat = threading.Thread(target=beat, name=f"lease {self.scope}", daemon=True)
        self._beat.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None

    @contextlib.contextmanager
    def held(self, wait: float = 0.0) -> Iterator[Lease]:
        """Hold the lease (with its heartbeat) for the block; give it back after."""
        self.acquire(wait)
        self.start_heartbeat()
        try:
            yield self
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.release()
