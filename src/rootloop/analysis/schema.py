"""Recognising schema changes, so the schema gate can pause for a human. Parse, don't grep.

SQL is parsed with PostgreSQL's own parser (``pglast``, libpg_query). A statement is
*data* only when it is one of a short list of kinds that cannot change a schema
(SELECT without INTO, INSERT, UPDATE, DELETE, MERGE, transaction control, SET …);
every other kind — DDL, GRANT/REVOKE, TRUNCATE, functions, views, triggers,
policies, DO blocks, anything new — is a schema change. Fail closed: text that
looks like schema SQL but does not parse counts as a schema change.

A code change (search-and-replace edits) is a schema change when:

* it edits a file whose path belongs to a migration or schema framework (Alembic,
  Django migrations, Rails ``db/migrate`` and ``db/schema.rb``, Prisma, Flyway,
  Liquibase, Sequelize/Knex/TypeORM/EF migrations, any ``.sql`` file that does
  not parse as data only …);
* the schema statements in its SQL — ``.sql`` text, or string literals of code
  (Python's own ``ast`` for ``.py``; quoted strings elsewhere) — differ between
  before and after: adding, removing or editing one (``ADD COLUMN`` → ``DROP COLUMN``);
* the lines that declare schema in an ORM or migration DSL differ (SQLAlchemy
  ``Column``/``mapped_column``/``Table``/``create_all``, Django ``models.*Field``,
  Alembic ``op.*``, Rails ``add_column``…, Liquibase ``<changeSet>``, TypeORM and
  JPA ``@Column``/``@Entity``, GORM ``AutoMigrate``, EF ``migrationBuilder``…).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pglast
from pglast.parser import ParseError
from pglast.stream import RawStream

#: statement kinds that read or write rows but cannot change a schema
DATA_STATEMENTS = frozenset(
    {
        "SelectStmt",
        "InsertStmt",
        "UpdateStmt",
        "DeleteStmt",
        "MergeStmt",
        "TransactionStmt",
        "VariableSetStmt",
        "VariableShowStmt",
        "ExplainStmt",
        "CopyStmt",
        "LockStmt",
        "PrepareStmt",
        "ExecuteStmt",
        "DeallocateStmt",
        "ListenStmt",
        "NotifyStmt",
        "UnlistenStmt",
        "CheckPointStmt",
        "DiscardStmt",
        "VacuumStmt",
        "DeclareCursorStmt",
        "FetchStmt",
        "ClosePortalStmt",
        "PLAssignStmt",
    }
)

#: text that starts like an SQL statement (after whitespace and comments)
_SQL_START = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*"
    r"(create|alter|drop|truncate|grant|revoke|comment|rename|reindex|cluster|security|"
    r"refresh|import|do|call|select|insert|update|delete|merge|with|begin|commit|rollback|"
    r"start|set|reset|show|copy|lock|explain|vacuum|analyze|declare|prepare|execute|values|"
    r"table|listen|notify)\b",
    re.I | re.S,
)
#: schema words in text that did not parse: enough to fail closed
_SCHEMA_WORDS = re.compile(
    r"\b(create|alter|drop|truncate|grant|revoke|rename|comment\s+on|reindex|"
    r"add\s+column|add\s+constraint|security\s+label|refresh\s+materialized)\b",
    re.I,
)
_PARAMS = re.compile(r"%\(\w+\)s|%s|(?<=[\s,(=])(?::\w+|\?)(?=[\s,);]|$)|\{[^{}]*\}")

#: paths of migration and schema frameworks: any edit there is a schema change
MIGRATION_PATH = re.compile(
    r"(^|/)("
    r"migrations?|alembic|db/migrate|db/migration|db/schema|liquibase|flyway|"
    r"changelogs?|prisma|dbmate|sqitch|deploy/sql|sql/migrations"
    r")/"
    r"|(^|/)(schema\.rb|structure\.sql|schema\.prisma|[^/]*\.prisma|alembic\.ini|"
    r"db\.changelog[^/]*|[^/]*changelog[^/]*\.(xml|ya?ml|json|sql)|"
    r"V\d+(_\d+)*__[^/]*\.(sql|py|java|kt)|R__[^/]*\.sql|U\d+(_\d+)*__[^/]*\.sql)$",
    re.I,
)

_ALEMBIC_OPS = (
    "add_column|drop_column|alter_column|create_table|drop_table|rename_table|create_index|"
    "drop_index|create_foreign_key|create_unique_constraint|create_check_constraint|"
    "create_primary_key|create_exclude_constraint|drop_constraint|execute|batch_alter_table|"
    "create_table_comment|drop_table_comment|bulk_insert"
)
#: lines that declare schema in an ORM or migration DSL (compared before/after an edit)
_DSL_LINE = re.compile(
    r"("
    # SQLAlchemy, Alembic
    r"\b(mapped_column|Column|ForeignKey|ForeignKeyConstraint|UniqueConstraint|"
    r"CheckConstraint|PrimaryKeyConstraint)\s*\("
    r"|\b(sa|sqlalchemy|db)\.(Table|Index|Enum|Sequence|Computed|Identity|Column)\s*\("
    r"|\bTable\(\s*[\"'][^\"']+[\"']\s*,\s*[\w.]*metadata|\bIndex\(\s*[\"']"
    r"|__tablename__|__table_args__|\bmetadata\.(create_all|drop_all)\b"
    r"|\b(create_all|drop_all)\s*\("
    rf"|\b(op|batch_op)\.({_ALEMBIC_OPS})\s*\("
    # Django
    r"|\bmodels\.[A-Za-z]*(Field|Key|Model|Index|Constraint)\b|\bmigrations\.[A-Za-z]+\s*\("
    r"|\b(db_table|db_index|db_column|unique_together|index_together)\s*="
    # Rails / ActiveRecord
    r"|\b(create_table|drop_table|rename_table|change_table|add_column|remove_column|"
    r"change_column|change_column_null|change_column_default|rename_column|add_index|"
    r"remove_index|add_reference|remove_reference|add_foreign_key|remove_foreign_key|"
    r"add_timestamps|create_join_table)\b"
    r"|ActiveRecord::(Migration|Schema)"
    # Liquibase, goose, dbmate
    r"|<\s*(changeSet|createTable|addColumn|dropColumn|dropTable|modifyDataType|"
    r"createIndex|renameColumn|addForeignKeyConstraint)\b|databaseChangeLog|changeSet\s*:"
    r"|\+goose\s+(Up|Down)|migrate:(up|down)"
    # TypeORM, JPA/Hibernate, Sequelize, Knex, GORM, EF Core, Ecto, Diesel
    r"|@(Entity|Table|Column|PrimaryGeneratedColumn|PrimaryColumn|JoinColumn|JoinTable|"
    r"CreateDateColumn|UpdateDateColumn|DeleteDateColumn)\b"
    r"|\bsynchronize\s*:|hbm2ddl|ddl-auto"
    r"|\bqueryInterface\.\w+\s*\(|\bsequelize\.sync\s*\(|\bDataTypes\.\w+"
    r"|\bknex\.schema\b|\.(createTable|alterTable|dropTable|createTableIfNotExists)\s*\("
    r"|\bAutoMigrate\s*\(|\bmigrationBuilder\.\w+|\bmodelBuilder\.Entity\b"
    r"|\b(create|alter)\s+table\s*\(|diesel::table!"
    r")",
    re.M,
)
#: a schema statement's opening words: what a string that does not parse must show to
#: count as schema, and what joined string pieces ("DROP " + "TABLE t") reveal
_SCHEMA_OPENING = re.compile(
    r"\b(?:(?:create|alter|drop)\s+(?:or\s+replace\s+)?(?:(?:temp|temporary|unlogged|unique|"
    r"materialized|global|local|recursive|constraint|event|foreign|default|procedural|"
    r"trusted)\s+)*(?:table|index|view|function|procedure|trigger|schema|database|type|"
    r"sequence|extension|policy|role|user|group|column|constraint|domain|rule|aggregate|"
    r"operator|cast|collation|publication|subscription|server|language|statistics|"
    r"tablespace|conversion|access\s+method|privileges|data\s+wrapper|text\s+search)"
    r"|truncate\s+(?:table\s+)?[\w\"]|(?:grant|revoke)\s+\w|comment\s+on\s+\w"
    r"|add\s+column|drop\s+column|rename\s+(?:column|to)|security\s+label"
    r"|refresh\s+materialized)",
    re.I,
)
_QUOTED = re.compile(
    r'"""(.*?)"""|\'\'\'(.*?)\'\'\'|`((?:[^`\\]|\\.)*)`|"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\'',
    re.S,
)


# -- SQL ----------------------------------------------------------------------------------


def looks_like_sql(text: str) -> bool:
    return _SQL_START.match(text) is not None


def _statements(sql: str) -> list[Any] | None:
    """Parsed statements, or None when PostgreSQL's parser rejects the text."""
    for candidate in (sql, _PARAMS.sub("$1", sql)):
        try:
            return list(pglast.parse_sql(candidate))
        except (ParseError, ValueError, RecursionError):
            continue
    return None


