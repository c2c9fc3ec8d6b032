"""Where memory lives and how much of it is kept.

Context-aware like the seed's plugin: by default the memory directory is
``<state dir>/memory`` — the project's ``.rootloop/`` inside a service
repository, a global state directory otherwise (see ``rootloop.state``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from rootloop.state import state_dir


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


def default_root(start: Path | None = None) -> Path:
    """``$ROOTLOOP_MEMORY_DIR`` if set, else ``<state dir>/memory``."""
    env = os.environ.get("ROOTLOOP_MEMORY_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return state_dir(start) / "memory"
