"""The settlement batch: settles payments in state 'settling', BATCH_SIZE at a time.

Each payment's settlement document is rendered up front and kept until the
batch ends; each item is settled on its own connection.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from app import db

log = logging.getLogger("batch")

BATCH_SIZE = 1000
POOL_MAX_SIZE = None  # connections used to settle a batch; None: one per item
DOCUMENT_BYTES = 640 * 1024
SETTLE_SECONDS = 0.5


def render_document(payment_id: int, amount_cents: int) -> bytes:
    line = f"SETTLEMENT {payment_id:>12} {amount_cents:>12}".ljust(64).encode()
    return line * (DOCUMENT_BYTES // 64)


def pool_size(items: int) -> int:
    return items if POOL_MAX_SIZE is None else max(1, min(POOL_MAX_SIZE, items))


def run_once(dsn: str) -> int:
    with db.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT id, amount_cents FROM payments WHERE status = 'settling' ORDER BY id LIMIT %s",
            (BATCH_SIZE,),
        ).fetchall()
    if not rows:
        return 0
    documents = [render_document(pid, amount) for pid, amount in rows]
    checksum = sum(doc[0] for doc in documents)
    log.info("batch: settling %d payments (checksum %d)", len(rows), checksum)
    local = threading.local()
    opened: list = []
    lock = threading.Lock()

    def settle(payment_id: int) -> bool:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = db.connect(dsn)
            with lock:
                opened.append(conn)
        conn.execute("UPDATE payments SET status = 'settled' WHERE id = %s", (payment_id,))
        conn.execute("SELECT pg_sleep(%s)", (SETTLE_SECONDS,))
        return True

    failed = 0
    try:
        with ThreadPoolExecutor(max_workers=pool_size(len(rows))) as ex:
            for fut in [ex.submit(settle, pid) for pid, _ in rows]:
                try:
                    fut.result()
                except db.DbUnavailable as exc:
                    failed += 1
                    if failed == 1:
                        log.error("batch: DB connection timeout: %s", exc)
    finally:
        for conn in opened:
            conn.close()
    if failed:
        log.error(
            "batch: %d of %d payments not settled: cannot get a DB connection", failed, len(rows)
        )
    del documents
    return len(rows) - failed


def loop(dsn: str, interval: float, stop: threading.Event) -> None:
    """Drain the backlog batch after batch; wait ``interval`` when there is nothing to do."""
    while not stop.is_set():
        pause = interval
        try:
            if run_once(dsn):
                pause = 0.1
        except db.DbUnavailable as exc:
            log.error("batch: DB connection timeout: %s", exc)
        except Exception:
            log.exception("batch: failed")
        stop.wait(pause)
