"""The HTTP front of payments-api (stdlib server, one thread per request)."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app import batch, config, db
from app.payments import Payments, Rejected

log = logging.getLogger("http")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # several tasks of one service share the port, like tasks behind a target group
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def make_handler(cfg: config.Config, payments: Payments) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), fmt % args)

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                status, body = health(cfg, payments)
                self.reply(status, body)
            elif self.path.startswith("/payments/"):
                try:
                    found = payments.get(int(self.path.rsplit("/", 1)[1]))
                except ValueError:
                    self.reply(400, {"error": "bad id"})
                    return
                except db.DbUnavailable as exc:
                    log.error("DB connection timeout: %s", exc)
                    self.reply(503, {"error": "database unavailable"})
                    return
                self.reply(200 if found else 404, found or {"error": "not found"})
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/payments":
                self.reply(404, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self.reply(201, payments.create(body))
            except Rejected as exc:
                log.error("POST /payments rejected (%d): %s", exc.status, exc)
                self.reply(exc.status, {"error": str(exc)})
            except Exception as exc:
                log.error("POST /payments failed: %s\n%s", exc, traceback.format_exc())
                self.reply(500, {"error": f"{type(exc).__name__}: {exc}"})

    return Handler


def health(cfg: config.Config, payments: Payments) -> tuple[int, dict]:
    deps: dict[str, str] = {}
    try:
        with db.connect(cfg.pg_dsn) as conn:
            conn.execute("SELECT 1 FROM payments LIMIT 1")
        deps["postgresql"] = "ok"
    except Exception as exc:
        deps["postgresql"] = f"error: {' '.join(str(exc).split())[:200]}"
    try:
        payments.redis.set("health:probe", "1", ex=60)
        deps["redis"] = "ok"
    except Exception as exc:
        deps["redis"] = f"error: {exc}"
    try:
        depth = payments.queue_depth()
        deps["sqs-payments"] = "ok" if depth < cfg.backpressure_depth else f"backlog: {depth}"
    except Exception as exc:
        deps["sqs-payments"] = f"error: {exc}"
    ok = all(v == "ok" for v in deps.values())
    body = {"status": "ok" if ok else "degraded", "commit": cfg.git_sha, "dependencies": deps}
    return (200 if ok else 503), body


def main() -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = config.load()
    payments = Payments(cfg)
    stop = threading.Event()
    threading.Thread(
        target=batch.loop, args=(cfg.pg_dsn, cfg.batch_interval, stop), daemon=True, name="batch"
    ).start()
    server = Server(("127.0.0.1", cfg.port), make_handler(cfg, payments))
    log.info("payments-api %s listening on 127.0.0.1:%d", cfg.git_sha, cfg.port)
    try:
        server.serve_forever()
    finally:
        stop.set()


if __name__ == "__main__":
    main()
