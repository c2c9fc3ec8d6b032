"""api-gateway: proxies /api/* to payments-api, answers its own /health."""

from __future__ import annotations

import http.client
import logging
import os
import urllib.parse

from rootloop_lab.apps.common import Handler, Server, setup_logging
from rootloop_lab.apps.httpmetrics import HttpMetrics

log = logging.getLogger("gateway")


def main() -> None:
    setup_logging()
    port = int(os.environ["PORT"])
    upstream = urllib.parse.urlsplit(os.environ["UPSTREAM_URL"])

    class Gateway(Handler):
        metrics = HttpMetrics(("/api",))

        def proxy(self, method: str) -> None:
            path = self.path[len("/api") :] or "/"
            data = self.body() if method == "POST" else None
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=8)
            try:
                conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                payload = resp.read()
                if resp.status >= 500:
                    log.error(
                        "upstream payments-api answered %d for %s %s", resp.status, method, path
                    )
                self.send(resp.status, payload, resp.getheader("Content-Type", "application/json"))
            except OSError as exc:
                log.error("upstream payments-api unreachable for %s %s: %s", method, path, exc)
                self.reply(502, {"error": f"payments-api unreachable: {exc}"})
            finally:
                conn.close()

        def do_GET(self) -> None:
            if self.path == "/health":
                self.reply(200, {"status": "ok", "upstream": upstream.geturl()})
            elif self.path.startswith("/api/"):
                self.proxy("GET")
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path.startswith("/api/"):
                self.proxy("POST")
            else:
                self.reply(404, {"error": "not found"})

    log.info("api-gateway listening on 127.0.0.1:%d -> %s", port, upstream.geturl())
    Server(("127.0.0.1", port), Gateway).serve_forever()


if __name__ == "__main__":
    main()
