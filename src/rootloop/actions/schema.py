"""Recognising schema changes, so the schema gate can pause for a human."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

DDL = re.compile(
    r"\b(CREATE|ALTER|DROP|TRUNCATE|RENAME)\s+(TABLE|INDEX|COLUMN|SCHEMA|DATABASE|TYPE|VIEW|"
    r"SEQUENCE|CONSTRAINT|EXTENSION|UNIQUE\s+INDEX|MATERIALIZED\s+VIEW)\b|\bADD\s+COLUMN\b",
    re.I,
)
MIGRATION_PATH = re.compile(r"(^|/)(migrations?|alembic|db/migrate|schema)(/|\.sql$)|\.sql$", re.I)


def sql_changes_schema(sql: str) -> bool:
    return DDL.search(sql) is not None


def edits_change_schema(edits: Iterable[Any]) -> bool:
    """A code change is a schema change when it touches migrations or adds DDL."""
    for e in edits:
        if MIGRATION_PATH.search(e.path):
            return True
        if sql_changes_schema(e.replace) and not sql_changes_schema(e.search):
            return True
    return False


def diff_changes_schema(diff: str) -> bool:
    """Same test on a unified diff: a migration file, or an added line with DDL."""
    for line in diff.splitlines():
        if line.startswith(("+++ ", "--- ")):
            path = line[4:].strip().removeprefix("a/").removeprefix("b/")
            if path != "/dev/null" and MIGRATION_PATH.search(path):
                return True
        elif line.startswith("+") and sql_changes_schema(line[1:]):
            return True
    return False
