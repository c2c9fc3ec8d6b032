"""The code-fix agent in a real git repository with a real failing pytest test.

The model is pydantic-ai's ``FunctionModel``, scripted like a careful engineer: it
reads the stack trace in its prompt, opens the file the trace points at with a
read step, edits the failing line with an edit step, runs the repository's own
tests with a run_tests step and finishes, one step per request through the single
``next_step`` tool (the step protocol, ``rootloop.reasoning.codefix_steps``).
Everything else is real: files, git, pytest in a subprocess.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from rootloop.actions.gates import Gatekeeper
from rootloop.actions.types import ApplyPatch
from rootloop.models import Diagnosis, Evidence, Finding, Status
from rootloop.reasoning.base import Proposal
from rootloop.reasoning.codefix import CodeFixAgent, apply_edits, run_command
from rootloop.reasoning.hybrid import HybridReasoner
from rootloop.reasoning.model import ModelConfig, ModelReasoner, build_model
from rootloop.reasoning.usage import UsageLedger
from tests.integration.test_model_wire import TEXT_ONLY, Reply, chat_server, ok, tool_call
from tests.unit.test_model_support import (
    FixedReasoner,
    final,
    make_input,
    no_model_requests,
    user_text,
)

pytestmark = pytest.mark.usefixtures("no_model_requests")
__all__ = ["chat_server", "no_model_requests"]

STATS = '''\
"""Order statistics for the pricing page."""


def average_order_value(totals: list[float]) -> float:
    return sum(totals) / len(totals)
'''
TEST = """\
from pricing.stats import average_order_value


def test_average_of_no_orders_is_zero():
    assert average_order_value([]) == 0


def test_average():
    assert average_order_value([10.0, 20.0]) == 15.0
"""
TRACE = """\
Traceback (most recent call last):
  File "/srv/app/pricing/api.py", line 41, in pricing_page
    aov = average_order_value(day_totals)
  File "/srv/app/pricing/stats.py", line 5, in average_order_value
    return sum(totals) / len(totals)
