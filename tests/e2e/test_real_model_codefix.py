"""The code-fix agent with the real, weak local model, in a real git repository.

The step protocol is what is under test here: each request names the one ``next_step``
tool, llama.cpp turns its schema into a grammar, and the 270M model's answer is a step
rootloop can execute. Before it, this model never made a single tool call. What must
hold whatever the model does: it took at least one valid step (the mechanism works);
nothing outside the worktree changed and the worktree is put back; nothing is committed;
an edit is proposed only when rootloop's own run of the repository's tests passes
(and applying it really makes them pass); a kept diff that touches the schema pauses at
the gate; the steps, the answer sizes and the time are bounded; and the tokens in the
ledger are the server's. Whether the model fixes the bug is not asserted (it is far too
weak to be relied on); the figures are in docs/model.md.

Few steps on purpose: each answer takes 20 s to a few minutes on a shared 2-core machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rootloop.actions.gates import Gatekeeper
from rootloop.models import Diagnosis, Evidence, Finding, Status
from rootloop.reasoning.codefix import CodeFixAgent, apply_edits, run_command
from rootloop.reasoning.model import build_model
from tests.fixtures.llm import LocalModel
from tests.integration.test_model_codefix import git
from tests.unit.test_model_support import make_input

pytestmark = [pytest.mark.real_model]

STEPS = 4
TRACE = """\
Traceback (most recent call last):
  File "/srv/app/tests/test_stats.py", line 5, in test_empty_average_is_zero
    assert average([]) == 0
  File "/srv/app/stats.py", line 2, in average
    return sum(values) / len(values)
ZeroDivisionError: division by zero"""
TEST_CMD = f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:randomly tests"


def make_repo(root: Path) -> Path:
    """A tiny committed repository whose one test fails with a ZeroDivisionError."""
    repo = root / "svc"
    (repo / "tests").mkdir(parents=True)
    (repo / "stats.py").write_text(
        "def average(values):\n    return sum(values) / len(values)\n", encoding="utf-8"
    )
    (repo / "tests" / "test_stats.py").write_text(
        "from stats import average\n\n\ndef test_empty_average_is_zero():\n"
        "    assert average([]) == 0\n",
        encoding="utf-8",
    )
    (repo / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


async def test_the_real_model_takes_real_steps_in_a_real_worktree(
    real_model: LocalModel, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    (tmp_path / "outside.txt").write_text("not the agent's\n")
    before, head = snapshot(tmp_path), git(repo, "rev-parse", "HEAD")
    config = real_model.config(code_fix_steps=STEPS)
    agent = CodeFixAgent(build_model(config), config=config, test_timeout=120)
    diagnosis = Diagnosis(
        root_cause="payments-api",
        category="code-bug",
        summary="average() divides by zero on an empty list",
        confidence=0.8,
        evidence=["ZeroDivisionError: division by zero"],
    )
    findings = [
        Finding(
            node="payments-api/health",
            skill="http-health",
            status=Status.CRITICAL,
            summary="HTTP 500 on /stats",
            evidence=[Evidence(kind="stack", title="500 on /stats", text=TRACE)],
        )
    ]

    result = await agent.fix(
        repo, diagnosis, findings, test_command=TEST_CMD, target="payments-api"
    )

    print(f"\ncode fix with the real model: {result.note()}; error={result.error}")
    for s in result.steps:
        print(f"  {s.model_dump_json()}")
    # the mechanism: the server's answer was a step rootloop could execute
    assert any(s.kind != "invalid" for s in result.steps), result.steps
    # bounded: steps, answer sizes, time; every answer's tokens are the server's
    assert 1 <= len(result.steps) <= STEPS
    assert all(0 < s.output_tokens <= config.max_output_tokens for s in result.steps)
    assert all(s.input_tokens > 0 for s in result.steps)
    [call] = agent.ledger.calls
    assert call.purpose == "code-fix" and call.requests == len(result.steps)
    assert call.input_tokens == sum(s.input_tokens for s in result.steps)
    assert call.seconds <= agent._run_timeout() + 120
    # nothing outside the worktree changed, the worktree is as it was, nothing committed
    assert snapshot(tmp_path) == before
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "HEAD") == head
    # an edit is proposed only when rootloop's own test run passed on it
    if result.action.edits:
        assert result.tests_passed is True and result.diff
        (tmp_path / "gate").mkdir()
        inp = make_input(tmp_path / "gate")
        gate = Gatekeeper(inp.topology).check(result.action, inp.context, diagnosis.key)
        if result.schema_change or result.action.touches_schema:
            assert gate.decision == "approval" and gate.gate == "schema"
        apply_edits(repo, result.action.edits)
        assert (await run_command(TEST_CMD, repo, 120)).passed
    else:
        assert result.diff == "" and not result.schema_change
