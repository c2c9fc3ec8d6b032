"""The schema gate: SQL parsed by PostgreSQL's parser, frameworks recognised, fail closed.

Each case is a patch (path, before, after) as rootloop's code fixes write them, asked
through the gatekeeper: a schema change must pause; the few controls must not.
"""

from __future__ import annotations

import pytest
from tests.unit.gate_support import base_map, decide, load

from rootloop.actions.schema import diff_changes_schema, edit_changes_schema, sql_changes_schema


def patch(path: str, before: str, after: str) -> dict[str, object]:
    """An apply-patch action on the service, as rootloop's code fixes write them."""
    return {
        "kind": "apply-patch",
        "target": "payments-api",
        "title": "fix",
        "edits": [{"path": path, "search": before, "replace": after}],
    }


SCHEMA_SQL = [
    "ALTER TABLE payments ADD COLUMN note text",
    "alter table payments drop column amount",
    "CREATE OR REPLACE VIEW v AS SELECT 1",
    "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
    "CREATE TRIGGER t AFTER INSERT ON payments FOR EACH ROW EXECUTE FUNCTION f()",
    "CREATE UNLOGGED TABLE scratch (id int)",
    "TRUNCATE payments",
    "TRUNCATE TABLE payments RESTART IDENTITY CASCADE",
    "GRANT SELECT ON payments TO reporting",
    "REVOKE ALL ON payments FROM public",
    "GRANT reporting TO app",
    "ALTER TABLE payments RENAME COLUMN amount TO amount_cents",
    "CREATE INDEX CONCURRENTLY ix ON payments (merchant_id)",
    "DROP INDEX ix",
    "CREATE POLICY p ON payments USING (merchant_id = 1)",
    "ALTER POLICY p ON payments USING (true)",
    "DROP POLICY p ON payments",
    "ALTER TABLE payments ENABLE ROW LEVEL SECURITY",
    "COMMENT ON TABLE payments IS 'x'",
    "CREATE EXTENSION pgcrypto",
    "CREATE TYPE mood AS ENUM ('a', 'b')",
    "ALTER TYPE mood ADD VALUE 'c'",
    "DO $$ BEGIN EXECUTE 'DROP TABLE payments'; END $$",
    "SELECT * INTO payments_copy FROM payments",
    "CREATE TABLE payments_copy AS SELECT * FROM payments",
    "CREATE MATERIALIZED VIEW mv AS SELECT 1",
    "REFRESH MATERIALIZED VIEW mv",
    "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO reporting",
    "CREATE ROLE reporting",
    "ALTER ROLE app SET statement_timeout = 0",
    "CREATE SCHEMA billing",
    "CREATE SEQUENCE s",
    "CREATE RULE r AS ON INSERT TO payments DO INSTEAD NOTHING",
    "ALTER TABLE payments ALTER COLUMN amount TYPE numeric",
    "ALTER TABLE payments ADD CONSTRAINT c CHECK (amount > 0)",
    "DROP TABLE IF EXISTS payments",
    "CREATE DOMAIN cents AS bigint",
    "ALTER TABLE payments OWNER TO someone",
    "ALTER TABLE payments SET SCHEMA archive",
    "CREATE PROCEDURE p() LANGUAGE sql AS $$ SELECT 1 $$",
    "-- a comment first\nALTER TABLE payments ADD COLUMN c int",
    "/* block */ DROP VIEW v",
    "SELECT 1; DROP TABLE payments",
    "BEGIN; ALTER TABLE t ADD COLUMN c int; COMMIT;",
    "ALTER TABLE payments ADD COLUMN",  # schema words that do not parse: fail closed
    "UPDATE pg_catalog.pg_attribute SET attnotnull = false",  # the catalog by hand
    "DELETE FROM pg_class WHERE relname = 'x'",
    "ALTER SYSTEM SET max_connections = 10",
    "CALL migrate_everything()",
    "IMPORT FOREIGN SCHEMA public FROM SERVER s INTO local",
]
DATA_SQL = [
    "SELECT * FROM payments WHERE id = 1",
    "INSERT INTO payments (amount) VALUES (%s)",
    "UPDATE payments SET amount = 1 WHERE id = :id",
    "DELETE FROM payments WHERE id = $1",
    "WITH x AS (SELECT 1) SELECT * FROM x",
    "SELECT pg_terminate_backend(42)",
    "SET statement_timeout = '5s'",
    "allkeys-lru",
    "v2",
]


