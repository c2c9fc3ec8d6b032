"""Shared builders for the model-reasoner tests (no tests here).

A real map loaded by ``rootloop.topology.load``, findings shaped like the skills'
own, a tiny deterministic fallback reasoner, and helpers to script pydantic-ai's
``FunctionModel``. Real model requests are switched off by ``no_model_requests``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic_ai.models
import pytest
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo

import rootloop
from rootloop.actions.screen import gate_screen
from rootloop.context import DebugContext, HistoryEntry
from rootloop.models import Evidence, Finding, Outcome, PriorContext, Signal, Status, Suspect
from rootloop.reasoning.base import Proposal, ReasoningInput
from rootloop.topology import Topology

MAP = """\
service: payments-api
environment: staging
self:
  health: {skill: http-health, url: "http://127.0.0.1:9/health"}
  compute: {skill: aws-ecs, cluster: lower, service: payments-api, region: us-east-1}
downstream:
  - {name: payments-db, type: postgres, skill: postgres, dsn: "postgresql://127.0.0.1:9/db"}
  - {name: ledger-prod, type: service, skill: http-health, url: "http://127.0.0.1:9/l"}
  - {name: fraud-svc, type: service, skill: http-health, url: "http://127.0.0.1:9/f"}
"""


@pytest.fixture
def no_model_requests() -> Iterator[None]:
    """Any real provider request raises; scripted models still run."""
    old = pydantic_ai.models.ALLOW_MODEL_REQUESTS
    pydantic_ai.models.ALLOW_MODEL_REQUESTS = False
    try:
        yield
    finally:
        pydantic_ai.models.ALLOW_MODEL_REQUESTS = old


def make_topology(tmp_path: Path, extra: str = "") -> Topology:
    path = tmp_path / "rootloop.yaml"
    path.write_text(MAP + extra, encoding="utf-8")
    return rootloop.load_map(path, env={})


def make_findings(log_lines: list[str] | None = None) -> list[Finding]:
    t0 = datetime(2026, 11, 27, 10, 2, 13, tzinfo=UTC)
    lines = log_lines or [
        "2026-11-27 10:02:13 ERROR payments.charge - could not obtain connection: pool "
        f"exhausted (size 20, waiting {i})"
        for i in range(30)
    ]
    return [
        Finding(node="fraud-svc", skill="http-health", status=Status.OK, summary="200 in 12 ms"),
        Finding(
            node="payments-api/health",
            skill="http-health",
            status=Status.DEGRADED,
            summary="HTTP 500 on 31% of requests",
            signals=[Signal(name="error_rate", value=0.31, threshold=0.02, status=Status.DEGRADED)],
            evidence=[Evidence(kind="log", title="payments-api logs", text="\n".join(lines))],
            anomaly_started_at=t0,
            suspects=[Suspect(node="payments-db", reason="connection errors", weight=0.8)],
        ),
        Finding(
            node="payments-db",
            skill="http-health",
            status=Status.CRITICAL,
            summary="connections 100/100, 80 idle in transaction from payments-api",
            signals=[
                Signal(
                    name="connections_used_ratio", value=1.0, threshold=0.9, status=Status.CRITICAL
                )
            ],
            anomaly_started_at=t0.replace(minute=1),
        ),
    ]


def make_input(
    tmp_path: Path,
    findings: list[Finding] | None = None,
    context: DebugContext | None = None,
    **kw: Any,
) -> ReasoningInput:
    topo = make_topology(tmp_path)
    context = context or DebugContext(service="payments-api")
    # as the loop does: the gates screen what the model proposes
    kw.setdefault("screen", gate_screen(topo, context, kw.get("prior") or PriorContext()))
    return ReasoningInput(
        topology=topo,
        findings=findings if findings is not None else make_findings(),
        context=context,
        **kw,
    )


def diagnosis(category: str = "pool-starvation", root: str = "payments-db") -> dict[str, Any]:
    return {
        "root_cause": root,
        "category": category,
        "summary": f"{root}: {category}",
        "confidence": 0.8,
        "evidence": ["connections 100/100"],
    }


TERMINATE = {
    "kind": "terminate-backend",
    "target": "payments-db",
    "application_name": "payments-api",
    "state": "idle in transaction",
}
RESTART = {
    "kind": "restart",
    "target": "payments-api",
    "cluster": "lower",
    "service": "payments-api",
}


def failed_context(action: dict[str, Any], category: str = "pool-starvation") -> DebugContext:
    """A context whose first iteration tried ``action`` for the diagnosis and failed."""
    p = Proposal.model_validate({"diagnosis": diagnosis(category), "action": action})
    assert p.action is not None
    entry = HistoryEntry(
        iteration=1,
        diagnosis=p.diagnosis.summary,
        action=p.action.describe(),
        result="failed - error rate still 31%",
        outcome=Outcome.SAME_FAULT,
        phase="failed",
        diagnosis_detail=p.diagnosis,
        action_detail=p.action,
        action_fingerprint=p.action.fingerprint(),
    )
    return DebugContext(service="payments-api", iteration=1, history=[entry])


class FixedReasoner:
    """A deterministic stand-in for the rules reasoner: returns what it was given."""

    ledger = None  # calls no model
    reads_code = False

    def __init__(self, proposal: Proposal, name: str = "rules") -> None:
        self.proposal = proposal
        self.name = name
        self.calls = 0

    async def propose(self, inp: ReasoningInput) -> Proposal:
        self.calls += 1
        return self.proposal


def final(info: AgentInfo, args: dict[str, Any]) -> ModelResponse:
    """A model response that calls the output tool with ``args``."""
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, args)])


def user_text(messages: list[ModelMessage]) -> str:
    """Everything the scripted model was sent, as text (prompts and tool returns)."""
    out = []
    for m in messages:
        if isinstance(m, ModelRequest):
            for part in m.parts:
                content = getattr(part, "content", None)
                out.append(content if isinstance(content, str) else repr(content))
    return "\n".join(out)
