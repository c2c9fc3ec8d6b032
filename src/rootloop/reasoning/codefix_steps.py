"""The code-fix agent's step protocol: one step per model request, through one named tool.

Why steps and not the model's own tool calls: an agent with several tools needs
``tool_choice: "required"`` (or the server's native tool calling), and servers differ.
llama-cpp-python's server ignores ``"required"`` (the model answers prose) and its
``chatml-function-calling`` format answers it with HTTP 500; every OpenAI-compatible
server measured here does accept a *named* tool, which llama.cpp turns into a grammar
from the tool's JSON schema. So each request names the single ``next_step`` tool whose
argument is a ``Step``: a discriminated union of the six things the agent may do. The
answer is JSON of that schema even from a tiny model, and the schema, not the model's
tool-calling skill, decides what a step can be. rootloop then executes the step in the
bounded ``Workspace`` and sends what it saw back as the next request.

The transcript is bounded to the prompt budget: the task stays, the newest observation
is cut to fit, and older observations are replaced by a one-line summary, oldest first
(a small local server's context is a few thousand tokens). Observations quote the step
they answer, so a server whose chat template drops tool calls from the history (llama-cpp-
python's default template for a GGUF without one does) still shows the model what it did.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from rootloop.reasoning.codefix_workspace import PathRefused, StepFailed, Workspace
from rootloop.reasoning.prompt import CHARS_PER_TOKEN, DATA_TAG, data_block, fit

STEP_TOOL = "next_step"
ARGS_SHOWN = 600  # characters of an earlier step's arguments kept in the transcript
MIN_OBSERVATION = 400  # characters of the newest observation kept whatever the budget
NOTES = 200  # room for the notes that say what was cut or left out
RECEIVED = "step received; what it did follows"


class _StepBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListFilesStep(_StepBase):
    kind: Literal["list_files"]
    path: str = "."


class ReadFileStep(_StepBase):
    kind: Literal["read_file"]
    path: str
    start_line: int = 1
    end_line: int = 200


class SearchStep(_StepBase):
    kind: Literal["search"]
    pattern: str
    path: str = "."


class EditStep(_StepBase):
    kind: Literal["edit"]
    path: str
    search: str
    replace: str


class RunTestsStep(_StepBase):
    kind: Literal["run_tests"]


class FinishStep(_StepBase):
    """The end: what ``CodeFixOutput`` carries. The edits are taken from what was done.

    No ``max_length`` here on purpose: llama.cpp unrolls a length bound into nested
    grammar rules, and a bound of 2,000 made its grammar parser give up and the
    llama-cpp-python server process die (measured, docs/model.md). Lengths are cut
    after parsing instead (``CodeFixOutput``'s bounds); the answer is capped by
    ``max_output_tokens`` anyway.
    """

    kind: Literal["finish"]
    title: str = Field(min_length=3)
    summary: str = ""


AnyStep = ListFilesStep | ReadFileStep | SearchStep | EditStep | RunTestsStep | FinishStep


class Step(BaseModel):
    """One step. Wrapped in one model so pydantic-ai makes ONE output tool for the union."""

    step: Annotated[AnyStep, Field(discriminator="kind")]


STEP_GUIDE = f"""\
Each answer is exactly ONE step, given through the {STEP_TOOL} tool as
{{"step": {{"kind": ..., ...}}}}. The kinds:
- {{"kind": "list_files", "path": "."}}: the repository's files under a folder
- {{"kind": "read_file", "path": "a/b.py", "start_line": 1, "end_line": 80}}
- {{"kind": "search", "pattern": "a regex", "path": "."}}
- {{"kind": "edit", "path": "a/b.py", "search": "exact text, once in the file",
  "replace": "new text"}} (search "" creates a new file)
- {{"kind": "run_tests"}}: the repository's own test command
- {{"kind": "finish", "title": "short imperative title", "summary": "what changed"}}
After each step you get what it did, inside a <{DATA_TAG}> block."""


def describe(step: AnyStep) -> str:
    """One line naming a step, quoted back with its observation."""
    match step:
        case ListFilesStep(path=path):
            return f"list_files {path!r}"
        case ReadFileStep(path=path, start_line=a, end_line=b):
            return f"read_file {path!r} lines {a}-{b}"
        case SearchStep(pattern=pattern, path=path):
            return f"search {pattern[:100]!r} in {path!r}"
        case EditStep(path=path, search=search, replace=replace):
            return f"edit {path!r} ({len(search)} characters replaced by {len(replace)})"
        case RunTestsStep():
            return "run_tests"
        case FinishStep(title=title):
            return f"finish {title[:100]!r}"
    return "unknown step"  # pragma: no cover - the union is closed


@dataclass
class Turn:
    """One request's answer and what rootloop saw when it executed it."""

    response: ModelResponse  # the server's answer, as it came (an invalid one too)
    observation: str  # already redacted and framed as data where it quotes the repo


@dataclass
class Transcript:
    """The task, then every step and its observation, bounded to the prompt budget."""

    task: str
    budget_chars: int
    turns: list[Turn] = field(default_factory=list)
    dropped: int = 0  # observations (or whole steps) left out of the last request to fit

    def add(self, response: ModelResponse, observation: str) -> None:
        self.turns.append(Turn(response, observation))

    def messages(self) -> list[ModelMessage]:
        """The next request's ``message_history``; it ends with the request to send.

        The newest observation is kept (cut to what fits); older ones are kept in full
        from the newest back while they fit, else replaced by their first line; when
        even those lines do not fit, the oldest steps are left out and the task says so.
        """
        if not self.turns:
            return [ModelRequest(parts=[UserPromptPart(self.task)])]
        budget = self.budget_chars - NOTES  # what the notes added below may take
        # the newest observation is what the model must act on: up to half the budget
        want = min(len(self.turns[-1].observation), max(MIN_OBSERVATION, budget // 2))
        start = 0
        while start < len(self.turns) - 1 and self._floor(start, want) > budget:
            start += 1
        turns = self.turns[start:]
        older = [t.observation for t in turns[:-1]]
        shown = [_summary_line(o) for o in older]
        room = budget - self._floor(start, want) + want
        latest, _ = fit(turns[-1].observation, max(room, MIN_OBSERVATION), "observation")
        room -= len(latest)
        for i in reversed(range(len(older))):
            extra = len(older[i]) - len(shown[i])
            if extra > room:
                break
            shown[i] = older[i]
            room -= extra
        self.dropped = start + sum(1 for a, b in zip(shown, older, strict=True) if a is not b)
        task = self.task
        if start:
            task += f"\n\n[steps 1-{start} and what they did were left out to fit the token budget]"
        history: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart(task)])]
        for turn, text in zip(turns, [*shown, latest], strict=True):
            history.append(_shown(turn.response, turn.observation.split("\n", 1)[0]))
            history.append(ModelRequest(parts=[*_returns(turn.response), UserPromptPart(text)]))
        return history

    def _floor(self, start: int, want: int) -> int:
        """The least the request from turn ``start`` on costs: the task, every answer,
        a summary line per older observation and ``want`` of the newest."""
        turns = self.turns[start:]
        return (
            len(self.task)
            + sum(_answer_chars(t.response) for t in turns)
            + sum(len(_summary_line(t.observation)) for t in turns[:-1])
            + want
        )


