"""Where memory lives and how much of it is kept.

Context-aware like the seed's plugin: by default the memory directory is
``<state dir>/memory`` — the project's ``.rootloop/`` inside a service
repository, a global state directory otherwise (see ``rootloop.state``).
"""

from __future__ import annotations

import os
from pathlib import Path

from rootloop.models.memory import MemoryConfig
from rootloop.state import state_dir

__all__ = ["MemoryConfig", "default_root"]


def default_root(start: Path | None = None) -> Path:
    """``$ROOTLOOP_MEMORY_DIR`` if set, else ``<state dir>/memory``."""
    env = os.environ.get("ROOTLOOP_MEMORY_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return state_dir(start) / "memory"
