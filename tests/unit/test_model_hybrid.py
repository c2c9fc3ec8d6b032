"""Hybrid routing (rules first, the model where they run out) and the repeat guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel
from tests.unit.test_model_support import (
    RESTART,
    TERMINATE,
    FixedReasoner,
    diagnosis,
    failed_context,
    final,
    make_input,
    no_model_requests,
)

from rootloop.actions.types import ForceDeployment, TerminateBackend
from rootloop.context import DebugContext
from rootloop.errors import UserError
from rootloop.models import FailedAction, PriorContext
from rootloop.reasoning.base import Proposal
from rootloop.reasoning.hybrid import HybridReasoner, build_reasoner, needs_model, reject_repeats
from rootloop.reasoning.model import ModelConfig, ModelReasoner
from rootloop.reasoning.rules import RulesReasoner

pytestmark = pytest.mark.usefixtures("no_model_requests")
__all__ = ["no_model_requests"]


def proposal(
    action: dict | None = TERMINATE, category: str = "pool-starvation", escalate: str | None = None
) -> Proposal:
    return Proposal.model_validate(
        {"diagnosis": diagnosis(category), "action": action, "escalate_reason": escalate}
    )


# -- the repeat guard ------------------------------------------------------------------


def test_reject_repeats_refuses_an_action_failed_for_the_same_diagnosis() -> None:
    ctx = failed_context(TERMINATE)
    rejected = reject_repeats(proposal(), ctx, PriorContext())
    assert rejected is not None
    assert rejected.action is None
    assert "already failed for payments-db:pool-starvation (iteration 1" in (
        rejected.escalate_reason or ""
    )
    assert rejected.diagnosis.key == "payments-db:pool-starvation"


def test_reject_repeats_lets_other_actions_and_other_diagnoses_through() -> None:
    ctx = failed_context(TERMINATE)
    assert reject_repeats(proposal(RESTART), ctx, PriorContext()) is None
    # the same action for another diagnosis is a different attempt
    assert reject_repeats(proposal(category="lock-contention"), ctx, PriorContext()) is None
    # the reason is not part of what an action does
    assert (
        reject_repeats(proposal({**TERMINATE, "reason": "try again"}), ctx, PriorContext())
        is not None
    )
    assert reject_repeats(proposal(None, escalate="x"), ctx, PriorContext()) is None


def test_reject_repeats_reads_memory_of_past_runs() -> None:
    p = proposal()
    assert p.action is not None
    prior = PriorContext(
        failed_actions=[
            FailedAction(
                run_id="20261101-101010-abcd",
                diagnosis_key=p.diagnosis.key,
                fingerprint=p.action.fingerprint(),
                description=p.action.describe(),
            )
        ]
    )
    rejected = reject_repeats(p, DebugContext(service="payments-api"), prior)
    assert rejected is not None and "run 20261101-101010-abcd" in (rejected.escalate_reason or "")


# -- routing -----------------------------------------------------------------------------


def test_needs_model_conditions() -> None:
    assert needs_model(proposal(None, "unknown", "no signature matches these findings"))
    assert needs_model(proposal(None, escalate="runbook ladder exhausted for x")) == (
        "the runbook ladder is exhausted"
    )
    patch = {"kind": "apply-patch", "target": "payments-api", "title": "fix the pool leak"}
    assert needs_model(proposal(patch)) == "the fix is a code change to write"
    assert needs_model(proposal()) is None


def scripted(answer: dict, calls: list[int]) -> ModelReasoner:
    def model(messages: list[ModelMessage], info: AgentInfo):
        calls.append(1)
        return final(info, answer)

    return ModelReasoner(FunctionModel(model))


async def test_rules_answer_alone_when_a_runbook_rung_applies(tmp_path: Path) -> None:
    calls: list[int] = []
    h = HybridReasoner(FixedReasoner(proposal()), scripted({}, calls))
    p = await h.propose(make_input(tmp_path))
    assert isinstance(p.action, TerminateBackend) and calls == [] and h.last_route == "rules"


async def test_model_asked_when_no_signature_matches(tmp_path: Path) -> None:
    calls: list[int] = []
    rules = FixedReasoner(proposal(None, "unknown", "no signature matches these findings"))
    answer = {"diagnosis": diagnosis(root="payments-api"), "action": RESTART}
    h = HybridReasoner(rules, scripted(answer, calls))
    p = await h.propose(make_input(tmp_path))
    assert calls == [1]
    assert isinstance(p.action, ForceDeployment)
    assert p.rationale.startswith("hybrid: model asked because no signature matched")
    assert p.diagnosis.reasoner == "model"


async def test_model_asked_when_rules_repeat_and_its_repeat_is_rejected(tmp_path: Path) -> None:
    """The rules propose the failed action again; the model proposes it too: both rejected."""
    ctx = failed_context(TERMINATE)
    calls: list[int] = []
    h = HybridReasoner(
        FixedReasoner(proposal()), scripted({"diagnosis": diagnosis(), "action": TERMINATE}, calls)
    )
    # the model's own validator sends it back each time; then it falls back to... nothing,
    # so it escalates, and the rules' repeat stays rejected
    p = await h.propose(make_input(tmp_path, context=ctx))
    assert calls and p.action is None
    assert h.last_route == "model (its proposal already failed)"


async def test_guard_catches_a_repeat_the_model_reasoner_let_through(tmp_path: Path) -> None:
    """Defence in depth: even a model reasoner without the validator cannot repeat."""
    ctx = failed_context(TERMINATE)
    rules = FixedReasoner(proposal(None, "unknown", "no signature matches these findings"))
    sneaky = FixedReasoner(proposal(), name="model")
    h = HybridReasoner(rules, sneaky)
    p = await h.propose(make_input(tmp_path, context=ctx))
    assert p.action is None and "already failed" in (p.escalate_reason or "")


async def test_with_the_real_rules_reasoner(tmp_path: Path) -> None:
    """The lead's rules reasoner, unchanged, behind the hybrid: the model fills the gap."""
    calls: list[int] = []
    inp = make_input(tmp_path)
    first = await RulesReasoner().propose(inp)
    assert needs_model(first) == "the runbook ladder is exhausted"  # no rung fits this map
    h = HybridReasoner(
        RulesReasoner(), scripted({"diagnosis": diagnosis(), "action": TERMINATE}, calls)
    )
    p = await h.propose(inp)
    assert calls == [1] and isinstance(p.action, TerminateBackend)
    assert "runbook ladder is exhausted" in p.rationale


def test_build_reasoner_kinds() -> None:
    rules = RulesReasoner()
    assert build_reasoner("rules", rules, None) is rules
    with pytest.raises(UserError, match="ROOTLOOP_MODEL"):
        build_reasoner("hybrid", rules, None)
    cfg = ModelConfig.from_spec("ollama:llama3.1:8b")
    hybrid = build_reasoner("hybrid", rules, cfg, env={})
    model = build_reasoner("model", rules, cfg, env={})
    assert hybrid.name == "hybrid" and model.name == "model"
