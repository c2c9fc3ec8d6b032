"""The run's transcript: every loop event as one redacted JSON line.

The recorder is an ``EventSink``. Each line is redacted before it is written
and flushed at once, so a run killed at any point keeps its transcript up to
the last event.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO

from rootloop.events import Event
from rootloop.redact import Redactor


class Recorder:
    """Appends events to ``transcript.jsonl``; usable as a sink or a context manager."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor
        self.count = 0
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        data = self.redactor.data(event.model_dump(mode="json"))
        line = json.dumps(data, separators=(",", ":"), default=str)
        with self._lock:
            if self._fh is None or self._fh.closed:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("a", encoding="utf-8")
            self._fh.write(line + "\n")
            self._fh.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_transcript(path: Path) -> list[Event]:
    """The events of a transcript; a torn last line (killed mid-write) is skipped."""
    events: list[Event] = []
    if not path.exists():
        return events
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            events.append(Event.model_validate_json(line))
        except ValueError:
            continue
    return events
