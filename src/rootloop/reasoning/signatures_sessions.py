"""Connection leak: one client's sessions piling up idle in transaction.

Three faults show sessions that PostgreSQL holds for a client, told apart by what
those sessions are doing:

- a blocking lock (``signatures.blocking_lock``): a session idle in transaction holds
  locks others wait for (``blocked_sessions`` > 0) — one forgotten session is enough;
- connection exhaustion: a pool simply too large, its sessions ``idle`` (not in a
  transaction), the server near ``max_connections``;
- a connection leak (here): a client opens sessions over time, begins a transaction in
  each and never finishes it; they block nobody, and they pile up until something
  (``idle_in_transaction_session_timeout``, a restart, ``max_connections``) ends them.

Within one sweep "over time" is read from the sessions themselves: their transactions
began at different moments, the oldest at least one idle threshold (the map's own
``idle_in_transaction_s``) before the newest — opened one after another, none finished.
"""

from __future__ import annotations

import math

from rootloop.models import Finding
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import Hit, bad, bad_signal, component_of, num
from rootloop.topology import Topology


def connection_leak(f: Finding, topo: Topology) -> list[Hit]:
    """Preconditions, all of them:
    - PostgreSQL's check is unhealthy and judged its sessions idle in transaction bad
      (``idle_in_transaction``: idle in a transaction longer than the map's threshold);
    - one client (``idle_in_tx_top_client``, an application_name) holds at least two of
      them: one session is a forgotten transaction, not a pile-up;
    - their transactions began at least one threshold apart
      (``idle_in_tx_top_client_spread_s`` >= the signal's threshold): opened over time,
      never finished — not a batch that began them together;
    - none of them blocks another session, and no session waits on a lock
      (``idle_in_tx_top_client_blocking`` = 0, ``blocked_sessions`` = 0 when read):
      that would be a blocking lock.
    The root is the client when it is a component of the map, else the database.
    Facts: the client, its role (for a per-role timeout), the threshold in whole seconds.
    """
    if f.skill != "postgres" or not bad(f) or not bad_signal(f, "idle_in_transaction"):
        return []
    client = f.value("idle_in_tx_top_client")
    sessions = num(f, "idle_in_tx_top_client_sessions")
    spread = num(f, "idle_in_tx_top_client_spread_s")
    blocking = num(f, "idle_in_tx_top_client_blocking")
    idle_signal = f.signal("idle_in_transaction")
    threshold = idle_signal.threshold if idle_signal is not None else None
    if not isinstance(client, str) or not client or sessions is None or sessions < 2:
        return []
    if spread is None or threshold is None or threshold <= 0 or spread < threshold:
        return []
    if blocking is None or blocking > 0 or (num(f, "blocked_sessions") or 0) > 0:
        return []
    database = component_of(f, topo)
    root = client if client in topo.graph else database
    role = f.value("idle_in_tx_top_client_role")
    facts: dict[str, object] = {
        "app": client,
        "database_node": f.node,
        "idle_tx_limit_s": max(1, math.ceil(threshold)),
    }
    if isinstance(role, str) and role:
        facts["role"] = role
    return [
        Hit(
            root,
            cat.CONNECTION_LEAK,
            0.8,
            f"{client} leaks sessions: {int(sessions)} idle in transaction, begun over "
            f"{spread:g}s, none blocking",
            facts,
            [f.summary],
            f.anomaly_started_at,
            f.node,
            [
                f"{int(sessions)} sessions of {client} idle in transaction > {threshold:g}s",
                f"their transactions began {spread:g}s apart: opened over time",
                "none blocks another session",
            ],
        )
    ]


SIGNATURES = [connection_leak]
