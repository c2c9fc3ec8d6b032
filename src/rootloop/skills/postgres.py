"""The ``postgres`` skill: connections, long and stuck sessions, lock chains, slow SQL, schema.

Read-only: one short-lived connection per check, opened with a connect timeout,
``default_transaction_read_only`` and a server-side ``statement_timeout``, and
closed in a ``finally`` so a cancelled sweep leaves no session behind. Who holds
the connections is the most useful answer it gives: when one application holds
a large share of ``max_connections`` it is named a suspect, so the reasoner can
blame e.g. ``lambda-worker`` two hops away from the service that shows errors.
The DSN never appears in a finding: only ``host:port/db``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import class_row
from pydantic import Field, ValidationInfo, field_validator, model_validator

from rootloop.models import Evidence, Finding, Signal, Status, Suspect, worst
from rootloop.models.nodes import Node, SkillSettings
from rootloop.skills import verdicts
from rootloop.skills.base import BaseSkill, CheckContext
from rootloop.skills.verdicts import Rule, Value

APP_NAME = "rootloop"
_OURS = {APP_NAME, "rootloop-action"}
_MARK = "/* rootloop:postgres */"  # our statements carry it, so they are left out of the stats
_FULL = ("too many clients", "remaining connection slots are reserved", "53300")
_AUTH = ("password authentication failed", "no password supplied", "28P01", "28000")


class PostgresSettings(SkillSettings):
    dsn: str = Field(
        default="",
        description="libpq URL or conninfo; write it as ${PG_DSN} in the map. Unset: "
        "host=<node name>, the rest from libpq's PG* environment variables",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_host(cls, data: Any, info: ValidationInfo) -> Any:
        node = (info.context or {}).get("node")
        if isinstance(data, dict) and not data.get("dsn") and node:
            return {**data, "dsn": f"host={node}"}
        return data

    connect_timeout: float = Field(default=3.0, gt=0, le=60)
    connections_warn_ratio: float = Field(default=0.75, gt=0, le=1)
    connections_critical_ratio: float = Field(default=0.9, gt=0, le=1)
    app_share_suspect: float = Field(
        default=0.5, gt=0, le=1, description="share of max_connections that makes an app a suspect"
    )
    long_query_s: float = Field(default=30.0, ge=0)
    idle_in_transaction_s: float = Field(default=30.0, ge=0)
    long_transaction_s: float = Field(default=300.0, ge=0)
    blocked_min_s: float = Field(
        default=1.0, ge=0, description="lock waits shorter than this are normal"
    )
    lock_samples: int = Field(
        default=4,
        ge=1,
        le=20,
        description="when a session sits idle in a transaction or waits on a lock, read "
        "the lock waits this many times and report the worst reading",
    )
    lock_sample_interval_s: float = Field(default=0.5, ge=0, le=5)
    slow_statement_ms: float = Field(default=1000.0, ge=0)
    top_statements: int = Field(default=5, ge=0, le=50)
    expect_schema: dict[str, list[str]] = Field(
        default_factory=dict, description="{table or schema.table: [columns]} that must exist"
    )
    default_schema: str = "public"

    @field_validator("connections_critical_ratio")
    @classmethod
    def _crit_above_warn(cls, v: float, info: ValidationInfo) -> float:
        warn = info.data.get("connections_warn_ratio")
        if warn is not None and v < warn:
            raise ValueError("must be >= connections_warn_ratio")
        return v


@dataclass
class Session:
    """One row of pg_stat_activity, with the ages PostgreSQL computed."""

    pid: int
    usename: str | None
    application_name: str
    client_addr: str | None
    state: str | None
    backend_start: datetime | None
    xact_start: datetime | None
    query_start: datetime | None
    xact_age_s: float | None
    query_age_s: float | None
    state_age_s: float | None
    wait_event_type: str | None
    query: str
    blocked_by: list[int] = field(default_factory=list)

    @property
    def who(self) -> str:
        return self.application_name or f"(no application_name) {self.client_addr or 'local'}"

    @property
    def idle_in_tx(self) -> bool:
        return (self.state or "").startswith("idle in transaction")


@dataclass
class Statement:
    calls: int
    mean_ms: float
    total_ms: float
    rows: int
    query: str


@dataclass
class ServerInfo:
    max_connections: int
    reserved: int
    own_pid: int
    database: str


_SERVER = f"""{_MARK}
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved,
       pg_backend_pid() AS own_pid, current_database() AS database"""

_ACTIVITY = f"""{_MARK}
SELECT pid, usename::text, coalesce(application_name, '') AS application_name,
       host(client_addr) AS client_addr, state, backend_start, xact_start, query_start,
       extract(epoch FROM now() - xact_start)::float8 AS xact_age_s,
       extract(epoch FROM now() - query_start)::float8 AS query_age_s,
       extract(epoch FROM now() - state_change)::float8 AS state_age_s,
       wait_event_type, left(coalesce(query, ''), 2000) AS query,
       pg_blocking_pids(pid) AS blocked_by
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"""

_HAS_PGSS = f"{_MARK} SELECT to_regclass('pg_stat_statements') IS NOT NULL"

_STATEMENTS = f"""{_MARK}
SELECT calls, mean_exec_time::float8 AS mean_ms, total_exec_time::float8 AS total_ms, rows,
       left(query, 1000) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT LIKE '%%rootloop:postgres%%'
