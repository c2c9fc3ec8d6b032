"""Summaries written by a (scripted) model, kept only when they keep every section."""

from __future__ import annotations

from pathlib import Path

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel
from tests.unit.test_memory_helpers import oom_run
from tests.unit.test_model_support import final, no_model_requests, user_text

from rootloop.memory import Memory, MemoryConfig
from rootloop.memory.summary import SECTIONS
from rootloop.reasoning.summarize import ModelSummarizer
from rootloop.redact import Redactor

__all__ = ["no_model_requests"]
SECRET = "hunter2-summary-secret"


def writer(seen: list[str], sections=SECTIONS) -> FunctionModel:
    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(user_text(messages))
        body = "\n\n".join(f"## {s}\nWritten by the model." for s in sections)
        return final(info, {"short": body, "detailed": body + "\n\nMore detail."})

    return FunctionModel(fn)


async def test_model_summaries_are_archived_and_counted(tmp_path: Path, no_model_requests):
    ctx, findings, _ = oom_run("run-1", fixed=False)
    ctx.notes.append(f"password={SECRET}")
    seen: list[str] = []
    summarizer = ModelSummarizer(writer(seen))
    mem = Memory(tmp_path, MemoryConfig(embeddings="off"))
    archived = await mem.archive_async(ctx, findings, Redactor({SECRET}), summarizer)
    assert archived.summary_source == "model"
    assert "Written by the model." in (archived.directory / "summary-short.md").read_text()
    assert "<data>" in seen[0] and "## Draft: short" in seen[0]
    assert SECRET not in seen[0]  # memory redacts before any model sees the run
    assert summarizer.ledger.totals().calls == 1


async def test_a_summary_missing_a_section_falls_back_to_the_template(
    tmp_path: Path, no_model_requests
):
    ctx, findings, _ = oom_run("run-2", fixed=False)
    summarizer = ModelSummarizer(writer([], sections=SECTIONS[:3]))
    mem = Memory(tmp_path, MemoryConfig(embeddings="off"))
    archived = await mem.archive_async(ctx, findings, Redactor(), summarizer)
    assert archived.summary_source.startswith("template")
    text = (archived.directory / "summary.md").read_text()
    assert all(f"## {s}" in text for s in SECTIONS)
