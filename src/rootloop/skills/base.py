"""The contract between the sweep and a skill.

A skill checks one node and returns a Finding. It never raises for a platform
failure: a refused connection is an ``unreachable`` finding, a permission error
an ``unknown`` one that says what permission is missing. It is read-only: any
change to the world goes through ``rootloop.actions`` and the gates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import httpx

from rootloop.models import Evidence, Finding, Signal, Status, Suspect
from rootloop.models.nodes import Node, SkillSettings, node_default
from rootloop.redact import Redactor
from rootloop.skills.verdicts import Rule, judge_value

T = TypeVar("T")

#: Node, SkillSettings and node_default live in ``rootloop.models.nodes``; re-exported here
#: for one release (plugins written against ``rootloop.skills.base`` keep working).
__all__ = [
    "BaseSkill",
    "CheckContext",
    "Node",
    "Skill",
    "SkillSettings",
    "elapsed_ms",
    "judge",
    "node_default",
]


@dataclass
class CheckContext:
    """What a check may use besides its node. Built once per sweep."""

    redactor: Redactor = field(default_factory=Redactor)
    window_start: datetime | None = None  # incident window for log/metric skills
    window_end: datetime | None = None
    executor: Executor | None = None  # threads for blocking clients (boto3)
    extra: dict[str, Any] = field(default_factory=dict)

    _http: dict[bool, httpx.AsyncClient] = field(default_factory=dict)

    def http(self, verify_tls: bool = True) -> httpx.AsyncClient:
        """One pooled HTTP client per sweep (and TLS setting), closed by ``aclose``.

        A client per check would cost a TLS context and a connection pool each:
        tens of milliseconds of CPU that a sweep of hundreds of nodes cannot pay.
        """
        client = self._http.get(verify_tls)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                verify=verify_tls,
                follow_redirects=True,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            )
            self._http[verify_tls] = client
        return client

    async def aclose(self) -> None:
        clients, self._http = list(self._http.values()), {}
        for client in clients:
            await client.aclose()

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking client call on the sweep's thread pool.

        The client must carry its own socket timeouts: a thread cannot be
        cancelled, so the timeout of the call is what guarantees it ends.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)


@runtime_checkable
class Skill(Protocol):
    name: ClassVar[str]
    Settings: ClassVar[type[SkillSettings]]
    default_timeout: ClassVar[float]

    async def check(self, node: Node, ctx: CheckContext) -> Finding: ...


class BaseSkill:
    """Helpers shared by the built-in skills: building findings in one line."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type[SkillSettings]] = SkillSettings
    default_timeout: ClassVar[float] = 5.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:  # pragma: no cover
        raise NotImplementedError

    def finding(
        self,
        node: Node,
        status: Status,
        summary: str,
        *,
        signals: list[Signal] | None = None,
        evidence: list[Evidence] | None = None,
        suspects: list[Suspect] | None = None,
        anomaly_started_at: datetime | None = None,
        error: str | None = None,
    ) -> Finding:
        return Finding(
            node=node.name,
            skill=self.name,
            status=status,
            summary=summary,
            signals=signals or [],
            evidence=evidence or [],
            suspects=suspects or [],
            anomaly_started_at=anomaly_started_at,
            error=error,
        )

    def unreachable(self, node: Node, error: BaseException | str) -> Finding:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        text = " ".join(str(text).split())[:500]
        return self.finding(
            node, Status.UNREACHABLE, f"cannot reach {node.name}: {text}", error=text
        )


def judge(value: float, warn: float | None, crit: float | None) -> Status:
    """Status of a value that is bad when high (the ``above`` rule of ``verdicts``)."""
    return judge_value(Rule("value", "above", warn=warn, crit=crit), value, None, {})


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
