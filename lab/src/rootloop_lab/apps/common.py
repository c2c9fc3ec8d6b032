"""What the lab's HTTP services share: a reuse-port threaded server and JSON replies."""

from __future__ import annotations

import base64
import json
import logging
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from rootloop_lab.apps.httpmetrics import CONTENT_TYPE, METRICS_PATH, HttpMetrics

#: in the lab's root (the services' working directory): secrets a careless service echoes
LEAKED_SECRETS_FILE = "leaked-secrets.json"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # several tasks of one service share the port, like tasks behind a target group
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class Handler(BaseHTTPRequestHandler):
    """JSON replies, and every answer counted and timed in ``metrics`` (set per service).

    ``GET /metrics`` is answered here, before the service's own ``do_GET``, and is not
    counted itself: Prometheus's scrapes would otherwise be most of a quiet service's
    traffic and dilute its error ratio."""

    protocol_version = "HTTP/1.1"
    log = logging.getLogger("http")
    metrics: HttpMetrics | None = None
    _started = 0.0

    def parse_request(self) -> bool:
        self._started = time.perf_counter()
        if not super().parse_request():
            return False
        if self.metrics is not None and self.command == "GET" and self.path == METRICS_PATH:
            self._send_raw(200, self.metrics.render(), CONTENT_TYPE)
            return False  # answered: handle_one_request skips do_GET
        return True

    def log_message(self, fmt: str, *args: object) -> None:
        self.log.info("%s %s", self.address_string(), fmt % args)

    def send(self, status: int, data: bytes, content_type: str) -> None:
        if self.metrics is not None:
            elapsed = time.perf_counter() - self._started
            self.metrics.observe(self.command or "", self.path, status, elapsed)
        self._send_raw(status, data, content_type)

    def _send_raw(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reply(self, status: int, body: dict) -> None:
        self.send(status, json.dumps(body).encode(), "application/json")

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


def setup_logging() -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def leaked_secrets() -> dict[str, str]:
    """For the seeded-secrets test only: the ``{NAME: value}`` a careless service would
    dump into its logs and error bodies. Written by ``Lab.leak_secrets``; absent (empty)
    in every other use of the lab."""
    try:
        data = json.loads(Path(LEAKED_SECRETS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def leak_dump(secrets: dict[str, str]) -> dict[str, object]:
    """How real services leak configuration: an env dump, the DSN's password in a
    conninfo string and a JSON object, a Basic header, a query string, and the values
    bare, URL-encoded and base64-encoded in free text."""
    if not secrets:
        return {}
    out: dict[str, object] = {"env": " ".join(f"{k}={v}" for k, v in secrets.items())}
    for value in secrets.values():
        parts = urlsplit(value) if "://" in value else None
        if parts is not None and parts.password:
            user, password = unquote(parts.username or ""), unquote(parts.password)
            out["conninfo"] = f"host={parts.hostname} user={user} password={password}"
            out["db"] = {"user": user, "password": password}
            basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            out["upstream_headers"] = {"Authorization": f"Basic {basic}"}
            out["free_text"] = f"auth failed with {password} as {user}"
    out["callback"] = "/cb?" + "&".join(
        f"{k.lower()}={quote(v, safe='')}" for k, v in secrets.items()
    )
    out["seen"] = " ".join(secrets.values())
    out["seen_b64"] = " ".join(base64.b64encode(v.encode()).decode() for v in secrets.values())
    return out
