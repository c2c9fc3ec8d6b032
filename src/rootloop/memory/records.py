"""Typed results memory hands across its boundary."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel


class RunRecord(BaseModel):
    """One row of the run index."""

    run_id: str
    service: str
    environment: str = ""
    status: str = "running"
    started_at: datetime
    archived_at: datetime | None = None
    iterations: int = 0
    root_cause: str | None = None
    category: str | None = None
    diagnosis_key: str | None = None
    synopsis: str = ""
    pr: str | None = None
    summary_source: str | None = None
    has_transcript: bool = False


class SearchHit(BaseModel):
    run: RunRecord
    score: float
    keyword_rank: int | None = None
    semantic_rank: int | None = None
    snippet: str = ""


class ArchivedRun(BaseModel):
    run_id: str
    directory: Path
    short_summary: str
    detailed_summary: str
    summary_source: str
    embedded: bool = False


class RunDetail(BaseModel):
    run: RunRecord
    short_summary: str | None = None
    detailed_summary: str | None = None
    notes: list[str] = []
    transcript: Path | None = None
    transcript_events: int = 0
