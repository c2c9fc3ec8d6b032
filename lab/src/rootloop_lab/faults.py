"""Helper processes some faults need: ``python -m rootloop_lab.faults hold-lock DSN``.

``hold-lock`` is a reporting job that opens a transaction, locks the merchants
rows every payment updates, and then sits idle in that transaction — the
classic forgotten session. It runs until its backend is terminated.
"""

from __future__ import annotations

import sys
import time

import psycopg


def hold_lock(dsn: str) -> int:
    conn = psycopg.connect(dsn, application_name="reporting-job")
    conn.execute("SELECT id, balance_cents FROM merchants ORDER BY id FOR UPDATE")
    print("reporting-job: holding the merchants rows, idle in transaction", flush=True)
    while True:
        time.sleep(1)
        try:
            conn.pgconn.consume_input()  # notices a terminated backend without a query
        except psycopg.OperationalError:
            return 0
        if conn.pgconn.status != psycopg.pq.ConnStatus.OK:
            return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "hold-lock":
        print("usage: python -m rootloop_lab.faults hold-lock DSN", file=sys.stderr)
        return 2
    return hold_lock(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