def _summary_line(observation: str) -> str:
    first = observation.splitlines()[0] if observation else ""
    return f"{first[:200]}\n[its output was dropped to fit the token budget]"


def _answer_chars(response: ModelResponse) -> int:
    """What an earlier answer costs in the history: its parts, each cut, and a label."""
    return sum(min(len(_part_text(p)), ARGS_SHOWN + 40) for p in response.parts) + 200


def _part_text(part: Any) -> str:
    if isinstance(part, ToolCallPart):
        return part.args_as_json_str()
    return str(getattr(part, "content", ""))


def _shown(response: ModelResponse, label: str) -> ModelResponse:
    """An earlier answer as it goes back to the server: long arguments cut (they are
    described in the observation), and a text part naming the step in front of a bare
    tool call. Why the text: llama-cpp-python's server rejects an assistant message
    whose content is null (HTTP 500), which is how a bare tool call is sent, and its
    default template drops tool calls, so the model would not see what it did."""
    parts: list[Any] = []
    for p in response.parts:
        if isinstance(p, ToolCallPart):
            args = p.args_as_json_str()
            if len(args) > ARGS_SHOWN:
                args = json.dumps({"step": {"kind": "cut", "note": args[:ARGS_SHOWN]}})
            parts.append(ToolCallPart(p.tool_name, args, tool_call_id=p.tool_call_id))
        elif isinstance(p, TextPart):
            parts.append(TextPart(p.content[:ARGS_SHOWN]))
    if not any(isinstance(p, TextPart) and p.content.strip() for p in parts):
        parts.insert(0, TextPart(label[:200] or "(no answer)"))
    return ModelResponse(parts=parts, model_name=response.model_name)


