"""Ships every lab process's output to CloudWatch Logs in the emulator.

Like the ``awslogs`` driver with ``awslogs-datetime-format``: a line that starts
with a timestamp begins a new event; other lines (a traceback) continue the
previous one. A stream per task, a group per service.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rootloop_lab.cloud import client

log = logging.getLogger("rootloop_lab.logs")
_START = re.compile(rb"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
MAX_BATCH = 500


@dataclass
class Source:
    path: Path
    group: str
    stream: str
    offset: int = 0
    partial: bytes = b""
    created: bool = False
    pending: str = ""
    done: bool = False


class LogShipper:
    def __init__(self, endpoint: str) -> None:
        self.logs: Any = client("logs", endpoint)
        self.sources: dict[Path, Source] = {}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()

    def watch(self, path: Path, group: str, stream: str) -> None:
        with self.lock:
            self.sources[path] = Source(path, group, stream)

    def flush_and_forget(self, path: Path) -> None:
        with self.lock:
            src = self.sources.get(path)
            if src is not None:
                src.done = True

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            self.ship_all()
        self.ship_all()

    def ship_all(self) -> None:
        with self.lock:
            sources = list(self.sources.values())
        for src in sources:
            try:
                self._ship(src)
            except Exception as exc:  # the emulator is going away, or a file vanished
                log.debug("shipping %s failed: %s", src.path, exc)
            if src.done:
                with self.lock:
                    self.sources.pop(src.path, None)

    def _ship(self, src: Source) -> None:
        """New complete lines become events; the last event waits one round for its tail."""
        try:
            with open(src.path, "rb") as fh:
                fh.seek(src.offset)
                data = fh.read()
        except FileNotFoundError:
            data = b""
        src.offset += len(data)
        data = src.partial + data
        lines = data.split(b"\n")
        src.partial = b"" if src.done else lines.pop()
        events: list[str] = [src.pending] if src.pending else []
        for raw in lines:
            line = raw.decode(errors="replace").rstrip("\r")
            if not line.strip():
                continue
            if events and not _START.match(raw):
                events[-1] += "\n" + line
            else:
                events.append(line)
        src.pending = ""
        if events and not src.done and lines:
            src.pending = events.pop()  # a traceback may still be coming
        if not events:
            return
        if not src.created:
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=src.group)
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_stream(logGroupName=src.group, logStreamName=src.stream)
            src.created = True
        now = int(time.time() * 1000)
        for i in range(0, len(events), MAX_BATCH):
            chunk = events[i : i + MAX_BATCH]
            self.logs.put_log_events(
                logGroupName=src.group,
                logStreamName=src.stream,
                logEvents=[{"timestamp": now, "message": m[:200_000]} for m in chunk],
            )
