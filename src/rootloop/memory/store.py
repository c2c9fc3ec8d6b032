"""``Memory``: the one object the loop and the CLI use.

Layout of the memory directory::

    index.sqlite                      runs, actions, FTS5 docs, embeddings
    runs/<run_id>/transcript.jsonl    every event, redacted (pruned first)
    runs/<run_id>/context.json        the final debug context, redacted
    runs/<run_id>/findings.json       the last sweep's findings, redacted
    runs/<run_id>/summary-short.md    ~500 tokens
    runs/<run_id>/summary.md          ~2,000 tokens
    runs/<run_id>/notes.md            hand-written notes
    services/<service>/latest_summary_short.md   the seed's "latest" pointer
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import TypeAdapter

from rootloop.context import DebugContext
from rootloop.errors import StateError
from rootloop.events import Event
from rootloop.memory import digest as dg
from rootloop.memory.config import MemoryConfig, default_root
from rootloop.memory.embed import Embedder, load_embedder, to_blob
from rootloop.memory.index import ActionRow, Index, IndexDoc
from rootloop.memory.recorder import Recorder, read_transcript
from rootloop.memory.records import ArchivedRun, RunDetail, RunRecord, SearchHit
from rootloop.memory.retention import TRANSCRIPT, PruneReport, apply, plan
from rootloop.memory.search import query_from_findings, rrf
from rootloop.memory.summary import (
    AsyncSummarizer,
    Summaries,
    Summarizer,
    SummaryInput,
    TemplateSummarizer,
    missing_sections,
)
from rootloop.models import FailedAction, Finding, PastIncident, PriorContext, utcnow
from rootloop.redact import Redactor, write_json, write_text

_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_FINDINGS = TypeAdapter(list[Finding])
_UNSET = object()


class Memory:
    """Archive, index, search and recall past investigations."""

    def __init__(
        self,
        root: Path | None = None,
        config: MemoryConfig | None = None,
        embedder: Embedder | object | None = _UNSET,
    ) -> None:
        self.config = config or MemoryConfig()
        self.root = (root or self.config.root or default_root()).expanduser()
        if self.root.exists() and not self.root.is_dir():
            raise StateError(
                f"memory directory {self.root} is a file; point memory.root at a folder."
            )
        self.runs = self.root / "runs"
        self.index = Index(self.root / "index.sqlite")
        self._embedder = embedder

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder | None:
        if self._embedder is _UNSET:
            self._embedder = load_embedder(self.config.embeddings)
        return self._embedder  # type: ignore[return-value]

    def run_dir(self, run_id: str) -> Path:
        if not _ID.match(run_id):
            raise StateError(f"'{run_id}' is not a run id (see 'rootloop history').")
        return self.runs / run_id

    # -- archive -------------------------------------------------------------
    def recorder(self, run_id: str, service: str, redactor: Redactor | None = None) -> Recorder:
        """The transcript sink for a run; registers the run so 'history' shows it at once."""
        path = self.run_dir(run_id) / TRANSCRIPT
        self.index.register(run_id, service, utcnow())
        return Recorder(path, redactor or Redactor())

    def archive(
        self,
        ctx: DebugContext,
        findings: list[Finding],
        redactor: Redactor | None = None,
        summarizer: Summarizer | None = None,
    ) -> ArchivedRun:
        """Write the context, both summaries and the index rows. Safe to call again at a pause."""
        inp = self._input(ctx, findings, redactor or Redactor())
        written: Summaries | BaseException | None = None
        if summarizer is not None:
            try:
                written = summarizer.summarize(inp)
            except Exception as exc:  # a broken summarizer must not lose the archive
                written = exc
        return self._archive(inp, redactor, summarizer, written)

    async def archive_async(
        self,
        ctx: DebugContext,
        findings: list[Finding],
        redactor: Redactor | None = None,
        summarizer: AsyncSummarizer | None = None,
    ) -> ArchivedRun:
        """``archive`` for a model summarizer that is async (pydantic-ai agents are)."""
        inp = self._input(ctx, findings, redactor or Redactor())
        written: Summaries | BaseException | None = None
        if summarizer is not None:
            try:
                written = await summarizer.summarize(inp)
            except Exception as exc:
                written = exc
        return self._archive(inp, redactor, summarizer, written)

    def _archive(
        self,
        inp: SummaryInput,
        redactor: Redactor | None,
        summarizer: Summarizer | AsyncSummarizer | None,
        written: Summaries | BaseException | None,
    ) -> ArchivedRun:
        """The template's summaries, unless the summarizer's kept every section."""
        summaries, source = TemplateSummarizer().summarize(inp), "template"
        if summarizer is not None and isinstance(written, BaseException):
            source = f"template ({summarizer.name} failed: {type(written).__name__})"
        elif summarizer is not None and written is not None:
            summaries, source = self._checked(written, summarizer.name, summaries, redactor)
        return self._write(inp, summaries, source)

    def _input(
        self, ctx: DebugContext, findings: list[Finding], redactor: Redactor
    ) -> SummaryInput:
        """Redacted copies: nothing derived from them can carry a secret to disk."""
        self.run_dir(ctx.run_id)
        clean_ctx = DebugContext.model_validate(redactor.data(ctx.model_dump(mode="json")))
        clean = _FINDINGS.validate_python(
            redactor.data([f.model_dump(mode="json") for f in findings])
        )
        return SummaryInput(context=clean_ctx, findings=clean, notes=self.index.notes(ctx.run_id))

    @staticmethod
    def _checked(
        out: Summaries, name: str, fallback: Summaries, redactor: Redactor | None
    ) -> tuple[Summaries, str]:
        missing = missing_sections(out.short) + missing_sections(out.detailed)
        if missing:
            return fallback, f"template ({name} left out: {', '.join(sorted(set(missing)))})"
        r = redactor or Redactor()
        return Summaries(short=r.text(out.short), detailed=r.text(out.detailed)), name

    def _write(self, inp: SummaryInput, s: Summaries, source: str) -> ArchivedRun:
        ctx, findings = inp.context, inp.findings
        d = self.run_dir(ctx.run_id)
        # redacted already (``_input``); written through the boundary all the same
        write_json(d / "context.json", ctx.model_dump(mode="json"))
        write_json(d / "findings.json", [f.model_dump(mode="json") for f in findings])
        write_text(d / "summary-short.md", s.short)
        write_text(d / "summary.md", s.detailed)
        if _ID.match(ctx.service):
            write_text(self.root / "services" / ctx.service / "latest_summary_short.md", s.short)
        diag = dg.final_diagnosis(ctx)
        rec = RunRecord(
            run_id=ctx.run_id,
            service=ctx.service,
            environment=ctx.environment,
            status=ctx.status,
            started_at=ctx.started_at,
            archived_at=utcnow(),
            iterations=ctx.iteration,
            root_cause=diag.root_cause if diag else None,
            category=diag.category if diag else None,
            diagnosis_key=diag.key if diag else None,
            synopsis=dg.synopsis(ctx, findings),
            pr=ctx.pr,
            summary_source=source,
            has_transcript=(d / TRANSCRIPT).exists(),
        )
        nodes = (
            {f.node for f in findings}
            | set(diag.path if diag else [])
            | ({diag.root_cause} if diag else set())
        )
        self.index.upsert_run(rec, s.short, nodes, _doc(ctx, findings, s, inp.notes), _actions(ctx))
        embedded = self._embed(rec, findings)
        return ArchivedRun(
            run_id=ctx.run_id,
            directory=d,
            short_summary=s.short,
            detailed_summary=s.detailed,
            summary_source=source,
            embedded=embedded,
        )

    def _embed(self, rec: RunRecord, findings: list[Finding]) -> bool:
        emb = self.embedder
        if emb is None:
            return False
        text = dg.clip(rec.synopsis + " " + dg.findings_digest(findings, limit=6), 1500)
        self.index.set_embedding(rec.run_id, emb.model_id, to_blob(emb.embed([text])[0]))
        return True

    # -- notes ---------------------------------------------------------------
    def add_note(self, run_id: str | None, text: str, redactor: Redactor | None = None) -> str:
        """A hand-written note into the given run, else the running one, else the last one."""
        if not text.strip():
            raise StateError('a note needs some text: rootloop note "what you learned".')
        rid = self.resolve(run_id) if run_id else self._current_or_last()
        clean = (redactor or Redactor()).text(text.strip())
        at = utcnow()
        d = self.run_dir(rid)
        d.mkdir(parents=True, exist_ok=True)
        with (d / "notes.md").open("a", encoding="utf-8") as fh:
            fh.write(f"- {at:%Y-%m-%d %H:%M} UTC: {clean}\n")
        if (d / TRANSCRIPT).exists():
            ev = Event(kind="note", run_id=rid, message=clean, data={"text": clean})
            with (d / TRANSCRIPT).open("a", encoding="utf-8") as fh:
                fh.write(ev.model_dump_json() + "\n")
        self.index.add_note(rid, at, clean)
        return rid

    def _current_or_last(self) -> str:
        recent = self.index.recent(limit=20)
        if not recent:
            raise StateError(
                f"no run in memory at {self.root} to attach a note to; "
                "start one with 'rootloop run'."
            )
        running = [r for r in recent if r.status == "running"]
        return (running or recent)[0].run_id

    # -- reading -------------------------------------------------------------
    def resolve(self, run_id: str) -> str:
        """A full run id from an id or a unique prefix of one."""
        self.run_dir(run_id)
        if self.index.get(run_id):
            return run_id
        matches = self.index.match_id(run_id)
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise StateError(f"'{run_id}' matches several runs: {', '.join(matches)}.")
        recent = ", ".join(r.run_id for r in self.index.recent(limit=5)) or "none yet"
        raise StateError(f"no run '{run_id}' in memory at {self.root} (recent: {recent}).")

    def recent(self, service: str | None = None, limit: int = 20) -> list[RunRecord]:
        return self.index.recent(service, limit)

    def show(self, run_id: str) -> RunDetail:
        rid = self.resolve(run_id)
        d = self.run_dir(rid)
        rec = self.index.get(rid)
        assert rec is not None
        transcript = d / TRANSCRIPT
        return RunDetail(
            run=rec,
            short_summary=_read(d / "summary-short.md"),
            detailed_summary=_read(d / "summary.md"),
            notes=self.index.notes(rid),
            transcript=transcript if transcript.exists() else None,
            transcript_events=len(read_transcript(transcript)) if transcript.exists() else 0,
        )

    def context(self, run_id: str) -> DebugContext:
        path = self.run_dir(self.resolve(run_id)) / "context.json"
        if not path.exists():
            raise StateError(f"run '{run_id}' has no archived context yet (still running?).")
        return DebugContext.model_validate_json(path.read_text(encoding="utf-8"))

    # -- search --------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 10,
        service: str | None = None,
        scope: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        """Hybrid search: BM25 over FTS5 fused with embedding similarity by reciprocal rank."""
        if not query.strip():
            raise StateError("search needs a query, e.g. rootloop history search OOMKilled.")
        if scope is None and service:
            scope = [service]
        pool = max(50, k * 5)
        kw = self.index.keyword(query, pool, scope)
        sem: list[tuple[str, float]] = []
        emb = self.embedder
        if emb is not None:
            sem = self.index.semantic(emb.embed([query])[0], emb.model_id, pool, scope)
        fused = rrf([[r for r, _, _ in kw], [r for r, _ in sem]])[:k]
        records = self.index.records([r for r, _ in fused])
        kw_rank = {r: i + 1 for i, (r, _, _) in enumerate(kw)}
        sem_rank = {r: i + 1 for i, (r, _) in enumerate(sem)}
        snippets = {r: s for r, _, s in kw}
        return [
            SearchHit(
                run=records[r],
                score=score,
                keyword_rank=kw_rank.get(r),
                semantic_rank=sem_rank.get(r),
                snippet=snippets.get(r, ""),
            )
            for r, score in fused
            if r in records
        ]

    def prior(
        self,
        service: str,
        nodes: Sequence[str] = (),
        findings: list[Finding] | None = None,
        budget_tokens: int | None = None,
        k: int | None = None,
    ) -> PriorContext:
        """What a new investigation of ``service`` should know before its first sweep."""
        budget = budget_tokens if budget_tokens is not None else self.config.prior_budget_tokens
        k = k if k is not None else self.config.prior_k
        scope = list(dict.fromkeys([service, *nodes]))
        prior = PriorContext()
        latest = self.index.latest_summary(service)
        used = 0
        if latest:
            prior.last_run_id, prior.last_summary = latest
            used = dg.estimate_tokens(prior.last_summary)
        query = query_from_findings(findings or [])
        if query:
            candidates = [(h.run, h.score) for h in self.search(query, k=k * 3 + 1, scope=scope)]
        else:
            candidates = [(r, 0.0) for r in self.index.recent_in_scope(scope, k * 3 + 1)]
        for rec, score in candidates:
            if len(prior.similar) >= k or rec.run_id == prior.last_run_id:
                continue
            cost = dg.estimate_tokens(rec.synopsis) + 8
            if used + cost > budget:
                continue
            used += cost
            prior.similar.append(
                PastIncident(
                    run_id=rec.run_id,
                    service=rec.service,
                    summary=rec.synopsis,
                    root_cause=rec.root_cause,
                    category=rec.category,
                    outcome=rec.status,
                    score=round(score, 6),
                )
            )
        seen: set[tuple[str, str]] = set()
        for row in self.index.failed_actions(scope):
            key = (row["diagnosis_key"], row["fingerprint"])
            if key not in seen:
                seen.add(key)
                prior.failed_actions.append(
                    FailedAction(
                        run_id=row["run_id"],
                        diagnosis_key=row["diagnosis_key"],
                        fingerprint=row["fingerprint"],
                        description=row["description"] or "",
                    )
                )
        return prior

    # -- retention -----------------------------------------------------------
    def prune(self, dry_run: bool = False) -> PruneReport:
        cfg = self.config
        report = plan(
            self.root,
            int(cfg.max_total_mb * 1_000_000) if cfg.max_total_mb is not None else None,
            cfg.max_transcript_age_days * 86400 if cfg.max_transcript_age_days else None,
        )
        if dry_run:
            return report
        done = apply(self.root, report)
        for item in done.items:
            if self.index.get(item.run_id):
                self.index.set_transcript(item.run_id, False)
        return done


def failed_fingerprints(prior: PriorContext, diagnosis_key: str) -> set[str]:
    """Fingerprints of actions that failed before for this diagnosis: rungs to skip."""
    return {f.fingerprint for f in prior.failed_actions if f.diagnosis_key == diagnosis_key}


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def _doc(ctx: DebugContext, findings: list[Finding], s: Summaries, notes: list[str]) -> IndexDoc:
    diagnoses = []
    for h in ctx.history:
        d = h.diagnosis_detail
        diagnoses.append(
            f"{h.diagnosis} {d.root_cause} {d.category} {d.summary} {' '.join(d.evidence)}"
            if d
            else h.diagnosis
        )
    acts = [f"{h.action} {h.result} {h.changed or ''}" for h in ctx.history if h.action]
    return IndexDoc(
        diagnosis="\n".join(diagnoses),
        actions="\n".join(acts),
        findings=dg.findings_digest(findings, limit=40) + "\n" + dg.evidence_digest(findings),
        summary=s.detailed,
        notes="\n".join([*notes, *ctx.notes]),
    )


def _actions(ctx: DebugContext) -> list[ActionRow]:
    final = dg.diagnosis_key(ctx)
    return [
        ActionRow(
            iteration=h.iteration,
            diagnosis_key=h.diagnosis_detail.key if h.diagnosis_detail else final,
            fingerprint=h.action_fingerprint,
            description=h.action,
            result=h.result,
            failed=h.did_not_help,
        )
        for h in ctx.history
        if h.action
    ]


__all__ = ["Memory", "failed_fingerprints"]