@pytest.mark.parametrize("sql", SCHEMA_SQL)
def test_schema_sql_is_a_schema_change(sql):
    assert sql_changes_schema(sql)


@pytest.mark.parametrize("sql", DATA_SQL)
def test_data_sql_is_not(sql):
    assert not sql_changes_schema(sql)


# (path, before, after): each one must pause
SCHEMA_EDITS = [
    # editing an existing DDL statement in a string of code
    (
        "app/db.py",
        'cur.execute("ALTER TABLE payments ADD COLUMN note text")',
        'cur.execute("ALTER TABLE payments DROP COLUMN amount")',
    ),
    ("app/db.py", "x = 1", 'cur.execute("""\n  TRUNCATE payments\n""")'),
    ("app/db.py", "x = 1", 'sql = ("ALTER TABLE payments "\n       "DROP COLUMN amount")'),
    ("app/db.py", "x = 1", 'cur.execute(f"ALTER TABLE {table} DROP COLUMN amount")'),
    ("app/db.py", "x = 1", "q = 'GRANT ALL ON payments TO public'"),
    ("app/db.py", 'cur.execute("CREATE INDEX ix ON t (a)")', "pass"),  # removing one
    ("app/store.go", "x := 1", "db.Exec(`CREATE OR REPLACE VIEW v AS SELECT 1`)"),
    (
        "src/Repo.java",
        "int x;",
        'jdbc.execute("CREATE TRIGGER t BEFORE UPDATE ON p EXECUTE FUNCTION f()");',
    ),
    ("src/repo.ts", "let x;", "await db.query('CREATE UNLOGGED TABLE scratch (id int)')"),
    ("src/repo.rb", "x = 1", 'conn.exec("REVOKE SELECT ON payments FROM app")'),
    ("app/db.py", "x = 1", 'q = "DROP " + "TABLE payments"'),  # split across pieces
    ("app/db.py", "x = 1", 'cur.execute(b"TRUNCATE payments")'),  # a bytes literal
    ("src/db.js", "let q;", "let q = 'ALTER ' + `TABLE payments ` + 'DROP COLUMN amount';"),
    ("app/db.py", "x = 1", 'cur.execute("""\nCREATE TABLE IF NOT EXISTS audit (\n  id int\n""")'),
    # SQL files
    ("db/queries/cleanup.sql", "SELECT 1;", "TRUNCATE payments;"),
    ("sql/report.sql", "  amount int,", "  amount bigint,"),  # a DDL fragment: fail closed
    ("sql/views.sql", "", "CREATE OR REPLACE VIEW v AS SELECT 1;"),
    # frameworks by path
    ("alembic/versions/0002_note.py", "", "def upgrade():\n    pass\n"),
    ("app/migrations/0003_auto.py", "", "x = 1"),
    ("prisma/schema.prisma", "  amount Int", "  amount BigInt"),
    ("api/schema.prisma", "", "model Payment {\n  id Int @id\n}"),
    ("db/schema.rb", "", 't.integer "note"'),
    ("db/migrate/20261201_add_note.rb", "", "class AddNote < ActiveRecord::Migration[7.1]\nend"),
    ("src/main/resources/db/migration/V2__add_note.sql", "", "SELECT 1;"),
    ("db/changelog/db.changelog-master.xml", "", "<databaseChangeLog/>"),
    ("liquibase/changes.yaml", "", "- changeSet: {id: 1}"),
    ("resources/changelog-2.xml", "", "<changeSet id='2'/>"),
    # frameworks by content, anywhere
    ("app/models.py", "    name = Column(String(50))", "    name = Column(String(100))"),
    ("app/models.py", "", "    note = mapped_column(Text)"),
    ("app/models.py", "", "    note = models.TextField(null=True)"),
    (
        "shop/models.py",
        "    amount = models.IntegerField()",
        "    amount = models.BigIntegerField()",
    ),
    ("app/jobs/fix.py", "pass", 'op.add_column("payments", sa.Column("note", sa.Text()))'),
    ("app/startup.py", "pass", "Base.metadata.create_all(engine)"),
    ("app/startup.py", "pass", "metadata.drop_all(engine)"),
    ("app/boot.rb", "x = 1", "add_column :payments, :note, :text"),
    ("src/payment.entity.ts", "", "  @Column()\n  note: string;"),
    ("src/Payment.java", "", '  @Column(name = "note")\n  private String note;'),
    ("src/migrate.js", "", "await queryInterface.addColumn('payments', 'note', DataTypes.TEXT)"),
    ("src/db.js", "", "knex.schema.createTable('t', t => {})"),
    ("cmd/main.go", "", "db.AutoMigrate(&Payment{})"),
    ("Data/Init.cs", "", 'migrationBuilder.AddColumn<string>(name: "note", table: "payments");'),
    ("config/typeorm.ts", "synchronize: false", "synchronize: true"),
    ("app/models.py", '    __tablename__ = "payments"', '    __tablename__ = "payments_v2"'),
]


