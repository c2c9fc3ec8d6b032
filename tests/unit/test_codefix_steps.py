"""The code-fix step protocol without a model: the one output tool's schema, and the
transcript that stays within the prompt budget however long the run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_ai import Agent, ToolOutput
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from rootloop.reasoning.codefix_steps import (
    STEP_TOOL,
    EditStep,
    FinishStep,
    Step,
    Transcript,
    observation,
)


def output_tools() -> list[Any]:
    seen: list[Any] = []

    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.extend(info.output_tools)
        args = {"step": {"kind": "finish", "title": "done"}}
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, args)])

    Agent(FunctionModel(fn), output_type=ToolOutput(Step, name=STEP_TOOL)).run_sync("go")
    return seen


def walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(d for v in node.values() for d in walk(v))]
    if isinstance(node, list):
        return [d for v in node for d in walk(v)]
    return []


def test_the_union_is_one_output_tool_with_every_kind() -> None:
    [tool] = output_tools()
    schema = tool.parameters_json_schema
    kinds = {d["const"] for d in walk(schema) if "const" in d}
    assert tool.name == STEP_TOOL
    assert kinds == {"list_files", "read_file", "search", "edit", "run_tests", "finish"}


def test_the_schema_has_no_length_bounds_a_grammar_would_unroll() -> None:
    """llama.cpp turns maxLength into nested rules; 2,000 killed the server (measured)."""
    [tool] = output_tools()
    bounds = {"maxLength", "maxItems", "maxProperties", "maxContains"}
    assert not [d for d in walk(tool.parameters_json_schema) if bounds & d.keys()]


@pytest.mark.parametrize(
    "args",
    [
        {"step": {"kind": "merge", "branch": "main"}},
        {"step": {"kind": "edit", "path": "a.py"}},
        {"step": {"kind": "read_file", "path": "a.py", "shell": "rm -rf /"}},
        {"kind": "run_tests"},
    ],
)
def test_what_is_not_a_step_does_not_validate(args: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Step.model_validate(args)


def answer(n: int, args: dict[str, Any] | None = None) -> ModelResponse:
    args = args or {"step": {"kind": "read_file", "path": f"f{n}.py"}}
    return ModelResponse(parts=[ToolCallPart(STEP_TOOL, args, tool_call_id=f"call-{n}")])


def size(messages: list[ModelMessage]) -> int:
    total = 0
    for m in messages:
        for p in m.parts:
            if isinstance(p, ToolCallPart):
                total += len(p.args_as_json_str())
            elif isinstance(p, UserPromptPart | TextPart):
                total += len(str(p.content))
    return total


def test_the_first_request_is_the_task() -> None:
    t = Transcript("fix the average", budget_chars=4000)
    [req] = t.messages()
    assert isinstance(req, ModelRequest) and req.parts[0].content == "fix the average"


def test_a_long_run_stays_within_the_budget_newest_first() -> None:
    budget = 6000
    t = Transcript("TASK " * 200, budget_chars=budget)
    for n in range(1, 31):
        t.add(answer(n), observation(n, f"read_file 'f{n}.py'", f"body {n} " + "x" * 1500))

    messages = t.messages()

    assert size(messages) <= budget
    last = messages[-1]
    assert isinstance(last, ModelRequest)
    assert "Step 30: read_file 'f30.py'" in str(last.parts[-1].content)  # type: ignore[union-attr]
    assert "x" * 1000 in str(last.parts[-1].content)  # type: ignore[union-attr]
    text = "\n".join(str(getattr(p, "content", "")) for m in messages for p in m.parts)
    assert "TASK TASK" in text  # the task stays
    assert "left out to fit the token budget" in text or "dropped to fit" in text
    assert t.dropped > 0


def test_every_call_in_the_history_has_its_return() -> None:
    """OpenAI's API rejects an assistant tool call that no tool message answers."""
    t = Transcript("task", budget_chars=20_000)
    t.add(answer(1), observation(1, "read_file 'a.py'", "a"))
    t.add(ModelResponse(parts=[TextPart("prose, not a step")]), observation(2, "invalid", "b"))
    t.add(answer(3), observation(3, "read_file 'c.py'", "c"))
    messages = t.messages()
    calls = [p.tool_call_id for m in messages for p in m.parts if isinstance(p, ToolCallPart)]
    returns = [p.tool_call_id for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
    assert calls == returns == ["call-1", "call-3"]
    assert isinstance(messages[-1], ModelRequest)
    kinds = [type(m).__name__ for m in messages]
    assert kinds == ["ModelRequest", *["ModelResponse", "ModelRequest"] * 3]


def test_a_long_edit_is_cut_in_the_history_but_described_in_its_observation() -> None:
    big = {"step": EditStep(kind="edit", path="a.py", search="x", replace="y" * 5000).model_dump()}
    t = Transcript("task", budget_chars=4000)
    t.add(answer(1, big), observation(1, "edit 'a.py' (1 characters replaced by 5000)", "ok"))
    messages = t.messages()
    assert size(messages) <= 4000
    label, shown = messages[1].parts
    assert isinstance(label, TextPart) and label.content.startswith("Step 1: edit 'a.py'")
    assert isinstance(shown, ToolCallPart) and len(shown.args_as_json_str()) < 1000
    assert json.loads(shown.args_as_json_str())["step"]["kind"] == "cut"


def test_finish_carries_the_output() -> None:
    s = Step.model_validate({"step": {"kind": "finish", "title": "Guard the average"}})
    assert isinstance(s.step, FinishStep) and s.step.summary == ""
