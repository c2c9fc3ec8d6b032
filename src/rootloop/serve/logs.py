"""Structured logs: one JSON object per line on stderr, ready for any log shipper.

The line is built where the log call is made, and written to stderr by a listener
thread: a write to a slow pipe or a busy disk must not stall the event loop that
answers the intake (under a storm of alerts, one line per alert).
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener

from rootloop.redact import Redactor

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "color_message"}
_redact = Redactor()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) else _redact(str(value))
        if record.exc_info:
            entry["error"] = _redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


_listener: QueueListener | None = None
#: formats on the caller's thread (QueueHandler.prepare), so the listener only writes
_handler = QueueHandler(queue.SimpleQueue())
_handler.setFormatter(JsonFormatter())


def configure(level: str = "INFO") -> None:
    global _listener
    if _listener is None:
        lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _listener = QueueListener(lines, logging.StreamHandler(sys.stderr))
        _listener.start()
        atexit.register(_listener.stop)  # flush what is queued at a normal exit
        _handler.queue = lines
    root = logging.getLogger()
    root.handlers[:] = [_handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "dbos"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