ORDER BY mean_exec_time DESC LIMIT %s"""

_COLUMNS = f"""{_MARK}
SELECT n.nspname, c.relname, a.attname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname = ANY(%s)"""


@dataclass
class _Report:
    """Accumulates one check's verdicts; ``finish`` turns them into a Finding."""

    statuses: list[Status] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    started: list[datetime] = field(default_factory=list)

    def signal(self, name: str, value: Value, *, unit: str = "") -> None:
        """Report a measurement that is not judged (context for a reader or a reasoner)."""
        self.signals.append(Signal(name=name, value=value, unit=unit))
        self.statuses.append(Status.OK)

    def measure(self, name: str, value: Value, s: PostgresSettings, **facts: Value) -> Status:
        """Report a signal judged by its rule in ``RULES``; returns its status."""
        return self.judge(RULES[name], value, s, **facts)

    def judge(self, rule: Rule, value: Value, s: PostgresSettings, **facts: Value) -> Status:
        """Report a signal judged by ``rule`` (one made for this check, e.g. per role)."""
        verdict = verdicts.assess((rule,), {rule.name: value}, s, facts)
        self.signals.extend(verdict.signals)
        self.statuses.extend(verdict.statuses)
        return verdict.status

    def bad(self, note: str, since: datetime | None = None) -> None:
        """Say why a judged signal is bad (and since when); its status is the signal's."""
        self.notes.append(note)
        if since is not None:
            self.started.append(since)

    def suspect(self, node: str, reason: str, weight: float) -> None:
        for i, s in enumerate(self.suspects):
            if s.node == node:
                if weight > s.weight:
                    self.suspects[i] = Suspect(node=node, reason=reason, weight=weight)
                return
        self.suspects.append(Suspect(node=node, reason=reason, weight=min(1.0, weight)))


#: the judged signals of a database (see ``rootloop.skills.verdicts``); a role's or a
#: database's CONNECTION LIMIT is a rule made per row (``_connection_limits``)
RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("connections_used"),
        Rule("connections_max"),
        Rule(
            "connections_used_ratio",
            "above",
            warn="connections_warn_ratio",
            crit="connections_critical_ratio",
            show="crit",
        ),
        Rule("blocked_sessions", "flag", severity=Status.CRITICAL, warn=0),
        # idle in a transaction past the threshold: degraded; critical when one of those
        # sessions holds a lock another session waits for
        Rule("idle_in_transaction", "flag", crit_on="idle_blocks", warn="idle_in_transaction_s"),
        Rule("long_running_queries", "flag", warn="long_query_s"),
        Rule(
            "longest_transaction_s",
            "above",
            warn="long_transaction_s",
            unit="s",
            when="in_transaction",
        ),
        Rule(
            "slowest_statement_mean_ms",
            "above",
            warn="slow_statement_ms",
            unit="ms",
            when="has_statements",
        ),
        Rule("schema_mismatches", "flag", severity=Status.CRITICAL, warn=0),
    )
}


