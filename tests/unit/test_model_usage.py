"""Token and cost accounting: per call from the scripted model's run, summed per run."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage
from tests.unit.test_model_support import TERMINATE, diagnosis, make_input, no_model_requests

from rootloop.context import DebugContext
from rootloop.reasoning.model import ModelConfig, ModelReasoner
from rootloop.reasoning.usage import CallUsage, Price, UsageLedger, event_data

pytestmark = pytest.mark.usefixtures("no_model_requests")
__all__ = ["no_model_requests"]


def model_with_usage(reported: list[RequestUsage]):
    """A FunctionModel that reports fixed token counts, like a provider would."""
    answers = [
        {"diagnosis": {"root_cause": "payments-db"}},  # invalid: retried
        {"diagnosis": diagnosis(), "action": TERMINATE},
    ]

    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        i = sum(isinstance(m, ModelResponse) for m in messages)
        usage = RequestUsage(input_tokens=1200 + i * 100, output_tokens=80 + i)
        reported.append(usage)
        return ModelResponse(
            parts=[ToolCallPart(info.output_tools[0].name, answers[i])], usage=usage
        )

    return FunctionModel(fn)


async def test_usage_per_call_and_per_run(tmp_path: Path) -> None:
    reported: list[RequestUsage] = []
    price = Price(input_per_1k=0.003, output_per_1k=0.015)
    cfg = ModelConfig(provider="anthropic", model="claude-x", price=price)
    reasoner = ModelReasoner(model_with_usage(reported), config=cfg)
    ctx = DebugContext(service="payments-api", iteration=2)
    await reasoner.propose(make_input(tmp_path, context=ctx))
    await reasoner.propose(make_input(tmp_path, context=ctx))

    calls = reasoner.ledger.calls
    assert len(calls) == 2 and len(reported) == 4
    first = calls[0]
    assert first.requests == 2 and first.tool_calls == 2
    assert first.input_tokens == 1200 + 1300 and first.output_tokens == 80 + 81
    assert first.model == "anthropic:claude-x" and first.iteration == 2
    assert first.cost_usd == pytest.approx(2500 / 1000 * 0.003 + 161 / 1000 * 0.015)
    totals = reasoner.ledger.totals()
    assert totals.calls == 2 and totals.requests == 4
    assert totals.input_tokens == sum(u.input_tokens for u in reported)
    assert totals.output_tokens == sum(u.output_tokens for u in reported)
    assert totals.cost_usd == pytest.approx(2 * first.cost_usd)

    # stored in the debug context, idempotently, and read back by the report
    reasoner.ledger.store(ctx)
    reasoner.ledger.store(ctx)
    assert ctx.usage["totals"]["input_tokens"] == totals.input_tokens
    back = UsageLedger.from_context(DebugContext.model_validate_json(ctx.model_dump_json()))
    assert back.totals() == totals and len(back.calls) == 2
    data = event_data(calls[0], reasoner.ledger)
    assert data["totals"]["calls"] == 2 and data["call"]["purpose"] == "diagnose"


def test_totals_by_purpose_and_unknown_cost() -> None:
    ledger = UsageLedger()
    ledger.add(CallUsage(purpose="diagnose", input_tokens=10, output_tokens=2, requests=1))
    ledger.add(
        CallUsage(purpose="code-fix", input_tokens=100, output_tokens=20, requests=5, cost_usd=0.5)
    )
    assert ledger.totals("code-fix").requests == 5
    assert ledger.totals("diagnose").cost_usd is None
    assert ledger.totals().total_tokens == 132 and ledger.totals().cost_usd == 0.5
    ctx = DebugContext(service="s")
    ctx.usage = {"calls": [CallUsage(id="old", input_tokens=7).model_dump(mode="json")]}
    ledger.store(ctx)
    assert UsageLedger.from_context(ctx).totals().input_tokens == 117
