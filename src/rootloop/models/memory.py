"""The ``memory:`` block of a map's policy: data the map loader validates and memory
reads. It lives in the model layer so the loader need not import memory."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class MemoryConfig(BaseModel):
    """Retention limits and search options. Loaded from the ``memory:`` block of the policy."""

    root: Path | None = Field(default=None, description="memory directory; None = state dir")
    max_total_mb: float | None = Field(
        default=500.0, gt=0, description="prune old transcripts above this total size"
    )
    max_transcript_age_days: float | None = Field(
        default=90.0, gt=0, description="transcripts older than this are pruned"
    )
    embeddings: Literal["auto", "off"] = Field(
        default="auto", description="use the offline embedding model when it is installed"
    )
    prior_budget_tokens: int = Field(default=1500, ge=100)
    prior_k: int = Field(default=3, ge=0, le=50)