class PostgresSkill(BaseSkill):
    """Checks one PostgreSQL database (the one the DSN names)."""

    name = "postgres"
    Settings = PostgresSettings
    default_timeout = 10.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s = node.settings
        assert isinstance(s, PostgresSettings)
        where = describe_dsn(s.dsn)
        stmt_ms = max(500, int(node.timeout * 1000))
        try:
            conn = await psycopg.AsyncConnection.connect(
                s.dsn,
                autocommit=True,
                connect_timeout=max(1, round(s.connect_timeout)),
                application_name=APP_NAME,
                options=f"-c default_transaction_read_only=on -c statement_timeout={stmt_ms}",
            )
        except psycopg.Error as exc:
            return self._connect_failed(node, where, exc, ctx, s)
        try:
            report = await self._inspect(conn, s, ctx)
        except psycopg.Error as exc:
            text = ctx.redactor.text(f"{type(exc).__name__}: {exc}")
            return self.finding(
                node, Status.UNKNOWN, f"{where}: query failed: {text}"[:500], error=text[:500]
            )
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
        return self._finish(node, where, report)

    # -- connecting -------------------------------------------------------------
    def _connect_failed(
        self,
        node: Node,
        where: str,
        exc: psycopg.Error,
        ctx: CheckContext,
        s: PostgresSettings,
    ) -> Finding:
        text = ctx.redactor.text(" ".join(str(exc).split()))[:500]
        if any(k in text for k in _FULL) or getattr(exc, "sqlstate", None) == "53300":
            # refused for lack of slots: every usable one is taken (a ratio of 1)
            full = _Report()
            full.measure("connections_used_ratio", 1.0, s)
            return self.finding(
                node,
                worst(full.statuses),
                f"{where}: connection slots exhausted, new connections are refused ({text})",
                signals=full.signals,
                error=text,
            )
        if any(k in text for k in _AUTH):
            return self.finding(
                node,
                Status.UNKNOWN,
                f"{where}: authentication failed; check the DSN's user and password ({text})",
                error=text,
            )
        return self.unreachable(node, f"{where}: {text}")

    # -- the checks -------------------------------------------------------------
    async def _inspect(
        self, conn: psycopg.AsyncConnection, s: PostgresSettings, ctx: CheckContext
    ) -> _Report:
        report = _Report()
        async with conn.cursor(row_factory=class_row(ServerInfo)) as cur:
            await cur.execute(_SERVER)
            info = await cur.fetchone()
        sessions = await _activity(conn)
        sessions = await _worst_lock_reading(conn, sessions, s)
        assert info is not None
        for sess in sessions:
            sess.query = ctx.redactor.text(sess.query)
        _connections(report, info, sessions, s)
        await _connection_limits(report, conn, s)
        _blocking(report, sessions, s)
        _stuck(report, sessions, s)
        if s.top_statements:
            await _statements(report, conn, s)
        if s.expect_schema:
            await _schema(report, conn, s)
        return report

    def _finish(self, node: Node, where: str, r: _Report) -> Finding:
        status = worst(r.statuses)
        if r.notes:
            summary = f"{where}: " + "; ".join(r.notes)
        else:
            used = next((x.value for x in r.signals if x.name == "connections_used"), "?")
            summary = (
                f"{where}: healthy ({used} client connections, no blocking, no stuck sessions)"
            )
        return self.finding(
            node,
            status,
            summary[:1000],
            signals=r.signals,
            evidence=r.evidence,
            suspects=r.suspects,
            anomaly_started_at=min(r.started) if r.started and not status.healthy else None,
        )