def _is_data(raw_stmt: Any) -> bool:
    stmt = raw_stmt.stmt
    kind = type(stmt).__name__
    if kind not in DATA_STATEMENTS:
        return False
    if kind == "SelectStmt" and getattr(stmt, "intoClause", None) is not None:
        return False  # SELECT … INTO creates a table
    if kind == "ExplainStmt":
        return _is_data(type("R", (), {"stmt": stmt.query})())
    relation = getattr(stmt, "relation", None)
    # writing pg_catalog by hand is changing the schema
    return relation is None or not _is_catalog(relation)


def _is_catalog(relation: Any) -> bool:
    schema = str(getattr(relation, "schemaname", None) or "").lower()
    name = str(getattr(relation, "relname", None) or "").lower()
    return schema in ("pg_catalog", "information_schema") or name.startswith("pg_")


def schema_statements(sql: str) -> list[str] | None:
    """The schema-changing statements of ``sql``, normalised; None when it does not parse."""
    parsed = _statements(sql)
    if parsed is None:
        return None
    out = []
    for raw in parsed:
        if _is_data(raw):
            continue
        try:
            out.append(RawStream()(raw.stmt))
        except Exception:  # deparse is best effort: the kind alone still counts
            out.append(type(raw.stmt).__name__)
    return out


