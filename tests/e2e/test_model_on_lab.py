"""The model reasoner in the whole loop: a lab fault no runbook covers, fixed by a code edit.

The model is pydantic-ai's ``FunctionModel`` scripted like an engineer (no network):
the diagnosing model names the bad deploy and asks for a code change; the code-fix
agent reads the stack trace in its prompt, opens the file in the run's worktree,
edits it, runs the repository's tests; the loop then commits, pushes, waits for CI
and the deploy, and verifies. Everything but the model is real.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel

from rootloop import runner
from rootloop.models import Outcome
from rootloop.reasoning.codefix import CodeFixAgent
from rootloop.reasoning.hybrid import HybridReasoner
from rootloop.reasoning.model import ModelReasoner
from rootloop.reasoning.rules import RulesReasoner
from rootloop.reasoning.runbooks import Runbooks
from rootloop.reasoning.usage import UsageLedger
from rootloop_lab import Lab
from rootloop_lab.symptoms import wait_for_symptoms
from tests.integration.test_model_codefix import last_observation
from tests.integration.test_model_codefix import step as code_step
from tests.unit.test_model_support import final, no_model_requests, user_text

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("no_model_requests")]
__all__ = ["no_model_requests"]


def step(messages: list[ModelMessage]) -> int:
    return sum(isinstance(m, ModelResponse) for m in messages)


def diagnoser(seen: list[str]) -> FunctionModel:
    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(user_text(messages))
        return final(
            info,
            {
                "diagnosis": {
                    "root_cause": "payments-api",
                    "category": "bad-deploy",
                    "summary": "KeyError 'merchant_name' in app/receipts.py since the last deploy",
                    "confidence": 0.8,
                    "evidence": ["KeyError: 'merchant_name'"],
                },
                "action": {
                    "kind": "apply-patch",
                    "target": "payments-api",
                    "title": "receipts: fall back when a payment has no merchant name",
                    "edits": [],
                },
                "rationale": "the stack frames end in app/receipts.py",
            },
        )

    return FunctionModel(fn)


def engineer(log: list[str]) -> FunctionModel:
    """Trace -> read -> edit -> test -> finish, one step per request (the step protocol)."""

    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        n = step(messages)
        if n == 0:
            frames = re.findall(r"(app/[\w/]+\.py):(\d+)", user_text(messages))
            path, line = next(f for f in frames if f[0].endswith("receipts.py"))
            log.append(f"{path}:{line}")
            start, end = max(1, int(line) - 2), int(line) + 1
            return code_step(info, "read_file", path=path, start_line=start, end_line=end)
        if n == 1:
            text = last_observation(messages)
            log.append(text)
            assert "payment['merchant_name']" in text, text
            return code_step(
                info,
                "edit",
                path="app/receipts.py",
                search="{payment['merchant_name']}",
                replace="{payment.get('merchant_name') or 'merchant %s' % payment['merchant_id']}",
            )
        if n == 2:
            return code_step(info, "run_tests")
        log.append(last_observation(messages))
        return code_step(
            info,
            "finish",
            title="receipts: fall back when a payment has no merchant name",
            summary="old payments have no merchant_name",
        )

    return FunctionModel(fn)


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("lab") / "lab")
    saved = dict(os.environ)
    try:
        yield lab
    finally:
        lab.down()
        os.environ.clear()
        os.environ.update(saved)


def test_scripted_model_fixes_a_fault_no_runbook_covers(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    lab.inject("bad-deploy")
    os.environ.update(lab.env())
    wait_for_symptoms(lab.map_file, timeout=90)

    seen: list[str] = []
    log: list[str] = []
    ledger = UsageLedger()
    rules = RulesReasoner(runbooks=Runbooks(books={}))  # this service has no runbooks at all
    reasoner = HybridReasoner(
        rules,
        ModelReasoner(diagnoser(seen), fallback=rules, ledger=ledger),
        CodeFixAgent(engineer(log), ledger=ledger, test_timeout=120),
    )

    session = runner.Session.open(lab.map_file, tmp_path)
    ctx = asyncio.run(runner.run(session, session.new_context(lab.map_file), [], reasoner))

    assert ctx.status == "healthy", ctx.status_reason
    [entry] = ctx.history
    assert entry.action_detail is not None and entry.action_detail.kind == "apply-patch"
    assert [e.path for e in entry.action_detail.edits] == ["app/receipts.py"]
    assert entry.commit and entry.gha == "pass" and entry.outcome is Outcome.FIXED
    assert log[0].startswith("app/receipts.py:")  # it read the trace, then the file
    assert "PASSED" in log[-1] or "passed" in log[-1]  # and ran the repo's tests
    assert "KeyError" in seen[0]  # the findings reached the diagnosing model
    assert ctx.usage and ledger.totals().requests >= 5  # tokens accounted per run
