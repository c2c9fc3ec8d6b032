"""One short-lived PostgreSQL connection per unit of work."""

from __future__ import annotations

import psycopg

CONNECT_TIMEOUT = 3
STATEMENT_TIMEOUT_MS = 3000


class DbUnavailable(Exception):
    """The database refused or did not answer a connection."""


def connect(dsn: str) -> psycopg.Connection:
    try:
        return psycopg.connect(
            dsn,
            connect_timeout=CONNECT_TIMEOUT,
            autocommit=True,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        )
    except psycopg.OperationalError as exc:
        raise DbUnavailable(" ".join(str(exc).split())) from exc
