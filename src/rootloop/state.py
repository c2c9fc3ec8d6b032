"""Where rootloop keeps its state, and how it writes files that must survive a kill.

Context-aware like the seed's memory plugin: ``$ROOTLOOP_STATE_DIR`` if set,
else the ``.rootloop/`` of the project (the nearest folder holding a
``rootloop.yaml`` or a ``.git``), else ``$XDG_STATE_HOME/rootloop``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def state_dir(start: Path | None = None) -> Path:
    env = os.environ.get("ROOTLOOP_STATE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "rootloop.yaml").exists() or (folder / ".git").exists():
            return folder / ".rootloop"
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "rootloop"


def atomic_write(path: Path, text: str) -> None:
    """Write-then-rename: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