def sql_changes_schema(sql: str) -> bool:
    """Does this SQL change a schema? Text that is not SQL does not; unparsable schema does."""
    if not looks_like_sql(sql) and not _SCHEMA_WORDS.search(sql):
        return False
    found = schema_statements(sql)
    if found is None:
        return _SCHEMA_OPENING.search(sql) is not None
    return bool(found)


# -- code ---------------------------------------------------------------------------------


def _python_strings(text: str) -> list[str] | None:
    """String constants of Python source (f-string holes become a placeholder)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            value = node.value
            out.append(value.decode("latin-1") if isinstance(value, bytes) else value)
        elif isinstance(node, ast.JoinedStr):
            out.append(
                "".join(
                    v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "x"
                    for v in node.values
                )
            )
    return out


def _quoted_strings(text: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(text)]


def _sql_fingerprints(text: str, path: str) -> tuple[Counter[str], bool]:
    """Schema statements in the text's SQL, and whether some SQL-looking text did not parse
    while reading like schema (the caller fails closed on that)."""
    found: Counter[str] = Counter()
    if path.lower().endswith(".sql"):
        pieces = [text]
    else:
        strings = _python_strings(text) if path.endswith((".py", ".pyi")) else None
        pieces = strings if strings is not None else _quoted_strings(text)
        # a statement split over pieces ("DROP " + "TABLE t"): its opening words, joined
        found.update(
            f"opening:{' '.join(m.split()).lower()}"
            for m in _SCHEMA_OPENING.findall(" ".join(pieces))
        )
        # SQL written outside quotes (heredocs, raw blocks, a fragment of a literal)
        pieces = [*pieces, *_SQL_LINES.findall(text)]
    unparsed = False
    for piece in pieces:
        if not piece.strip() or not (looks_like_sql(piece) or _SCHEMA_WORDS.search(piece)):
            continue
        stmts = schema_statements(piece)
        if stmts is None:
            if _SCHEMA_OPENING.search(piece):
                unparsed = True
                found[f"unparsed:{' '.join(piece.split()).lower()}"] += 1
            continue
        found.update(stmts)
    return found, unparsed


_SQL_LINES = re.compile(
    r"^[ \t]*((?:create|alter|drop|truncate|grant|revoke|comment\s+on)\b[^\n]*)", re.I | re.M
)


def _dsl_lines(text: str) -> Counter[str]:
    return Counter(" ".join(line.split()) for line in text.splitlines() if _DSL_LINE.search(line))


def edit_changes_schema(path: str, search: str, replace: str) -> str | None:
    """Why one search-and-replace edit is a schema change, or None."""
    norm = path.replace("\\", "/")
    if MIGRATION_PATH.search(norm):
        return f"{path} belongs to a migration or schema framework"
    before, before_bad = _sql_fingerprints(search, norm)
    after, after_bad = _sql_fingerprints(replace, norm)
    if before != after:
        return f"{path}: the schema statements in its SQL change"
    if (before_bad or after_bad) and search != replace:
        return f"{path}: SQL that reads like schema does not parse (failing closed)"
    if norm.lower().endswith(".sql") and search != replace:
        for text in (search, replace):
            if text.strip() and _statements(text) is None:
                return f"{path}: an SQL fragment that does not parse (failing closed)"
    if _dsl_lines(search) != _dsl_lines(replace):
        return f"{path}: the lines that declare a schema (ORM or migration DSL) change"
    return None


def edits_change_schema(edits: Iterable[Any]) -> bool:
    """A code change is a schema change when any of its edits is one."""
    return any(edit_changes_schema(e.path, e.search, e.replace) for e in edits)


def diff_changes_schema(diff: str) -> bool:
    """The same test on a unified diff: per file, the removed lines against the added."""
    path = ""
    removed: list[str] = []
    added: list[str] = []
    changed = False

    def flush() -> bool:
        return (
            bool(path)
            and edit_changes_schema(path, "\n".join(removed), "\n".join(added)) is not None
        )

    for line in diff.splitlines():
        if line.startswith("--- "):
            changed = changed or flush()
            removed, added = [], []
            old = line[4:].strip().removeprefix("a/")
            path = "" if old == "/dev/null" else old
        elif line.startswith("+++ "):
            new = line[4:].strip().removeprefix("b/")
            path = new if new != "/dev/null" else path
        elif line.startswith("+"):
            added.append(line[1:])
        elif line.startswith("-"):
            removed.append(line[1:])
    return changed or flush()
