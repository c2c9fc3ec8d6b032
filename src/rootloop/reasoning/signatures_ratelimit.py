"""Rate limiting: a dependency that answers ``429 Too Many Requests``.

429 is the protocol's own word for it (RFC 6585 §4: the client "has sent too many
requests in a given amount of time"); ``Retry-After`` (RFC 9110 §10.2.3), when the
server sends it, says when to come back. It is not a failure of the dependency (a
5xx, dependency-down) nor slowness (slow-dependency): the dependency is up and
deliberately turns requests away. Callers that retry a 429 at once, ignoring
``Retry-After``, multiply the requests that meet the limit — a retry storm that keeps
the limit exhausted; the fix is the limit (restored in a lower environment) or the
callers' retry policy, whichever the service's runbook names.
"""

from __future__ import annotations

from rootloop.models import Finding
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import Hit, bad, component_of, num
from rootloop.topology import Topology

TOO_MANY_REQUESTS = 429


def rate_limited(f: Finding, topo: Topology) -> list[Hit]:
    """Preconditions, all of them:
    - the node's own HTTP check is unhealthy, and the node answered it with status 429
      (``http_status``): the server itself refused for rate, it is up;
    - the node is a dependency: some component of the map calls it (a limit that turns
      away its callers).
    ``Retry-After``, when sent, is a fact (``retry_after_s``) and evidence, not a
    precondition: RFC 6585 lets a server omit it.
    """
    if f.skill != "http-health" or not bad(f):
        return []
    if num(f, "http_status") != TOO_MANY_REQUESTS:
        return []
    comp = component_of(f, topo)
    if comp not in topo.graph:
        return []
    callers = sorted(topo.graph.predecessors(comp))
    if not callers:
        return []
    wait = num(f, "retry_after_s")
    facts: dict[str, object] = {"callers": ", ".join(callers)}
    held = [
        f"{f.node} answered its own check 429 Too Many Requests: up, refusing for rate",
        f"called by {', '.join(callers)}",
    ]
    if wait is not None:
        facts["retry_after_s"] = wait
        held.append(f"Retry-After: {wait:g}s")
    return [
        Hit(
            comp,
            cat.RATE_LIMITED,
            0.8,
            f"{comp} rate-limits its callers (HTTP 429"
            + (f", Retry-After {wait:g}s" if wait is not None else "")
            + f"); {', '.join(callers)} call it",
            facts,
            [f.summary],
            f.anomaly_started_at,
            f.node,
            held,
        )
    ]


SIGNATURES = [rate_limited]
