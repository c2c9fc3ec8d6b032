"""A model's action is taken only when this run's findings back it.

The checks of ``rootloop.reasoning.backing`` on their own, then through the model
reasoner: an unbacked answer goes back to the model with the reason, and when the
retries run out the fallback answers and the reason is kept (rationale and ledger).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel
from tests.unit.test_model_support import (
    RESTART,
    TERMINATE,
    FixedReasoner,
    final,
    make_findings,
    make_input,
    no_model_requests,
)

from rootloop.models import Diagnosis, Finding, Signal, Status
from rootloop.reasoning.backing import false_health_reason, unbacked_reason
from rootloop.reasoning.base import Proposal
from rootloop.reasoning.hybrid import HybridReasoner
from rootloop.reasoning.model import ModelReasoner, summary_reason

pytestmark = pytest.mark.usefixtures("no_model_requests")
__all__ = ["no_model_requests"]


def lock_finding() -> Finding:
    """What the postgres skill reports when one session blocks others."""
    return Finding(
        node="payments-db",
        skill="postgres",
        status=Status.CRITICAL,
        summary="3 session(s) blocked; blocker pid 4242 idle in transaction for 95 s",
        signals=[
            Signal(name="blocked_sessions", value=3, status=Status.CRITICAL),
            Signal(name="blocker_pid", value=4242, status=Status.CRITICAL),
        ],
    )


def proposal(
    category: str,
    evidence: list[str],
    action: dict[str, Any] | None,
    root: str = "payments-db",
) -> Proposal:
    return Proposal.model_validate(
        {
            "diagnosis": {
                "root_cause": root,
                "category": category,
                "summary": f"{root}: {category}",
                "confidence": 0.9,
                "evidence": evidence,
            },
            "action": action,
        }
    )


def test_backed_when_the_signature_matches_and_the_quote_is_real(tmp_path: Path) -> None:
    inp = make_input(tmp_path, findings=[*make_findings(), lock_finding()])
    p = proposal("blocking-lock", ["blocker pid 4242 idle in transaction"], TERMINATE)
    assert unbacked_reason(p, inp) is None


def test_a_category_whose_signature_does_not_match_is_not_acted_on(tmp_path: Path) -> None:
    """The weak model's answer for a blocking lock: confident, valid JSON, 'cache-full'."""
    inp = make_input(tmp_path, findings=[*make_findings(), lock_finding()])
    p = proposal("cache-full", ["blocker pid 4242 idle in transaction"], TERMINATE)
    why = unbacked_reason(p, inp)
    assert why is not None and "cache-full signature does not match at payments-db" in why
    assert "payments-db:blocking-lock" in why  # what did match, for the reader


def test_invented_evidence_is_not_acted_on(tmp_path: Path) -> None:
    inp = make_input(tmp_path, findings=[*make_findings(), lock_finding()])
    p = proposal("blocking-lock", ["pg_locks shows 12 waiting sessions on merchants"], TERMINATE)
    why = unbacked_reason(p, inp)
    assert why is not None and "does not occur in this run's unhealthy findings" in why


@pytest.mark.parametrize("evidence", [[], [""], ["pool"]])
def test_no_or_trivial_evidence_is_not_acted_on(tmp_path: Path, evidence: list[str]) -> None:
    inp = make_input(tmp_path, findings=[*make_findings(), lock_finding()])
    assert unbacked_reason(proposal("blocking-lock", evidence, TERMINATE), inp) is not None


def test_evidence_from_a_healthy_finding_backs_nothing(tmp_path: Path) -> None:
    inp = make_input(tmp_path)  # fraud-svc is OK: "200 in 12 ms"
    p = proposal("pool-starvation", ["200 in 12 ms"], TERMINATE)
    why = unbacked_reason(p, inp)
    assert why is not None and "does not occur" in why


def test_the_action_must_act_on_the_root_cause_it_claims(tmp_path: Path) -> None:
    inp = make_input(tmp_path)
    p = proposal("pool-starvation", ["connections 100/100"], RESTART)  # restarts payments-api
    why = unbacked_reason(p, inp)
    assert why is not None and "targets 'payments-api'" in why


def test_nothing_to_act_on_when_every_finding_is_healthy(tmp_path: Path) -> None:
    ok = [Finding(node="fraud-svc", skill="http-health", status=Status.OK, summary="200 in 12 ms")]
    p = proposal("pool-starvation", ["200 in 12 ms"], TERMINATE)
    assert "nothing to act on" in (unbacked_reason(p, make_input(tmp_path, findings=ok)) or "")


def test_a_healthy_claim_while_a_node_is_critical_is_refused(tmp_path: Path) -> None:
    inp = make_input(tmp_path)
    why = false_health_reason(proposal("healthy", [], None, root="payments-api"), inp)
    assert why is not None and "payments-db" in why


@pytest.mark.parametrize(
    "summary", ["0" * 400, "0 0 0 0 0 0", "", "lock", "a " + "very " * 200 + "long summary"]
)
def test_a_summary_must_be_a_short_sentence(summary: str) -> None:
    assert summary_reason(summary) is not None


async def test_an_unbacked_answer_is_sent_back_then_the_rules_answer_saying_why(
    tmp_path: Path,
) -> None:
    seen: list[str] = []

    def model(messages: list[ModelMessage], info: AgentInfo):
        seen.append(str(messages[-1]))
        return final(
            info,
            {
                "diagnosis": {
                    "root_cause": "payments-db",
                    "category": "cache-full",
                    "summary": "the cache is full",
                    "confidence": 0.99,
                    "evidence": ["redis used_memory 100%"],
                },
                "action": TERMINATE,
            },
        )

    rules = FixedReasoner(
        Proposal(
            diagnosis=Diagnosis(
                root_cause="payments-db", category="unknown", summary="rules", confidence=0.2
            ),
            escalate_reason="no signature matches these findings",
        )
    )
    r = ModelReasoner(FunctionModel(model), fallback=rules)
    result = await r.propose(make_input(tmp_path))

    assert result.action is None and rules.calls == 1
    assert "not backed by this run's findings" in result.rationale
    assert len(seen) == 1 + r.config.max_retries  # first answer, then each retry
    assert "does not occur in this run's unhealthy findings" in seen[1]
    [call] = r.ledger.calls
    assert not call.ok and call.error and "not backed" in call.error


async def test_hybrid_refuses_an_unbacked_answer_from_any_model_reasoner(tmp_path: Path) -> None:
    """A reasoner that is not ``ModelReasoner`` (no validator of its own) is checked too."""
    rules = FixedReasoner(
        Proposal(
            diagnosis=Diagnosis(
                root_cause="payments-db", category="unknown", summary="rules", confidence=0.2
            ),
            escalate_reason="no signature matches these findings",
        )
    )
    unbacked = proposal("cache-full", ["redis is completely full"], TERMINATE)
    unbacked.diagnosis.reasoner = "model"
    p = await HybridReasoner(rules, FixedReasoner(unbacked, name="model")).propose(
        make_input(tmp_path)
    )
    assert p.action is None and "not acting on the model's proposal" in (p.escalate_reason or "")

    healthy = proposal("healthy", [], None, root="payments-api")
    healthy.diagnosis.reasoner = "model"
    p = await HybridReasoner(rules, FixedReasoner(healthy, name="model")).propose(
        make_input(tmp_path)
    )
    assert p.diagnosis.category == "unknown" and "contradicts" in (p.escalate_reason or "")