def describe_dsn(dsn: str) -> str:
    """``host:port/db`` — what a finding may say about where it looked."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "postgres"
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    if host.startswith("/"):
        host = "socket"
    port = parts.get("port") or 5432
    db = parts.get("dbname") or parts.get("user") or "postgres"
    return f"{host}:{port}/{db}"


def _age(x: float | None) -> str:
    return "?" if x is None else f"{x:.0f}s"


def _connections(
    r: _Report, info: ServerInfo, sessions: list[Session], s: PostgresSettings
) -> None:
    used = len(sessions) + 1  # our own connection holds a slot too
    usable = max(1, info.max_connections - info.reserved)
    ratio = round(used / usable, 3)
    r.measure("connections_used", used, s)
    r.measure("connections_max", info.max_connections, s)
    status = r.measure("connections_used_ratio", ratio, s)
    groups = Counter((x.application_name, x.client_addr) for x in sessions)
    # unnamed sessions show up in the evidence by address; rootloop's own are never to blame
    by_app = Counter(
        x.application_name
        for x in sessions
        if x.application_name and x.application_name not in _OURS
    )
    states: dict[str, Counter[str]] = {}
    for x in sessions:
        states.setdefault(x.application_name, Counter())[x.state or "?"] += 1
    lines = [
        f"{app or '(no application_name)'} @ {addr or 'local socket'}: {n}"
        for (app, addr), n in groups.most_common(15)
    ]
    if lines:
        r.evidence.append(
            Evidence(
                kind="metric",
                title=f"connections by application ({used}/{info.max_connections}, "
                f"{info.reserved} reserved for superusers)",
                text="\n".join(lines),
            )
        )
    top_app, top_n = by_app.most_common(1)[0] if by_app else ("", 0)
    share = top_n / info.max_connections
    if top_app:
        r.signal("top_application", top_app)
        r.signal("top_application_connections", top_n)
    if status is not Status.OK:
        note = f"connections {used}/{info.max_connections} ({ratio:.0%} of usable)"
        if top_app:
            note += f", {top_app} holds {top_n}"
        r.bad(note)
    if top_app and share >= s.app_share_suspect:
        st = ", ".join(f"{k} {v}" for k, v in states[top_app].most_common())
        r.suspect(
            top_app,
            f"holds {top_n} of {info.max_connections} connections ({share:.0%}; {st})",
            round(min(1.0, share), 3),
        )


_CONNLIMITS = f"""{_MARK}
SELECT 'role' AS kind, r.rolname::text AS name, r.rolconnlimit AS connlimit,
       (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname)::int AS used
FROM pg_roles r WHERE r.rolconnlimit >= 0 AND r.rolcanlogin
UNION ALL
SELECT 'database', d.datname::text, d.datconnlimit,
       (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname)::int
