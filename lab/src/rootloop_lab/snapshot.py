"""A clean lab again without rebuilding it: the state a scenario changed, put back.

Rebuilding the lab from nothing costs a new supervisor process, and most of that is
moto's backends and boto3's service models being imported and initialised again (about
12 of the 20 seconds on a 2-core machine). The supervisor restores in place instead
(``Supervisor.restore``): it stops every process and thread it started for the
services, then puts each stateful part back from its clean snapshot, and runs the same
start code as a fresh lab on the servers that kept running:

- PostgreSQL: the ``payments`` database is dropped (its sessions with it) and created
  again from ``payments_clean``, a template written when the lab was first built;
  ``ALTER SYSTEM`` settings, role connection limits and per-role settings are reset,
  databases and roles that were not there are dropped. A setting that needs a server
  restart cannot be put back in place: that restore fails and the bench rebuilds.
- Redis: a new server on the same port with an empty data directory (its configuration
  comes from the command line, so every ``CONFIG SET`` is gone with the old one).
- The AWS emulator: moto's own reset (every backend: ECS, Lambda, SQS and its DLQ,
  CloudWatch logs and metrics), then the same resources created again.
- Files: the repository, CI runs, deploys, the local forge, maps, runbooks and the task
  logs are deleted and written again, as on a first start.

Independence is checked, not assumed: ``fingerprint`` reads the state a scenario can
change (settings, limits, roles, databases, schema, queue depths, function and
service configuration, the deployed tree, helper processes) with plain clients; the
bench compares it with the clean lab's after every restore and rebuilds from nothing
when they differ.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from rootloop.errors import PlatformError

TEMPLATE_DB = "payments_clean"
LAB_DB = "payments"
#: files and folders of the lab root that a restore keeps: the supervisor's own record,
#: its log, and the servers' directories it restores itself
KEEP = {"lab.json", "pids", "logs", "pg", "redis"}
KEEP_LOGS = {"supervisor.log"}


class RestoreError(PlatformError):
    """The lab could not be put back in place; rebuild it from nothing instead."""


# -- PostgreSQL -----------------------------------------------------------------------


def take_postgres(admin_dsn: str) -> None:
    """Record the clean ``payments`` database as a template no one can connect to.

    Called right after the schema is created, before any service connects (a template
    copy needs the source database idle)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        conn.execute(
            f"CREATE DATABASE {TEMPLATE_DB} TEMPLATE {LAB_DB} IS_TEMPLATE true "
            "ALLOW_CONNECTIONS false"
        )
        roles = conn.execute(
            "SELECT rolname, rolconnlimit FROM pg_roles "
            "WHERE NOT rolsuper AND rolname NOT LIKE 'pg\\_%' ORDER BY 1"
        ).fetchall()
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(TEMPLATE_DB), sql.Literal(json.dumps({r[0]: r[1] for r in roles}))
            )
        )


def restore_postgres(admin_dsn: str) -> None:
    """Put the server back as ``take_postgres`` left it (see the module docstring)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (TEMPLATE_DB,),
        ).fetchone()
        if row is None or not row[0]:
            raise RestoreError(f"no clean template database {TEMPLATE_DB} to restore from")
        clean_roles: dict[str, int] = json.loads(row[0])
        fixed_at_start = [
            r[0]
            for r in conn.execute(
                "SELECT f.name FROM pg_file_settings f JOIN pg_settings s ON s.name = f.name "
                "WHERE f.sourcefile LIKE '%postgresql.auto.conf' AND s.context = 'postmaster'"
            ).fetchall()
        ]
        if fixed_at_start:
            raise RestoreError(
                "ALTER SYSTEM changed settings that need a server restart to go back: "
                + ", ".join(fixed_at_start)
            )
        conn.execute("ALTER SYSTEM RESET ALL")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        keep = {"postgres", "template0", "template1", TEMPLATE_DB}
        for (name,) in conn.execute("SELECT datname FROM pg_database").fetchall():
            if name not in keep:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f"CREATE DATABASE {LAB_DB} TEMPLATE {TEMPLATE_DB}")
        conn.execute("ALTER DATABASE postgres RESET ALL")
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE NOT rolsuper AND rolname NOT LIKE 'pg\\_%'"
        ).fetchall()
        for (name,) in roles:
            if name not in clean_roles:
                try:
                    conn.execute(f'DROP ROLE "{name}"')
                except psycopg.Error as exc:
                    why = f"role {name} was added and cannot be dropped: {exc}"
                    raise RestoreError(why) from None
                continue
            conn.execute(f'ALTER ROLE "{name}" CONNECTION LIMIT {int(clean_roles[name])}')
            conn.execute(f'ALTER ROLE "{name}" RESET ALL')
        if conn.execute("SELECT to_regproc('pg_stat_statements_reset') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
            conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_reset_shared('bgwriter')")


# -- the AWS emulator and files -------------------------------------------------------


def reset_emulator(endpoint: str) -> None:
    """moto's reset: every backend of every service back to empty."""
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
    except OSError as exc:
        raise RestoreError(f"the AWS emulator did not reset: {exc}") from None