def _returns(response: ModelResponse) -> list[Any]:
    """A return for every tool call of an answer: OpenAI's API requires one per call id."""
    return [
        ToolReturnPart(p.tool_name, RECEIVED, tool_call_id=p.tool_call_id)
        for p in response.parts
        if isinstance(p, ToolCallPart)
    ]


async def observe(ws: Workspace, n: int, step: AnyStep | None, problem: str = "") -> str:
    """Execute one step in the workspace; whatever happens is the next observation.

    A refused path, an edit that does not apply and an answer that was not a valid step
    are observations like any other (each cost a step): the run goes on, never crashes.
    """
    if step is None:
        return invalid(n, ws.redactor.text(problem))
    try:
        body = await _execute(ws, step)
    except PathRefused as exc:
        body = ws.refuse(exc)
    except StepFailed as exc:
        body = f"NOT DONE: {exc}"
    return observation(n, describe(step), ws.redactor.text(body))


async def _execute(ws: Workspace, step: AnyStep) -> str:
    """The step's effect in the workspace, as text for the model."""
    # listing and searching walk the repository (a search runs for up to its bound):
    # off the event loop, which also carries the run's other work
    match step:
        case ListFilesStep(path=path):
            listing = await asyncio.to_thread(ws.list_files, path)
            return data_block(ws.redactor.text(listing), "files", path=path[:200])
        case ReadFileStep(path=path, start_line=start, end_line=end):
            return ws.read(path, start, end)
        case SearchStep(pattern=pattern, path=path):
            return await asyncio.to_thread(ws.search, pattern, path)
        case EditStep(path=path, search=search, replace=replace):
            return ws.edit(path, search, replace)
        case RunTestsStep():
            run = await ws.run_tests()
            verdict = "PASSED" if run.passed else ("TIMED OUT" if run.timed_out else "FAILED")
            return f"{verdict} (exit {run.exit_code}) {run.command}\n" + data_block(
                run.output, "test_output"
            )
    raise StepFailed(f"'{step.kind}' is not something this agent can do")


def observation(n: int, what: str, body: str) -> str:
    """What step ``n`` did, as the next prompt: the step named, the result, the ask."""
    return f"Step {n}: {what}\n{body}\n\nAnswer with the next step."


def repeated(n: int, step: AnyStep, earlier: int) -> str:
    """A step asked again with nothing edited since: it would show the same, so it is not
    run again (it still cost a step), and the model is told so."""
    return observation(
        n,
        describe(step),
        f"NOT DONE: this is step {earlier} again, and nothing was edited since, so it "
        f"would show the same (see step {earlier}). Take a different step.",
    )


def invalid(n: int, reason: str) -> str:
    """An answer that is not a valid step is an observation too (it cost a step)."""
    return observation(
        n,
        "your answer was not a valid step",
        data_block(reason, "step_error") + f"\nGive exactly one step through {STEP_TOOL}.",
    )


def budget_chars(max_input_tokens: int, system_prompt: str) -> int:
    """The transcript's share of the prompt budget (the system prompt and framing aside)."""
    return max_input_tokens * CHARS_PER_TOKEN - len(system_prompt) - 600
