"""Archive: files, both summaries with every section, summarizers, transcripts, redaction."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.unit.test_memory_helpers import entry, oom_diagnosis, oom_run

from rootloop.context import DebugContext
from rootloop.events import Event
from rootloop.memory import (
    SECTIONS,
    Memory,
    MemoryConfig,
    Summaries,
    SummaryInput,
    read_transcript,
)
from rootloop.memory.digest import estimate_tokens
from rootloop.models import Evidence, Finding, Status
from rootloop.redact import Redactor


@pytest.fixture
def mem(tmp_path: Path) -> Memory:
    m = Memory(tmp_path / "memory", MemoryConfig(embeddings="off"))
    yield m
    m.close()


def sections_of(md: str) -> list[str]:
    return [line[3:].strip() for line in md.splitlines() if line.startswith("## ")]


def section(md: str, name: str) -> str:
    body = md.split(f"## {name}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def test_archive_writes_context_and_two_summaries_with_every_section(mem: Memory) -> None:
    ctx, findings, _ = oom_run()
    out = mem.archive(ctx, findings)
    d = mem.root / "runs" / ctx.run_id
    for name in ("context.json", "findings.json", "summary-short.md", "summary.md"):
        assert (d / name).is_file(), name
    saved = DebugContext.model_validate_json((d / "context.json").read_text())
    assert saved.history[0].action_fingerprint == ctx.history[0].action_fingerprint
    for md in (out.short_summary, out.detailed_summary):
        assert sections_of(md) == list(SECTIONS)
    short = out.short_summary
    assert "force a new deployment of checkout" in section(short, "Tried and did not help")
    assert "set ECS task memory to 2048" in section(short, "Fix")
    assert "checkout" in section(short, "Root cause") and "oom" in section(short, "Root cause")
    assert "Review and merge" in section(short, "Next steps")
    assert out.summary_source == "template"
    latest = mem.root / "services" / "checkout" / "latest_summary_short.md"
    assert latest.read_text() == short


def test_summaries_stay_within_budgets_on_a_long_run(mem: Memory) -> None:
    ctx, findings, restart = oom_run(fixed=False)
    d = oom_diagnosis()
    ctx.history = [entry(i, d, restart, f"failed: attempt {i} " + "x" * 300) for i in range(1, 41)]
    many = [
        Finding(
            node=f"svc-{i}",
            skill="http-health",
            status=Status.CRITICAL,
            summary="down " + "y" * 200,
            evidence=[Evidence(title="log", text="z" * 2000)],
        )
        for i in range(60)
    ]
    out = mem.archive(ctx, findings + many)
    assert estimate_tokens(out.short_summary) <= 520
    assert estimate_tokens(out.detailed_summary) <= 2050
    assert estimate_tokens(out.detailed_summary) > 1000  # the detailed one uses its room
    for md in (out.short_summary, out.detailed_summary):
        assert sections_of(md) == list(SECTIONS)
    assert "No fix applied yet." in section(out.short_summary, "Fix")
    assert "A human takes over" in section(out.short_summary, "Next steps")


class ModelSummarizer:
    name = "model"

    def __init__(self, short: str, detailed: str) -> None:
        self.short, self.detailed = short, detailed
        self.seen: SummaryInput | None = None

    def summarize(self, inp: SummaryInput) -> Summaries:
        self.seen = inp
        return Summaries(short=self.short, detailed=self.detailed, source=self.name)


FULL = "".join(f"## {s}\nmodel text for {s}\n" for s in SECTIONS)


def test_a_summarizer_writes_the_summaries_when_it_keeps_the_sections(mem: Memory) -> None:
    ctx, findings, _ = oom_run()
    s = ModelSummarizer(FULL + "token ghp_" + "a" * 36, FULL)
    out = mem.archive(ctx, findings, summarizer=s)
    assert out.summary_source == "model"
    assert "model text for Root cause" in out.short_summary
    assert "ghp_" not in out.short_summary  # model output is redacted too
    assert s.seen is not None and s.seen.context.run_id == ctx.run_id


def test_a_summarizer_that_drops_a_section_or_fails_is_replaced_by_the_template(
    mem: Memory,
) -> None:
    ctx, findings, _ = oom_run()
    partial = FULL.replace("## Next steps\n", "")
    out = mem.archive(ctx, findings, summarizer=ModelSummarizer(partial, FULL))
    assert out.summary_source.startswith("template (model left out: Next steps")
    assert "Review and merge" in out.short_summary

    class Broken:
        name = "broken"

        def summarize(self, inp: SummaryInput) -> Summaries:
            raise RuntimeError("provider down")

    out = mem.archive(ctx, findings, summarizer=Broken())
    assert out.summary_source == "template (broken failed: RuntimeError)"
    assert sections_of(out.detailed_summary) == list(SECTIONS)


async def test_archive_async_awaits_an_async_summarizer(mem: Memory) -> None:
    class Async:
        name = "async-model"

        async def summarize(self, inp: SummaryInput) -> Summaries:
            return Summaries(short=FULL, detailed=FULL + "more")

    ctx, findings, _ = oom_run()
    out = await mem.archive_async(ctx, findings, summarizer=Async())
    assert out.summary_source == "async-model"
    assert out.detailed_summary.endswith("more")


def test_archiving_again_at_a_later_pause_replaces_the_run(mem: Memory) -> None:
    ctx, findings, _ = oom_run(fixed=False)
    mem.archive(ctx, findings)
    ctx2, _, _ = oom_run(fixed=True)
    mem.archive(ctx2, findings)
    runs = mem.recent()
    assert [r.run_id for r in runs] == [ctx.run_id]
    assert runs[0].status == "healthy"
    assert len(mem.index.db.execute("SELECT * FROM actions").fetchall()) == 2


def test_recorder_appends_redacted_lines_flushed_before_close(mem: Memory) -> None:
    red = Redactor({"s3cr3t-value"})
    rec = mem.recorder("20261120-090000-aaaa", "checkout", red)
    rec(Event(kind="run-start", run_id="20261120-090000-aaaa", data={"service": "checkout"}))
    rec(
        Event(
            kind="finding",
            run_id="20261120-090000-aaaa",
            message="dsn postgres://app:hunter22@db:5432/orders",
            data={"k": "s3cr3t-value"},
        )
    )
    path = mem.root / "runs" / "20261120-090000-aaaa" / "transcript.jsonl"
    text = path.read_text()  # before close: every line already flushed
    assert len(text.splitlines()) == 2
    assert "hunter22" not in text and "s3cr3t-value" not in text and "***" in text
    rec.close()
    assert [e.kind for e in read_transcript(path)] == ["run-start", "finding"]
    assert mem.recent()[0].status == "running"  # registered at once for 'history'


def test_a_killed_run_keeps_its_transcript(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    code = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from rootloop.events import Event
        from rootloop.memory import Memory, MemoryConfig
        m = Memory(Path({str(root)!r}), MemoryConfig(embeddings="off"))
        rec = m.recorder("r-killed", "checkout")
        for i in range(3):
            rec(Event(kind="progress", run_id="r-killed", message=f"step {{i}}"))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -9
    path = root / "runs" / "r-killed" / "transcript.jsonl"
    assert [e.message for e in read_transcript(path)] == ["step 0", "step 1", "step 2"]
    # a torn last line (killed mid-write) is skipped, not fatal
    with path.open("a") as fh:
        fh.write('{"kind": "progr')
    assert len(read_transcript(path)) == 3


def test_secrets_never_reach_disk(tmp_path: Path) -> None:
    password, token = "Pa55w0rd-xyz", "ghp_" + "Q" * 36
    registered = "registered-secret-9911"
    red = Redactor({registered})
    mem = Memory(tmp_path / "memory", MemoryConfig(embeddings="off"))
    ctx, findings, _ = oom_run()
    findings[0].evidence.append(
        Evidence(
            kind="config", title="env", text=f"DATABASE_URL=postgresql://app:{password}@db/orders"
        )
    )
    findings[0].summary += f" (token {token})"
    ctx.status_reason = f"auth header Bearer {token}"
    ctx.notes.append(f"the api key is {registered}")
    rec = mem.recorder(ctx.run_id, ctx.service, red)
    rec(Event(kind="finding", run_id=ctx.run_id, data=findings[0].model_dump(mode="json")))
    rec.close()
    mem.archive(ctx, findings, redactor=red)
    mem.add_note(ctx.run_id, f"password={password} and {registered}", redactor=red)
    mem.close()
    leaked = []
    for folder, _, files in os.walk(tmp_path):
        for name in files:
            data = (Path(folder) / name).read_bytes()
            for secret in (password, token, registered):
                if secret.encode() in data:
                    leaked.append((name, secret))
    assert leaked == []
    # and the redacted text is still there and searchable
    mem = Memory(tmp_path / "memory", MemoryConfig(embeddings="off"))
    assert mem.search("DATABASE_URL")[0].run.run_id == ctx.run_id
    mem.close()
