"""Client connection limits: a datastore refusing new clients at a configured ceiling.

Distinct from memory pressure (the server has room, it will not admit another client)
and from a pool that takes all of PostgreSQL's ``max_connections`` (connection
exhaustion: the server-wide limit, blamed on whoever holds most). Here the limit is
Redis' ``maxclients`` or a PostgreSQL role's or database's ``CONNECTION LIMIT``, and
the evidence is the server's own refusal:

- Redis answers a new client ``ERR max number of clients reached`` and closes it;
  ``INFO`` counts it in ``rejected_connections`` while ``connected_clients`` sits at
  ``maxclients``;
- PostgreSQL refuses with ``too many connections for role "R"`` or ``… for database
  "D"`` (SQLSTATE 53300) while ``pg_roles.rolconnlimit`` / ``pg_database.datconnlimit``
  is reached and ``max_connections`` is not.

Preconditions are stated per signature; each must hold in the evidence, a missing
signal counts as not holding (see ``rootloop.reasoning.signatures``).
"""

from __future__ import annotations

import re
from typing import Any

from rootloop.models import Finding, Status
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import Hit, bad, bad_signal, component_of, num, text_of
from rootloop.topology import Topology

# the server's own words (redis/src/networking.c; PostgreSQL's postinit.c), not a log's
REDIS_REFUSAL = re.compile(r"max number of clients reached", re.I)
PG_LIMIT_REFUSAL = re.compile(r'too many connections for (role|database) "([^"]+)"', re.I)


def redis_client_limit(f: Finding, topo: Topology) -> list[Hit]:
    """Redis refusing clients at ``maxclients``.

    Preconditions, either set:
    - the check could not get in (unreachable) and the server's reply was its refusal
      "max number of clients reached": the server is up and names the limit; or
    - the check read INFO: connections were rejected since its previous reading (the
      ``rejected_connections`` signal is judged bad), ``connected_clients`` is judged
      near ``maxclients`` (``clients_used_ratio`` bad), and memory is not the cause
      (``used_memory_ratio`` is not judged bad).
    """
    if f.skill not in ("redis", "aws-elasticache") or not bad(f):
        return []
    facts: dict[str, Any] = {}
    if f.status is Status.UNREACHABLE:
        lines = [ln.strip()[:240] for ln in text_of(f).splitlines() if REDIS_REFUSAL.search(ln)]
        if not lines:
            return []
        held = ["the server answered: it is up", "its reply: max number of clients reached"]
        evidence = lines[:2]
    else:
        if not (bad_signal(f, "rejected_connections") and bad_signal(f, "clients_used_ratio")):
            return []
        if bad_signal(f, "used_memory_ratio"):
            return []  # memory is (also) at its limit: not a client-limit diagnosis alone
        clients, limit = num(f, "connected_clients"), num(f, "maxclients")
        if clients is None or not limit:
            return []
        facts = {"maxclients": int(limit), "connected_clients": int(clients)}
        facts["maxclients_x2"] = int(limit) * 2
        held = [
            "new connections were rejected since the last reading",
            f"{int(clients)} of maxclients {int(limit)} clients connected",
            "memory use is not near maxmemory",
        ]
        evidence = [f.summary]
    return [
        Hit(
            component_of(f, topo),
            cat.CLIENT_LIMIT,
            0.85,
            "Redis refuses new clients at maxclients",
            facts,
            evidence,
            f.anomaly_started_at,
            f.node,
            held,
        )
    ]


def postgres_connection_limit(findings: list[Finding], topo: Topology) -> list[Hit]:
    """A PostgreSQL role's or database's CONNECTION LIMIT refusing a service's connections.

    Preconditions, all of them:
    - some unhealthy finding carries PostgreSQL's refusal ``too many connections for
      role "R"`` (or ``database "D"``): clients are being turned away by that limit;
    - PostgreSQL's own check reports that same role's (database's) limit and its
      sessions at or over it (``connlimit_<kind>_<name>`` and ``conns_<kind>_<name>``,
      read from ``pg_roles`` / ``pg_database`` and ``pg_stat_activity``);
    - the server-wide ``max_connections`` is not what ran out (``connections_used_ratio``
      is not judged bad): that is connection exhaustion, not this.
    """
    refused: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        if not bad(f):
            continue
        for line in text_of(f).splitlines():
            m = PG_LIMIT_REFUSAL.search(line)
            if m:
                refused.setdefault((m.group(1).lower(), m.group(2)), []).append(line.strip()[:240])
    if not refused:
        return []
    hits = []
    for pg in (f for f in findings if f.skill == "postgres"):
        if bad_signal(pg, "connections_used_ratio"):
            continue
        for (kind, name), lines in refused.items():
            limit = num(pg, f"connlimit_{kind}_{name}")
            used = num(pg, f"conns_{kind}_{name}")
            if limit is None or limit < 0 or used is None or used < limit:
                continue
            hits.append(
                Hit(
                    component_of(pg, topo),
                    cat.CLIENT_LIMIT,
                    0.85,
                    f"PostgreSQL {kind} {name} is at its CONNECTION LIMIT {int(limit)} "
                    f"({int(used)} session(s)): its new connections are refused",
                    {"limit_kind": kind, "limit_name": name, "limit_now": int(limit)},
                    lines[:2],
                    pg.anomaly_started_at,
                    pg.node,
                    [
                        f'clients refused: too many connections for {kind} "{name}"',
                        f"{kind} {name}: {int(used)} session(s), CONNECTION LIMIT {int(limit)}",
                        "max_connections is not exhausted",
                    ],
                )
            )
    return hits


SIGNATURES = [redis_client_limit]
CROSS_SIGNATURES = [postgres_connection_limit]
