"""The ``redis`` skill: memory against ``maxmemory`` and its policy, evictions, clients, latency.

Everything comes from PING and INFO, so it works where CONFIG is disabled
(ElastiCache). The worst Redis failure is silent: at ``maxmemory`` under
``noeviction`` every write fails with OOM while reads and PING still succeed;
that is critical. Evictions under an LRU/LFU policy are degraded: the cache
works but drops keys. Counters in INFO are cumulative since the server started,
so the skill remembers its previous reading in the node's memory (``Node.memory``: one
per loaded map, never shared between two maps with a node of the same name) and reports
the change (and a rate) from the second sweep on.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from pydantic import Field
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from rootloop.models import Evidence, Finding, Status
from rootloop.models.nodes import Node, SkillSettings
from rootloop.skills.base import BaseSkill, CheckContext
from rootloop.skills.verdicts import Rule, Value, assess


class RedisSettings(SkillSettings):
    url: str = Field(description="redis:// or rediss:// URL; write it as ${REDIS_URL} in the map")
    connect_timeout: float = Field(default=2.0, gt=0, le=60)
    memory_warn_ratio: float = Field(default=0.9, gt=0, le=1)
    memory_critical_ratio: float = Field(default=0.98, gt=0, le=1)
    clients_warn_ratio: float = Field(default=0.8, gt=0, le=1)
    clients_critical_ratio: float = Field(default=0.95, gt=0, le=1)
    ping_warn_ms: float = Field(default=100.0, gt=0)
    blocked_clients_warn: int | None = Field(
        default=None, ge=1, description="blocked clients (BLPOP…) are normal for queues; opt in"
    )


@dataclass
class _Reading:
    at: float
    uptime_s: int
    evicted: int
    rejected: int
    oom: int


@dataclass
class _Stats:
    """The INFO fields the verdicts use."""

    used: int
    maxmemory: int
    policy: str
    evicted: int
    rejected: int
    clients: int
    maxclients: int
    blocked: int
    uptime_s: int
    oom_errors: int | None
    version: str

    @classmethod
    def parse(cls, info: dict[str, Any]) -> _Stats:
        oom = info.get("errorstat_OOM")
        return cls(
            used=int(info.get("used_memory", 0)),
            maxmemory=int(info.get("maxmemory", 0)),
            policy=str(info.get("maxmemory_policy", "unknown")),
            evicted=int(info.get("evicted_keys", 0)),
            rejected=int(info.get("rejected_connections", 0)),
            clients=int(info.get("connected_clients", 0)),
            maxclients=int(info.get("maxclients", 0)),
            blocked=int(info.get("blocked_clients", 0)),
            uptime_s=int(info.get("uptime_in_seconds", 0)),
            oom_errors=int(oom["count"]) if isinstance(oom, dict) and "count" in oom else None,
            version=str(info.get("redis_version", "?")),
        )


def describe_url(url: str) -> str:
    """``host:port/db`` without credentials."""
    try:
        parts = urlsplit(url)
        db = parts.path.lstrip("/") or "0"
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{db}"
    except ValueError:
        return "redis"


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{n}B"  # pragma: no cover


#: Redis's signals, in the order they are reported (see ``rootloop.skills.verdicts``)
RULES: tuple[Rule, ...] = (
    Rule("used_memory", unit="B"),
    Rule("maxmemory", unit="B"),
    Rule("maxmemory_policy"),
    Rule(
        "used_memory_ratio",
        "above",
        warn="memory_warn_ratio",
        crit="memory_critical_ratio",
        show="crit",
        when="noeviction",  # under an evicting policy a full cache is its normal state
        note="memory at {value:.0%} of maxmemory under noeviction: writes will fail with OOM "
        "when it is reached",
        crit_note="memory full ({used_h} of {max_h}, {value:.0%}) under noeviction: writes "
        "fail with OOM errors",
    ),
    Rule(
        "oom_errors",
        "flag",
        on="oom_new",
        severity=Status.CRITICAL,
        note="{new_oom} command(s) refused with OOM (writes are failing)",
    ),
    Rule(
        "evicted_keys",
        "flag",
        on="evicted_new",
        note="{new_evicted} key(s) evicted {since} (policy {maxmemory_policy})",
    ),
    Rule("evictions_per_s", unit="/s"),
    Rule(
        "rejected_connections",
        "flag",
        on="rejected_new",
        note="{new_rejected} connection(s) rejected (maxclients {maxclients})",
    ),
    Rule("connected_clients"),
    Rule(
        "clients_used_ratio",
        "above",
        warn="clients_warn_ratio",
        crit="clients_critical_ratio",
        show="crit",
        note="{connected_clients} of {maxclients} clients connected",
    ),
    Rule(
        "blocked_clients",
        "above",
        warn="blocked_clients_warn",
        note="{value} client(s) blocked on BLPOP/WAIT-style commands",
    ),
    Rule("ping_ms", "above", warn="ping_warn_ms", unit="ms", note="PING took {value:.0f}ms"),
)


class RedisSkill(BaseSkill):
    name = "redis"
    Settings = RedisSettings
    default_timeout = 5.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s = node.settings
        assert isinstance(s, RedisSettings)
        where = describe_url(s.url)
        client = aioredis.Redis.from_url(
            s.url,
            socket_connect_timeout=s.connect_timeout,
            socket_timeout=max(1.0, node.timeout),
            single_connection_client=True,
            retry_on_timeout=False,
            client_name="rootloop",
        )
        try:
            start = time.perf_counter()
            await client.ping()
            ping_ms = (time.perf_counter() - start) * 1000.0
            info = await client.info("all")
        except AuthenticationError as exc:
            text = ctx.redactor.text(str(exc))
            return self.finding(
                node,
                Status.UNKNOWN,
                f"{where}: authentication failed; check the URL's password ({text})",
                error=text,
            )
        except ResponseError as exc:  # e.g. NOAUTH, or INFO renamed away
            text = ctx.redactor.text(str(exc))
            return self.finding(node, Status.UNKNOWN, f"{where}: {text}", error=text)
        except (RedisError, OSError) as exc:
            return self.unreachable(
                node, ctx.redactor.text(f"{where}: {type(exc).__name__}: {exc}")
            )
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        return self._judge(node, s, where, _Stats.parse(info), ping_ms)

    def _judge(
        self, node: Node, s: RedisSettings, where: str, st: _Stats, ping_ms: float
    ) -> Finding:
        # counters: evictions, rejected connections and OOM errors are cumulative since the
        # server started; judged by their change since this node's previous reading
        memory = node.memory(self.name)  # this map's node, not every node named alike
        prev: _Reading | None = memory.get("previous")
        now = time.monotonic()
        fresh = prev is not None and st.uptime_s >= prev.uptime_s
        new_evicted = st.evicted - prev.evicted if fresh and prev else st.evicted
        new_rejected = st.rejected - prev.rejected if fresh and prev else st.rejected
        new_oom = (st.oom_errors or 0) - (prev.oom if fresh and prev else 0)
        memory["previous"] = _Reading(now, st.uptime_s, st.evicted, st.rejected, st.oom_errors or 0)

        values: dict[str, Value] = {
            "used_memory": st.used,
            "maxmemory": st.maxmemory,
            "maxmemory_policy": st.policy,
            "evicted_keys": st.evicted,
            "rejected_connections": st.rejected,
            "connected_clients": st.clients,
            "blocked_clients": st.blocked,
            "ping_ms": round(ping_ms, 2),
        }
        if st.maxmemory > 0:
            values["used_memory_ratio"] = round(st.used / st.maxmemory, 4)
        if st.oom_errors is not None:
            values["oom_errors"] = st.oom_errors
        if fresh and prev:
            values["evictions_per_s"] = round(new_evicted / max(now - prev.at, 1e-3), 2)
        if st.maxclients > 0:
            values["clients_used_ratio"] = round(st.clients / st.maxclients, 4)
        facts: dict[str, Value] = {
            "noeviction": st.policy == "noeviction",
            "oom_new": new_oom > 0,
            "new_oom": new_oom,
            "evicted_new": new_evicted > 0,
            "new_evicted": new_evicted,
            "rejected_new": new_rejected > 0,
            "new_rejected": new_rejected,
            "since": "since the last sweep" if fresh and prev else "since the server started",
            "used_h": _human(st.used),
            "max_h": _human(st.maxmemory),
            "maxclients": st.maxclients,
        }
        verdict = assess(RULES, values, s, facts)
        signals, notes = verdict.signals, verdict.notes
        status = verdict.status
        evidence = [
            Evidence(
                kind="metric",
                title=f"INFO (Redis {st.version})",
                text=(
                    f"used_memory={st.used} maxmemory={st.maxmemory} "
                    f"maxmemory_policy={st.policy} evicted_keys={st.evicted} "
                    f"rejected_connections={st.rejected} connected_clients={st.clients} "
                    f"maxclients={st.maxclients} blocked_clients={st.blocked} "
                    f"oom_errors={st.oom_errors} uptime_in_seconds={st.uptime_s}"
                ),
            )
        ]
        if notes:
            summary = f"{where}: " + "; ".join(notes)
        else:
            limit = _human(st.maxmemory) if st.maxmemory else "no limit"
            summary = (
                f"{where}: healthy ({_human(st.used)} used, maxmemory {limit}, "
                f"{st.policy}, {st.clients} clients)"
            )
        return self.finding(node, status, summary, signals=signals, evidence=evidence)
