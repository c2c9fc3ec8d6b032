"""The model reasoner with pydantic-ai's own scripted models (no real provider calls)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from tests.unit.test_model_support import (
    RESTART,
    TERMINATE,
    FixedReasoner,
    diagnosis,
    failed_context,
    final,
    make_input,
    no_model_requests,
    user_text,
)

from rootloop.actions.types import TerminateBackend
from rootloop.models import Diagnosis
from rootloop.reasoning.base import Proposal
from rootloop.reasoning.model import ModelConfig, ModelReasoner
from rootloop.reasoning.usage import UsageLedger

pytestmark = pytest.mark.usefixtures("no_model_requests")
__all__ = ["no_model_requests"]

FALLBACK = Proposal(
    diagnosis=Diagnosis(
        root_cause="payments-api", category="unknown", summary="rules guess", confidence=0.3
    ),
    escalate_reason="no signature matches these findings",
)


async def test_valid_proposal_from_findings(tmp_path: Path) -> None:
    seen: list[str] = []

    def model(messages: list[ModelMessage], info: AgentInfo):
        seen.append(user_text(messages))
        return final(
            info,
            {
                "diagnosis": diagnosis(),
                "action": TERMINATE,
                "rationale": "idle in transaction sessions hold the pool",
            },
        )

    reasoner = ModelReasoner(FunctionModel(model), fallback=FixedReasoner(FALLBACK))
    p = await reasoner.propose(make_input(tmp_path))

    assert isinstance(p.action, TerminateBackend)
    assert p.action.application_name == "payments-api"
    assert p.diagnosis.reasoner == "model"
    assert p.diagnosis.key == "payments-db:pool-starvation"
    assert reasoner.last_failure is None
    # the prompt carried the findings, worst first (the CRITICAL db before the DEGRADED api)
    prompt = seen[0]
    assert prompt.index("CRITICAL payments-db") < prompt.index("DEGRADED payments-api/health")
    assert "payments-api -> payments-db" in prompt


async def test_invalid_output_retried_with_error_then_fallback(tmp_path: Path) -> None:
    requests: list[list[ModelMessage]] = []

    def model(messages: list[ModelMessage], info: AgentInfo):
        requests.append(list(messages))
        # always forgets the diagnosis' required fields
        return final(info, {"diagnosis": {"root_cause": "payments-db"}})

    fallback = FixedReasoner(FALLBACK)
    reasoner = ModelReasoner(
        FunctionModel(model),
        fallback=fallback,
        config=ModelConfig(provider="openai", model="scripted", max_retries=2),
    )
    p = await reasoner.propose(make_input(tmp_path))

    assert len(requests) == 3  # the first answer and two retries
    retry = requests[1][-1]
    assert isinstance(retry, ModelRequest)
    sent_back = [part for part in retry.parts if isinstance(part, ToolReturnPart)]
    assert sent_back and "category" in str(sent_back[0].content)
    assert "Field required" in str(sent_back[0].content)
    assert fallback.calls == 1
    assert p.diagnosis.summary == "rules guess"
    assert p.rationale.startswith("model reasoner failed (UnexpectedModelBehavior")
    assert "rules reasoner answered" in p.rationale
    assert reasoner.last_failure and "retries" in reasoner.last_failure
    # the tokens of the failed run were spent all the same, and recorded
    call = reasoner.ledger.calls[-1]
    assert not call.ok and call.requests == 3 and call.input_tokens > 0


async def test_unknown_node_is_sent_back_then_corrected(tmp_path: Path) -> None:
    answers = [
        {"diagnosis": diagnosis(root="orders-db"), "action": None},
        {"diagnosis": diagnosis(), "action": TERMINATE},
    ]
    retries: list[str] = []

    def model(messages: list[ModelMessage], info: AgentInfo):
        if len(messages) > 1:
            retries.append(user_text(messages[-1:]))
        return final(info, answers[min(len(retries), 1)])

    p = await ModelReasoner(FunctionModel(model)).propose(make_input(tmp_path))
    assert "'orders-db' is not a node of the map" in retries[0]
    assert p.diagnosis.root_cause == "payments-db"


async def test_production_target_and_repeat_are_sent_back(tmp_path: Path) -> None:
    ctx = failed_context(TERMINATE)
    prod = {**RESTART, "target": "ledger-prod", "service": "ledger"}
    answers = [
        {"diagnosis": diagnosis(), "action": prod},
        {"diagnosis": diagnosis(), "action": TERMINATE},
        {"diagnosis": diagnosis(), "action": None, "escalate_reason": "nothing safe left"},
    ]
    sent: list[str] = []

    def model(messages: list[ModelMessage], info: AgentInfo):
        sent.append(user_text(messages[-1:]))
        return final(info, answers[len(sent) - 1])

    reasoner = ModelReasoner(
        FunctionModel(model), config=ModelConfig(provider="openai", model="scripted", max_retries=3)
    )
    p = await reasoner.propose(make_input(tmp_path, context=ctx))
    assert "'ledger-prod' is production" in sent[1]
    assert "already failed for payments-db:pool-starvation" in sent[2]
    assert p.action is None and p.escalate_reason == "nothing safe left"


async def test_without_fallback_escalates(tmp_path: Path) -> None:
    def model(messages: list[ModelMessage], info: AgentInfo):
        return final(info, {"nonsense": True})

    p = await ModelReasoner(FunctionModel(model)).propose(make_input(tmp_path))
    assert p.action is None
    assert p.escalate_reason and "no usable proposal" in p.escalate_reason


async def test_test_model_output_is_validated_and_counted(tmp_path: Path) -> None:
    ledger = UsageLedger()
    args = {"diagnosis": diagnosis(), "action": None, "escalate_reason": "needs a human"}
    reasoner = ModelReasoner(TestModel(custom_output_args=args), ledger=ledger)
    p = await reasoner.propose(make_input(tmp_path))
    assert p.escalate_reason == "needs a human"
    assert ledger.calls[0].requests == 1 and ledger.calls[0].input_tokens > 0


def test_real_provider_requests_are_off(tmp_path: Path) -> None:
    from rootloop.reasoning.model import build_model

    model = build_model(
        ModelConfig(provider="openai", model="gpt-x", base_url="http://127.0.0.1:9/v1"), env={}
    )
    import asyncio

    reasoner = ModelReasoner(model, fallback=FixedReasoner(FALLBACK))
    p = asyncio.run(reasoner.propose(make_input(tmp_path)))
    assert "ALLOW_MODEL_REQUESTS" in (reasoner.last_failure or "")
    assert p.diagnosis.summary == "rules guess"