def wipe_files(root: Path) -> None:
    """Delete what a first start writes, keeping the supervisor's record and servers."""
    for child in root.iterdir():
        if child.name in KEEP:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    logs = root / "logs"
    for child in logs.iterdir() if logs.exists() else []:
        if child.name in KEEP_LOGS:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


# -- the check --------------------------------------------------------------------------


def fingerprint(lab_root: Path, state: Any) -> dict[str, Any]:
    """What a scenario can change, read with plain clients: equal fingerprints mean the
    restored lab is the clean one as far as any scenario could tell. Volatile values
    (rows the background traffic writes, timestamps, commit ids) are left out; the
    deployed *tree* stands for the code."""
    found = {
        "postgres": _pg_fingerprint(state),
        "redis": _redis_fingerprint(state),
        "aws": _aws_fingerprint(state, _main_sha(lab_root)),
        "git": _git_fingerprint(lab_root),
        "helpers": sorted(
            p.stem for p in (lab_root / "pids").glob("fault-*.pid") if (lab_root / "pids").exists()
        ),
    }
    # a rebuilt lab may listen on other ports: a port is named, not numbered
    text = json.dumps(found, default=str, sort_keys=True)
    for name, port in state.ports.model_dump().items():
        if port:
            text = re.sub(rf"(?<!\d){int(port)}(?!\d)", f"<{name} port>", text)
    result: dict[str, Any] = json.loads(text)
    return result


