"""The lease: one investigation per service and environment, freed when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rootloop import killpoints
from rootloop.lease import Lease, LeaseHeld, LeaseLost


def test_second_holder_is_refused_with_the_first_named(tmp_path: Path) -> None:
    first = Lease(tmp_path, "payments-api", "lower", "run-1")
    second = Lease(tmp_path, "payments-api", "lower", "run-2")
    first.acquire()
    with pytest.raises(LeaseHeld) as caught:
        second.acquire()
    assert "run-1" in str(caught.value) and "payments-api@lower" in str(caught.value)
    assert caught.value.exit_code == 6
    first.check()  # still the holder


def test_other_service_or_environment_is_independent(tmp_path: Path) -> None:
    Lease(tmp_path, "payments-api", "lower", "run-1").acquire()
    Lease(tmp_path, "orders-api", "lower", "run-2").acquire()
    Lease(tmp_path, "payments-api", "staging", "run-3").acquire()


def test_released_lease_can_be_taken(tmp_path: Path) -> None:
    first = Lease(tmp_path, "svc", "lower", "run-1")
    first.acquire()
    first.release()
    second = Lease(tmp_path, "svc", "lower", "run-2")
    second.acquire()
    with pytest.raises(LeaseLost):
        first.check()


def test_expired_lease_is_taken_over_and_the_old_holder_stops(tmp_path: Path) -> None:
    first = Lease(tmp_path, "svc", "lower", "run-1", ttl=1.0)
    first.acquire()
    # the holder stalls past its expiry (no heartbeat): expire it in the store
    import sqlite3

    with sqlite3.connect(first.path) as db:
        db.execute("UPDATE lease SET expires_at = ?", (time.time() - 1,))
    with pytest.raises(LeaseLost):
        first.check()
    second = Lease(tmp_path, "svc", "lower", "run-2", ttl=60)
    second.acquire()
    assert not first.renew()  # the stalled holder cannot take it back by renewing
    with pytest.raises(LeaseLost):
        first.check()


def test_heartbeat_pushes_the_expiry_out(tmp_path: Path) -> None:
    lease = Lease(tmp_path, "svc", "lower", "run-1", ttl=1.5)
    with lease.held():
        first = lease.holder()
        assert first is not None
        deadline = time.monotonic() + 120  # a busy machine may delay the thread; no bound
        while time.monotonic() < deadline:
            now = lease.holder()
            if now is not None and now.expires_at > first.expires_at:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the heartbeat never renewed the lease")
    assert lease.holder() is None  # given back at the end of the block


def test_waiting_run_gets_the_lease_when_the_holder_gives_it_back(tmp_path: Path) -> None:
    import threading

    first = Lease(tmp_path, "svc", "lower", "run-1")
    first.acquire()
    timer = threading.Timer(0.5, first.release)
    timer.start()
    second = Lease(tmp_path, "svc", "lower", "run-2")
    second.acquire(wait=120, poll=0.1)
    second.check()
    timer.join()


def test_killed_holder_on_this_host_frees_the_lease_at_once(tmp_path: Path) -> None:
    """kill -9 runs no cleanup: the dead pid is what frees it, long before the ttl."""
    code = (
        "import sys, time; from pathlib import Path; from rootloop.lease import Lease; "
        "from rootloop import killpoints; "
        "Lease(Path(sys.argv[1]), 'svc', 'lower', 'dead-run', ttl=3600).acquire(); "
        "killpoints.hit('lease:held'); time.sleep(600)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        env={**os.environ, killpoints.ENV: "lease:held"},
    )
    assert proc.wait(timeout=120) == -signal.SIGKILL
    holder = Lease(tmp_path, "svc", "lower", "next-run").holder()
    assert holder is None
    Lease(tmp_path, "svc", "lower", "next-run").acquire()


def test_live_holder_in_another_process_is_respected(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from rootloop.lease import Lease; "
        "Lease(Path(sys.argv[1]), 'svc', 'lower', 'live-run', ttl=3600).acquire(); "
        "print('held', flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeld, match="live-run"):
            Lease(tmp_path, "svc", "lower", "other").acquire()
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_kill_point_hook_sees_every_name(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(killpoints, "hook", seen.append)
    killpoints.hit("phase:act:start")
    assert seen == ["phase:act:start"]


def test_rootloop_run_exits_6_while_another_run_holds_the_service(tmp_path: Path) -> None:
    map_path = tmp_path / "rootloop.yaml"
    map_path.write_text(
        "service: svc\nenvironment: lower\ndownstream:\n"
        "  - {name: web, type: http, skill: http-health, url: 'http://127.0.0.1:9/health'}\n"
    )
    state = tmp_path / "state"
    Lease(state, "svc", "lower", "the-first-run").acquire()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootloop.cli.main",
            "run",
            "-t",
            str(map_path),
            "--reasoner",
            "rules",
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 6, out
    assert "already being investigated by run the-first-run" in out and "Traceback" not in out
    assert not (state / "runs").exists()  # nothing was written for the refused run