FROM pg_database d WHERE d.datconnlimit >= 0 AND d.datallowconn"""


async def _connection_limits(
    r: _Report, conn: psycopg.AsyncConnection, s: PostgresSettings
) -> None:
    """Per-role and per-database CONNECTION LIMITs that are set, with their sessions: a
    role at its limit is refused new connections while ``max_connections`` has room
    ("too many connections for role"). Superusers are exempt, so only login roles."""
    async with conn.cursor() as cur:
        await cur.execute(_CONNLIMITS)
        rows = await cur.fetchall()
    for kind, name, limit, used in rows:
        r.signal(f"connlimit_{kind}_{name}", limit)
        at_limit = r.judge(Rule(f"conns_{kind}_{name}", "above", warn=float(limit)), used, s)
        if at_limit is not Status.OK:
            r.notes.append(
                f"{kind} {name} at its CONNECTION LIMIT ({used} of {limit}): "
                "its new connections are refused"
            )


async def _activity(conn: psycopg.AsyncConnection) -> list[Session]:
    async with conn.cursor(row_factory=class_row(Session)) as cur:
        await cur.execute(_ACTIVITY)
        return await cur.fetchall()


def _blocked(sessions: list[Session], s: PostgresSettings) -> list[Session]:
    return [x for x in sessions if x.blocked_by and (x.query_age_s or 0.0) >= s.blocked_min_s]


async def _worst_lock_reading(
    conn: psycopg.AsyncConnection, sessions: list[Session], s: PostgresSettings
) -> list[Session]:
    """Lock waits come and go: each waiter is cancelled by its own statement timeout and
    the next one queues behind the same holder, so one reading of pg_stat_activity can
    fall between two waiters and show a blocker that blocks no one. When there is
    reason to look closer — a session idle in a transaction (the forgotten session that
    holds row locks) or a session waiting on a lock — the activity is read again a few
    times over a short window and the reading with the most blocked sessions is kept.
    A healthy database has neither, so it costs one reading."""
    suspicious = any(x.blocked_by for x in sessions) or any(
        x.idle_in_tx and (x.state_age_s or 0.0) >= s.blocked_min_s for x in sessions
    )
    if not suspicious or s.lock_samples <= 1:
        return sessions
    worst = sessions
    for _ in range(s.lock_samples - 1):
        await asyncio.sleep(s.lock_sample_interval_s)
        again = await _activity(conn)
        if len(_blocked(again, s)) > len(_blocked(worst, s)):
            worst = again
    return worst


def _blocking(r: _Report, sessions: list[Session], s: PostgresSettings) -> None:
    by_pid = {x.pid: x for x in sessions}
    blocked = _blocked(sessions, s)
    if r.measure("blocked_sessions", len(blocked), s) is Status.OK:
        return
    blockers = {p for x in blocked for p in x.blocked_by}
    roots = sorted(p for p in blockers if not (by_pid.get(p) and by_pid[p].blocked_by))
    roots = roots or sorted(blockers)
    for pid in roots:
        b = by_pid.get(pid)
        victims = [x for x in blocked if pid in x.blocked_by]
        if b is None:  # e.g. an autovacuum worker or a prepared transaction
            r.evidence.append(
                Evidence(
                    kind="text",
                    title=f"blocker pid {pid}",
                    text="not a client backend visible to this user",
                )
            )
            continue
        r.evidence.append(
            Evidence(
                kind="query",
                title=f"blocker pid {pid} ({b.who}, {b.state}, transaction open "
                f"{_age(b.xact_age_s)}) blocks {len(victims)} session(s)",
                text=b.query or "(no query text)",
            )
        )
        if b.application_name:
            r.suspect(
                b.application_name,
                f"pid {pid} ({b.state}) holds locks that block {len(victims)} session(s)",
                0.9,
            )
        r.bad(
            f"{len(victims)} session(s) blocked by pid {pid} ({b.who}, "
            f"{b.state}, transaction open {_age(b.xact_age_s)})",
            b.xact_start,
        )
    first = roots[0]
    r.signal("root_blocker_pid", first)
    if by_pid.get(first):
        r.signal("root_blocker_application", by_pid[first].application_name)
    for x in sorted(blocked, key=lambda x: -(x.query_age_s or 0))[:10]:
        r.evidence.append(
            Evidence(
                kind="query",
                title=f"pid {x.pid} ({x.who}) waits {_age(x.query_age_s)} "
                f"on pid(s) {', '.join(map(str, x.blocked_by))}",
                text=x.query,
            )
        )


def _idle_in_tx_by_client(r: _Report, idle: list[Session], blockers: set[int]) -> None:
    """The client with most sessions idle in transaction, as signals (all informational;
    ``idle_in_transaction`` carries the judgement): how many, how far apart their
    transactions began (``…_spread_s``: opened one after another over time and never
    finished, a leak accumulating — versus one forgotten session, or a batch that began
    them together), how many block another session, and the role they log in as."""
    groups: dict[str, list[Session]] = {}
    for x in idle:
        groups.setdefault(x.application_name, []).append(x)
    app, mine = max(groups.items(), key=lambda kv: len(kv[1]))
    ages = [x.xact_age_s for x in mine if x.xact_age_s is not None]
    roles = {x.usename for x in mine}
    r.signal("idle_in_tx_top_client", app)
    r.signal("idle_in_tx_top_client_sessions", len(mine))
    r.signal(
        "idle_in_tx_top_client_spread_s",
        round(max(ages) - min(ages), 1) if ages else None,
        unit="s",
    )
    r.signal("idle_in_tx_top_client_blocking", sum(1 for x in mine if x.pid in blockers))
    r.signal("idle_in_tx_top_client_role", roles.pop() if len(roles) == 1 else None)


def _stuck(r: _Report, sessions: list[Session], s: PostgresSettings) -> None:
    blockers = {p for x in sessions for p in x.blocked_by}
    idle = [x for x in sessions if x.idle_in_tx and (x.state_age_s or 0) >= s.idle_in_transaction_s]
    r.measure("idle_in_transaction", len(idle), s, idle_blocks=any(x.pid in blockers for x in idle))
    for x in sorted(idle, key=lambda x: -(x.xact_age_s or 0))[:10]:
        r.evidence.append(
            Evidence(
                kind="query",
                title=f"idle in transaction: pid {x.pid} ({x.who}), idle "
                f"{_age(x.state_age_s)}, transaction open {_age(x.xact_age_s)}",
                text=x.query or "(no query text)",
            )
        )
    if idle:
        oldest = max(idle, key=lambda x: x.xact_age_s or 0)
        r.bad(
            f"{len(idle)} session(s) idle in transaction > {s.idle_in_transaction_s:g}s "
            f"(oldest pid {oldest.pid}, {oldest.who}, {_age(oldest.xact_age_s)})",
            oldest.xact_start,
        )
        for app, n in Counter(x.application_name for x in idle if x.application_name).items():
            r.suspect(app, f"{n} session(s) idle in transaction", 0.6)
        _idle_in_tx_by_client(r, idle, blockers)

    long_q = [
        x
        for x in sessions
        if x.state == "active" and not x.blocked_by and (x.query_age_s or 0) >= s.long_query_s
    ]
    r.measure("long_running_queries", len(long_q), s)
    for x in sorted(long_q, key=lambda x: -(x.query_age_s or 0))[:10]:
        r.evidence.append(
            Evidence(
                kind="query",
                title=f"running {_age(x.query_age_s)}: pid {x.pid} ({x.who})",
                text=x.query,
            )
        )
    if long_q:
        oldest = max(long_q, key=lambda x: x.query_age_s or 0)
        r.bad(
            f"{len(long_q)} quer(ies) running > {s.long_query_s:g}s "
            f"(longest {_age(oldest.query_age_s)}, pid {oldest.pid}, {oldest.who})",
            oldest.query_start,
        )

    in_tx = [x for x in sessions if x.xact_age_s is not None]
    longest = max(in_tx, key=lambda x: x.xact_age_s or 0, default=None)
    age = round(longest.xact_age_s or 0.0, 1) if longest else 0.0
    tx_status = r.measure("longest_transaction_s", age, s, in_transaction=longest is not None)
    if longest and tx_status is not Status.OK:
        r.bad(
            f"transaction open {age:.0f}s (pid {longest.pid}, {longest.who})",
            longest.xact_start,
        )


async def _statements(r: _Report, conn: psycopg.AsyncConnection, s: PostgresSettings) -> None:
    cur = await conn.execute(_HAS_PGSS)
    row = await cur.fetchone()
    if not row or not row[0]:
        r.signals.append(Signal(name="pg_stat_statements", value=False))
        return
    try:
        async with conn.cursor(row_factory=class_row(Statement)) as c:
            await c.execute(_STATEMENTS, (s.top_statements,))
            stmts = await c.fetchall()
    except psycopg.errors.ObjectNotInPrerequisiteState:  # extension not preloaded
        r.signals.append(Signal(name="pg_stat_statements", value=False))
        return
    slow = [x for x in stmts if x.mean_ms >= s.slow_statement_ms]
    top = stmts[0].mean_ms if stmts else 0.0
    r.measure("slowest_statement_mean_ms", round(top, 1), s, has_statements=bool(stmts))
    if slow:
        r.bad(
            f"{len(slow)} statement(s) average > {s.slow_statement_ms:g}ms (slowest {top:.0f}ms)",
        )
    for x in slow or stmts[:1]:
        r.evidence.append(
            Evidence(
                kind="query",
                title=f"mean {x.mean_ms:.1f}ms over {x.calls} call(s), "
                f"total {x.total_ms:.0f}ms, {x.rows} row(s)",
                text=x.query,
            )
        )


async def _schema(r: _Report, conn: psycopg.AsyncConnection, s: PostgresSettings) -> None:
    wanted: dict[tuple[str, str], list[str]] = {}
    for table, cols in s.expect_schema.items():
        schema, _, name = table.rpartition(".")
        wanted[(schema or s.default_schema, name)] = cols
    cur = await conn.execute(_COLUMNS, ([name for _, name in wanted],))
    found: dict[tuple[str, str], set[str]] = {}
    for nsp, rel, col in await cur.fetchall():
        found.setdefault((nsp, rel), set()).add(col)
    problems: list[str] = []
    for (schema, name), cols in wanted.items():
        have = found.get((schema, name))
        if have is None:
            problems.append(f"table {schema}.{name} is missing")
            continue
        missing = [c for c in cols if c not in have]
        if missing:
            problems.append(f"table {schema}.{name} lacks column(s) {', '.join(missing)}")
    r.measure("schema_mismatches", len(problems), s)
    if problems:
        r.evidence.append(
            Evidence(
                kind="config", title="schema differs from expect_schema", text="\n".join(problems)
            )
        )
        r.bad("schema mismatch: " + "; ".join(problems))