def differences(clean: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Each part of ``now`` that differs from ``clean``, named by its path."""
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        elif a != b:
            out.append(f"{path}: {_short(a)} -> {_short(b)}")

    walk(clean, now, "")
    return out


def _short(v: Any) -> str:
    text = json.dumps(v, default=str, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def _pg_fingerprint(state: Any) -> dict[str, Any]:
    with psycopg.connect(state.pg_dsn("postgres", "postgres"), autocommit=True) as conn:
        settings = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE source NOT IN "
            "('default', 'override', 'client', 'session') ORDER BY 1"
        ).fetchall()
        auto = conn.execute(
            "SELECT name, setting FROM pg_file_settings "
            "WHERE sourcefile LIKE '%postgresql.auto.conf' ORDER BY 1"
        ).fetchall()
        roles = conn.execute(
            "SELECT r.rolname, r.rolconnlimit, r.rolcanlogin, r.rolsuper, r.rolconfig, "
            "md5(coalesce(a.rolpassword, '')) FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid "
            "ORDER BY 1"
        ).fetchall()
        dbs = conn.execute(
            "SELECT datname, datconnlimit, datallowconn, datistemplate FROM pg_database ORDER BY 1"
        ).fetchall()
        db_settings = conn.execute(
            "SELECT coalesce(d.datname, '*'), coalesce(r.rolname, '*'), s.setconfig "
            "FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase "
            "LEFT JOIN pg_roles r ON r.oid = s.setrole ORDER BY 1, 2"
        ).fetchall()
        others = conn.execute(
            "SELECT coalesce(application_name, ''), coalesce(state, '') FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND (state LIKE 'idle in transaction%' OR wait_event_type = 'Lock') ORDER BY 1"
        ).fetchall()
    with psycopg.connect(state.pg_dsn("postgres", LAB_DB), autocommit=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()]  # fmt: skip
        # the reference data every payment reads; payments themselves grow with traffic
        settling = conn.execute(
            "SELECT count(*) FROM payments WHERE status NOT IN ('accepted', 'settled')"
        ).fetchone() if "payments" in tables else None  # fmt: skip
        # balances move with every payment; which merchants exist does not
        merchants = (
            conn.execute(
                "SELECT md5(string_agg(id || ':' || name, ',' ORDER BY id)) FROM merchants"
            ).fetchone()
            if "merchants" in tables
            else None
        )
    return {
        "settings": [list(r) for r in settings],
        "auto_conf": [list(r) for r in auto],
        "roles": [list(r) for r in roles],
        "databases": [list(r) for r in dbs],
        "db_role_settings": [list(r) for r in db_settings],
        "stuck_sessions": [list(r) for r in others],
        "columns": [list(r) for r in columns],
        "indexes": [list(r) for r in indexes],
        "unsettled_payments": settling[0] if settling else None,
        "merchants": merchants[0] if merchants else None,
    }


_REDIS_VOLATILE = {"dir", "pidfile", "logfile", "unixsocket"}


def _redis_fingerprint(state: Any) -> dict[str, Any]:
    import redis

    r = redis.Redis.from_url(state.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        conf = r.config_get("*")
        no_ttl = sum(1 for k in r.scan_iter(count=500) if r.ttl(k) == -1)
    finally:
        r.close()
    return {
        "config": {k: v for k, v in sorted(conf.items()) if k not in _REDIS_VOLATILE},
        "keys_without_ttl": no_ttl,
    }


def _aws_fingerprint(state: Any, main_sha: str) -> dict[str, Any]:
    """``main_sha``: each build commits the same tree at another time, so the deployed
    commit id is written as ``main`` where it is the tip of main."""
    from rootloop_lab.cloud import client
    from rootloop_lab.layout import CLUSTER

    ep = state.endpoint_url
    ecs, lam, sqs = client("ecs", ep), client("lambda", ep), client("sqs", ep)
    services: dict[str, Any] = {}
    arns = ecs.list_services(cluster=CLUSTER).get("serviceArns", [])
    for svc in ecs.describe_services(cluster=CLUSTER, services=arns)["services"] if arns else []:
        td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        services[svc["serviceName"]] = {
            "desired": svc.get("desiredCount"),
            "revision": td.get("revision"),
            "task_definition": _normalised(
                {k: td.get(k) for k in ("containerDefinitions", "cpu", "memory")}, main_sha
            ),
            "placement": _digest(
                [
                    svc.get("placementStrategy"),
                    svc.get("placementConstraints"),
                    svc.get("capacityProviderStrategy"),
                ]
            ),
        }
    functions = {}
    for fn in lam.list_functions().get("Functions", []):
        name = fn["FunctionName"]
        conc = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
        functions[name] = {
            "env": fn.get("Environment", {}).get("Variables", {}),
            "timeout": fn.get("Timeout"),
            "memory": fn.get("MemorySize"),
            "reserved_concurrency": conc,
        }
    queues = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        queues[url.rsplit("/", 1)[-1]] = {
            k: v
            for k, v in sorted(attrs.items())
            if k
            not in ("CreatedTimestamp", "LastModifiedTimestamp", "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
        }  # fmt: skip
        if url == state.dlq_url:  # the main queue flows with traffic; the DLQ must be empty
            queues[url.rsplit("/", 1)[-1]]["messages"] = attrs.get("ApproximateNumberOfMessages")
    instances = ecs.list_container_instances(cluster=CLUSTER).get("containerInstanceArns", [])
    return {
        "services": services,
        "functions": functions,
        "queues": queues,
        "container_instances": len(instances),
    }


def _git_fingerprint(root: Path) -> dict[str, Any]:
    origin = root / "repo" / "origin.git"
    if not origin.exists():
        return {}

    def git(*args: str) -> str:
        res = subprocess.run(
            ["git", *args], cwd=origin, capture_output=True, text=True, check=False, timeout=30
        )
        return res.stdout.strip()

    return {
        "branches": git("for-each-ref", "--format=%(refname:short)", "refs/heads").split(),
        "main_tree": git("rev-parse", "main^{tree}"),
        "main_commits": git("rev-list", "--count", "main"),
    }


def _main_sha(root: Path) -> str:
    origin = root / "repo" / "origin.git"
    res = subprocess.run(
        ["git", "rev-parse", "main"], cwd=origin, capture_output=True, text=True, check=False
    ) if origin.exists() else None  # fmt: skip
    return res.stdout.strip() if res is not None and res.returncode == 0 else ""


def _normalised(value: Any, main_sha: str) -> Any:
    text = json.dumps(value, sort_keys=True, default=str)
    if main_sha:
        text = text.replace(main_sha, "<main>").replace(main_sha[:7], "<main>")
    return json.loads(text)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