ZeroDivisionError: division by zero"""
TEST_CMD = f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:randomly tests"
SECRET = "top-secret-do-not-read"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "payments-api"
    (root / "pricing").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pricing" / "__init__.py").write_text("")
    (root / "pricing" / "stats.py").write_text(STATS)
    (root / "tests" / "test_stats.py").write_text(TEST)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (tmp_path / "secret.txt").write_text(SECRET)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    return root


def findings() -> list[Finding]:
    return [
        Finding(
            node="payments-api/health",
            skill="http-health",
            status=Status.CRITICAL,
            summary="HTTP 500 on /pricing",
            evidence=[Evidence(kind="stack", title="pricing_page 500", text=TRACE)],
        )
    ]


DIAG = Diagnosis(
    root_cause="payments-api",
    category="code-bug",
    confidence=0.8,
    summary="average_order_value divides by zero when a day has no orders",
    evidence=["ZeroDivisionError: division by zero"],
)


def step(info: AgentInfo, kind: str, **fields: object) -> ModelResponse:
    """A scripted answer: one step through the single output tool the agent offers."""
    assert [t.name for t in info.output_tools] == ["next_step"] and not info.function_tools
    return ModelResponse(parts=[ToolCallPart("next_step", {"step": {"kind": kind, **fields}})])


def steps_taken(messages: list[ModelMessage]) -> int:
    return sum(isinstance(m, ModelResponse) for m in messages)


def last_observation(messages: list[ModelMessage]) -> str:
    """What rootloop sent back after the last step (the newest request's prompt)."""
    req = messages[-1]
    assert isinstance(req, ModelRequest)
    return "\n".join(str(p.content) for p in req.parts if isinstance(p, UserPromptPart))


def engineer(log: list[str]) -> FunctionModel:
    """The scripted code-fix model: trace -> two reads out of bounds -> read -> edit ->
    test -> finish, one step per request."""

    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        n = steps_taken(messages)
        if n == 0:
            frames = re.findall(r'File "([^"]+)", line (\d+)', user_text(messages))
            path, line = frames[-1]  # the innermost frame
            log.append(f"{path}:{line}")
            return step(info, "read_file", path="../secret.txt")
        if n == 1:
            log.append(last_observation(messages))
            return step(info, "read_file", path="/etc/hostname")
        if n == 2:
            log.append(last_observation(messages))
            path, line = log[0].split("/app/", 1)[1].split(":")
            return step(info, "read_file", path=path, start_line=int(line) - 1, end_line=int(line))
        if n == 3:
            text = last_observation(messages)
            log.append(text)
            m = re.search(r"^\s*5  (.*)$", text, re.M)
            assert m, text
            bad = m.group(1)
            return step(
                info,
                "edit",
                path="pricing/stats.py",
                search=bad,
                replace="    if not totals:\n        return 0.0\n" + bad,
            )
        if n == 4:
            log.append(last_observation(messages))
            return step(info, "run_tests")
        log.append(last_observation(messages))
        assert "PASSED" in log[-1]
        return step(
            info,
            "finish",
            title="Return 0 for the average of no orders",
            summary="average_order_value([]) divided by zero",
        )

    return FunctionModel(fn)


async def test_agent_fixes_the_bug_and_returns_a_patch(repo: Path) -> None:
    log: list[str] = []
    ledger = UsageLedger()
    agent = CodeFixAgent(engineer(log), ledger=ledger, test_timeout=120)
    before = await run_command(TEST_CMD, repo, 120)
    assert not before.passed and "ZeroDivisionError" in before.output

    result = await agent.fix(repo, DIAG, findings(), test_command=TEST_CMD, target="payments-api")

    assert log[0] == "/srv/app/pricing/stats.py:5"
    # outside the worktree: refused, and nothing of the file reached the model
    assert len(result.refusals) == 2
    assert "outside the worktree" in log[1] and "outside the worktree" in log[2]
    assert SECRET not in "".join(log)
    assert "return sum(totals) / len(totals)" in log[3]  # the read step's observation
    assert "Step 3: read_file 'pricing/stats.py' lines 4-5" in log[3]  # the step quoted
    assert "edited pricing/stats.py" in log[4]
    assert "PASSED" in log[5]
    assert result.tests_passed is True and result.error is None
    assert isinstance(result.action, ApplyPatch)
    assert result.action.title == "Return 0 for the average of no orders"
    assert [e.path for e in result.action.edits] == ["pricing/stats.py"]
    assert "+    if not totals:" in result.diff and "--- a/pricing/stats.py" in result.diff
    assert result.schema_change is False
    assert ledger.calls[0].purpose == "code-fix" and ledger.calls[0].requests == 6
    assert [s.kind for s in result.steps] == [
        "read_file",
        "read_file",
        "read_file",
        "edit",
        "run_tests",
        "finish",
    ]

    # the worktree is as it was: the change goes through the gates, then is applied
    assert (repo / "pricing" / "stats.py").read_text() == STATS
    assert git(repo, "status", "--porcelain") == ""
    inp = make_input(repo.parent)
    gate = Gatekeeper(inp.topology).check(result.action, inp.context, DIAG.key)
    assert gate.decision == "allow"
    assert apply_edits(repo, result.action.edits) == ["pricing/stats.py"]
    after = await run_command(TEST_CMD, repo, 120)
    assert after.passed, after.output
    assert "pricing/stats.py" in git(repo, "diff", "--stat")


async def test_a_migration_edit_is_a_schema_change(repo: Path) -> None:
    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        n = steps_taken(messages)
        if n == 0:
            return step(
                info,
                "edit",
                path="pricing/stats.py",
                search="    return sum(totals) / len(totals)",
                replace="    return sum(totals) / len(totals) if totals else 0.0",
            )
        if n == 1:
            return step(
                info,
                "edit",
                path="migrations/0002_orders_day.sql",
                search="",
                replace="ALTER TABLE orders ADD COLUMN day date;\n",
            )
        return step(info, "finish", title="Add orders.day", summary="index by day")

    result = await CodeFixAgent(FunctionModel(fn)).fix(
        repo, DIAG, findings(), test_command=TEST_CMD, target="payments-api"
    )
    assert result.schema_change is True
    assert result.tests_passed is True
    assert result.action.touches_schema
    assert not (repo / "migrations" / "0002_orders_day.sql").exists()  # restored
    inp = make_input(repo.parent)
    gate = Gatekeeper(inp.topology).check(result.action, inp.context, DIAG.key)
    assert gate.decision == "approval" and gate.gate == "schema"


async def test_an_untested_edit_is_not_proposed(repo: Path) -> None:
    """No test command: a model-written change that nothing verified is not proposed."""

    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if steps_taken(messages) == 0:
            return step(info, "edit", path="pricing/stats.py", search="len(totals)", replace="1")
        return step(info, "finish", title="Divide by one", summary="never fails")

    result = await CodeFixAgent(FunctionModel(fn)).fix(
        repo, DIAG, findings(), test_command=None, target="payments-api"
    )
    assert result.action.edits == () and result.tests_passed is None
    assert "no test command" in result.summary
    assert (repo / "pricing" / "stats.py").read_text() == STATS


async def test_step_budget_ends_a_wandering_agent(repo: Path) -> None:
    seen: list[str] = []

    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(last_observation(messages))
        return step(info, "list_files", path=".")

    cfg = ModelConfig(provider="openai", model="s", code_fix_steps=3)
    result = await CodeFixAgent(FunctionModel(fn), config=cfg).fix(
        repo, DIAG, findings(), test_command=TEST_CMD, target="payments-api"
    )
    assert result.action.edits == ()
    assert result.error and "step budget spent: 3 step(s)" in result.error
    assert result.usage is not None and result.usage.requests == 3
    assert [s.kind for s in result.steps] == ["list_files"] * 3
    # the same step with nothing edited since is not run again, and the model is told
    assert "pricing/stats.py" in seen[1]
    assert "NOT DONE: this is step 1 again" in seen[2]


async def test_an_edit_that_breaks_tests_is_not_proposed(repo: Path) -> None:
    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if steps_taken(messages) == 0:
            return step(
                info,
                "edit",
                path="pricing/stats.py",
                search="sum(totals) / len(totals)",
                replace="sum(totals) / (len(totals) + 1)",
            )
        return step(info, "finish", title="Avoid the division by zero", summary="off by one")

    result = await CodeFixAgent(FunctionModel(fn)).fix(
        repo, DIAG, findings(), test_command=TEST_CMD, target="payments-api"
    )
    assert result.tests_passed is False and result.action.edits == ()
    assert "tests still fail" in result.summary


async def test_hybrid_routes_a_code_fix_to_the_agent(repo: Path) -> None:
    """Rules: no signature. Model: a code change. Agent: the edits. One proposal out."""
    rules = FixedReasoner(
        Proposal(
            diagnosis=DIAG.model_copy(update={"category": "unknown"}),
            escalate_reason="no signature matches these findings",
        )
    )

    def diagnose(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return final(
            info,
            {
                "diagnosis": DIAG.model_dump(),
                "action": {
                    "kind": "apply-patch",
                    "target": "payments-api",
                    "title": "Guard the average against no orders",
                },
            },
        )

    log: list[str] = []
    h = HybridReasoner(rules, ModelReasoner(FunctionModel(diagnose)), CodeFixAgent(engineer(log)))
    inp = make_input(
        repo.parent, findings=findings(), extra={"worktree": str(repo), "test_command": TEST_CMD}
    )
    p = await h.propose(inp)
    assert isinstance(p.action, ApplyPatch) and len(p.action.edits) == 1
    assert h.last_code_fix is not None and h.last_code_fix.tests_passed
    assert "code fix: Return 0 for the average of no orders" in p.rationale


async def test_test_command_timeout_kills_it(tmp_path: Path) -> None:
    cmd = f"{sys.executable} -c 'import time; time.sleep(30)'"
    run = await run_command(cmd, tmp_path, 0.5)
    assert run.timed_out and not run.passed and run.exit_code is None


async def test_rules_code_change_goes_straight_to_the_agent(repo: Path) -> None:
    """The rules already chose a code change: no diagnosis call, the agent writes it."""
    patch = {"kind": "apply-patch", "target": "payments-api", "title": "fix the average"}
    rules = FixedReasoner(
        Proposal.model_validate({"diagnosis": DIAG.model_dump(), "action": patch})
    )
    asked: list[int] = []

    def diagnose(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        asked.append(1)
        return final(info, {"diagnosis": DIAG.model_dump(), "action": None})

    h = HybridReasoner(rules, ModelReasoner(FunctionModel(diagnose)), CodeFixAgent(engineer([])))
    inp = make_input(
        repo.parent, findings=findings(), extra={"worktree": str(repo), "test_command": TEST_CMD}
    )
    p = await h.propose(inp)
    assert asked == [] and h.last_route.startswith("code-fix agent")
    assert isinstance(p.action, ApplyPatch) and p.action.edits
    assert p.diagnosis.reasoner == "rules"


# -- the step protocol over the wire, and answers that are not steps ---------------------


def step_reply(args: str, usage: tuple[int, int] = (700, 30)) -> Reply:
    """A chat.completion calling ``next_step`` with ``args`` (the raw arguments string)."""
    body = tool_call(args)
    body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] = "next_step"
    body["usage"].update(
        prompt_tokens=usage[0], completion_tokens=usage[1], total_tokens=sum(usage)
    )
    return ok(body)


def as_step(kind: str, **fields: object) -> str:
    return json.dumps({"step": {"kind": kind, **fields}})


async def test_each_request_names_the_one_step_tool_and_bad_answers_are_observations(
    chat_server: Any, repo: Path
) -> None:
    """Over real HTTP: one tool, named in ``tool_choice``; prose, cut JSON, an unknown
    kind and a refused path each cost a step and come back as what the model sees next."""
    server = chat_server(
        step_reply(as_step("read_file", path="pricing/stats.py", end_line=9)),
        ok(TEXT_ONLY),
        step_reply('{"step": {"kind": "edit", "path": "pricing/st'),
        step_reply(as_step("merge", branch="main")),
        step_reply(as_step("read_file", path="../secret.txt")),
        step_reply(
            as_step(
                "edit",
                path="pricing/stats.py",
                search="    return sum(totals) / len(totals)",
                replace="    return sum(totals) / len(totals) if totals else 0.0",
            )
        ),
        step_reply(as_step("finish", title="Guard the empty average", summary="0 for none")),
    )
    config = ModelConfig(
        provider="openai", model="small", base_url=server.url, max_input_tokens=2000
    )
    agent = CodeFixAgent(build_model(config, env={}), config=config, test_timeout=120)

    result = await agent.fix(repo, DIAG, findings(), test_command=TEST_CMD, target="payments-api")

    assert [s.kind for s in result.steps] == [
        "read_file", "invalid", "invalid", "invalid", "read_file", "edit", "finish",
    ]  # fmt: skip
    assert result.tests_passed is True and len(result.action.edits) == 1
    assert result.refusals == ["'../secret.txt' is outside the worktree"]
    for req in server.requests:
        assert [t["function"]["name"] for t in req["tools"]] == ["next_step"]
        assert req["tool_choice"] == {"type": "function", "function": {"name": "next_step"}}
        called = [c["id"] for m in req["messages"] for c in m.get("tool_calls") or []]
        answered = [m["tool_call_id"] for m in req["messages"] if m["role"] == "tool"]
        assert called == answered  # every call answered, as OpenAI's API requires
        # llama-cpp-python's server answers 500 to an assistant message with null content
        assert all(isinstance(m.get("content"), str) for m in req["messages"])
        assert req["messages"][-1]["role"] == "user"
    sent = [req["messages"][-1]["content"] for req in server.requests[1:]]
    assert "Step 1: read_file 'pricing/stats.py' lines 1-9" in sent[0]
    assert "return sum(totals) / len(totals)" in sent[0]
    assert "Step 2: your answer was not a valid step" in sent[1]
    assert "Step 3: your answer was not a valid step" in sent[2]
    assert "merge" in sent[3] and "not a valid step" in sent[3]
    assert "outside the worktree" in sent[4] and SECRET not in "".join(sent)
    assert "edited pricing/stats.py" in sent[5]
    assert result.usage is not None
    assert (result.usage.requests, result.usage.input_tokens) == (7, 700 * 6 + 1900)
    assert [s.input_tokens for s in result.steps] == [700, 1900, 700, 700, 700, 700, 700]
    assert (repo / "pricing" / "stats.py").read_text() == STATS


async def test_secrets_never_reach_the_model(repo: Path) -> None:
    """A secret in the findings or in a file the agent reads is masked before it is sent."""
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    (repo / "settings.py").write_text(f"GITHUB_TOKEN = '{token}'\n")
    seen: list[str] = []

    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(user_text(messages))
        if steps_taken(messages) == 0:
            return step(info, "read_file", path="settings.py")
        return step(info, "finish", title="Nothing to change")

    leaky = findings()
    leaky[0].evidence[0].text += f"\nAuthorization: token {token}"
    await CodeFixAgent(FunctionModel(fn)).fix(
        repo, DIAG, leaky, test_command=TEST_CMD, target="payments-api"
    )
    assert len(seen) == 2 and "GITHUB_TOKEN" in seen[1]
    assert token not in "".join(seen)


async def test_a_model_that_never_answers_a_step_ends_within_the_budget(repo: Path) -> None:
    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("I would look at the stats module first.")])

    cfg = ModelConfig(provider="openai", model="s", code_fix_steps=4)
    result = await CodeFixAgent(FunctionModel(fn), config=cfg).fix(
        repo, DIAG, findings(), test_command=TEST_CMD, target="payments-api"
    )
    assert [s.kind for s in result.steps] == ["invalid"] * 4
    assert result.error and "step budget spent" in result.error
    assert result.action.edits == () and result.tests_passed is None


async def test_the_task_says_where_the_trace_is_in_the_repository(repo: Path) -> None:
    """The trace names /srv/app/pricing/stats.py; the repository has pricing/stats.py."""
    (repo / "vendor" / "pricing").mkdir(parents=True)
    (repo / "vendor" / "pricing" / "api.py").write_text("")  # api.py: one match, kept
    (repo / "other").mkdir()
    (repo / "other" / "stats.py").write_text("")  # a second stats.py: the longer match wins
    prompts: list[str] = []

    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompts.append(user_text(messages))
        return step(info, "finish", title="Nothing yet")

    await CodeFixAgent(FunctionModel(fn)).fix(
        repo, DIAG, findings(), test_command=TEST_CMD, target="payments-api"
    )
    frames = prompts[0].split("innermost first:", 1)[1]
    assert frames.index("pricing/stats.py line 5 in average_order_value") < frames.index(
        "vendor/pricing/api.py line 41 in pricing_page"
    )
    assert "other/stats.py" not in frames
