"""Moved to ``rootloop.analysis.schema`` (a pure parser that reasoning and the action
data types use too). This module re-exports it for one release."""

from rootloop.analysis.schema import (
    DATA_STATEMENTS,
    MIGRATION_PATH,
    diff_changes_schema,
    edit_changes_schema,
    edits_change_schema,
    looks_like_sql,
    schema_statements,
    sql_changes_schema,
)

__all__ = [
    "DATA_STATEMENTS",
    "MIGRATION_PATH",
    "diff_changes_schema",
    "edit_changes_schema",
    "edits_change_schema",
    "looks_like_sql",
    "schema_statements",
    "sql_changes_schema",
]