@pytest.mark.parametrize(
    ("path", "before", "after"),
    SCHEMA_EDITS,
    ids=[e[0] + f"#{i}" for i, e in enumerate(SCHEMA_EDITS)],
)
def test_schema_edits_pause_through_the_gate(tmp_path, path, before, after):
    assert edit_changes_schema(path, before, after)
    d = decide(load(tmp_path, base_map()), patch(path, before, after))
    assert (d.decision, d.gate) == ("approval", "schema"), d.reason


CODE_EDITS = [
    ("app/batch.py", "BATCH_SIZE = 1000", "BATCH_SIZE = 100"),
    ("app/db.py", 'q = "SELECT a FROM payments"', 'q = "SELECT a, b FROM payments"'),
    ("sql/report.sql", "SELECT 1;", "SELECT 2;"),
    ("app/schemas/payment.py", "amount: int", "amount: float"),  # pydantic, not a database
    ("app/receipts.py", "payment['merchant_name']", "payment.get('merchant_name', '')"),
    (
        "app/models.py",
        "    name = Column(String(50))\n    x = 1",
        "    name = Column(String(50))\n    x = 2",
    ),
    ("app/jobs.py", "x = 1", 'log.info("Create payment %s failed", payment_id)'),
    ("app/jobs.py", 'cur.execute("SELECT 1")', 'cur.execute("SELECT 2")'),
    ("app/cli.py", 't = Table("runs")', 't = Table("runs", "status")'),  # rich, not SQLAlchemy
    ("web/color.ts", "", "enum Color { Red }"),
    ("app/calc.py", "", "import operator as op\nop.add(1, 2)"),
]


@pytest.mark.parametrize(("path", "before", "after"), CODE_EDITS)
def test_ordinary_code_edits_do_not_pause(tmp_path, path, before, after):
    assert edit_changes_schema(path, before, after) is None
    assert decide(load(tmp_path, base_map()), patch(path, before, after)).allowed


def test_a_diff_that_edits_ddl_is_a_schema_change():
    diff = (
        "--- a/app/db.py\n+++ b/app/db.py\n@@ -1 +1 @@\n"
        '-cur.execute("ALTER TABLE p ADD COLUMN note text")\n'
        '+cur.execute("ALTER TABLE p DROP COLUMN amount")\n'
    )
    assert diff_changes_schema(diff)
    plain = "--- a/app/x.py\n+++ b/app/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    assert not diff_changes_schema(plain)


@pytest.mark.parametrize(
    "action",
    [
        {
            "kind": "set-env",
            "target": "payments-api",
            "cluster": "staging",
            "service": "payments-api",
            "name": "BOOT_SQL",
            "value": "DROP TABLE payments",
        },
        {"kind": "run-migration", "target": "postgresql", "name": "n", "sql": "SELECT 1"},
    ],
)
def test_other_actions_carrying_schema_pause(tmp_path, action):
    d = decide(load(tmp_path, base_map()), action)
    assert (d.decision, d.gate) == ("approval", "schema")
