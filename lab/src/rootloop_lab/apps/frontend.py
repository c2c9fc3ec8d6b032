"""frontend-app: a payment form; /api/* goes to the gateway (same origin)."""

from __future__ import annotations

import http.client
import logging
import os
import urllib.parse

from rootloop_lab.apps.common import Handler, Server, setup_logging
from rootloop_lab.apps.httpmetrics import HttpMetrics

log = logging.getLogger("frontend")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pay</title></head>
<body>
<h1>Pay a merchant</h1>
<form id="pay">
  <label>Amount (cents) <input id="amount" name="amount" type="number" value="1250"></label>
  <label>Merchant <select id="merchant" name="merchant">
    <option value="1">acme</option><option value="2">globex</option></select></label>
  <button id="submit" type="submit">Pay</button>
</form>
<p id="result"></p>
<script>
document.getElementById("pay").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = document.getElementById("result");
  out.textContent = "Paying...";
  try {
    const resp = await fetch("/api/payments", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({amount_cents: Number(document.getElementById("amount").value),
                            merchant_id: Number(document.getElementById("merchant").value)})});
    const body = await resp.json();
    out.textContent = resp.ok ? `Payment confirmed: #${body.id}`
                              : `Payment failed: ${body.error || resp.status}`;
  } catch (err) {
    out.textContent = `Payment failed: ${err}`;
  }
});
</script>
</body></html>
"""


def main() -> None:
    setup_logging()
    port = int(os.environ["PORT"])
    gateway = urllib.parse.urlsplit(os.environ["GATEWAY_URL"])

    class Frontend(Handler):
        metrics = HttpMetrics(("/", "/index.html", "/api"))

        def do_GET(self) -> None:
            if self.path == "/health":
                self.reply(200, {"status": "ok"})
            elif self.path in ("/", "/index.html"):
                self.send(200, PAGE.encode(), "text/html; charset=utf-8")
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            if not self.path.startswith("/api/"):
                self.reply(404, {"error": "not found"})
                return
            conn = http.client.HTTPConnection(gateway.hostname, gateway.port, timeout=10)
            try:
                conn.request(
                    "POST",
                    self.path,
                    body=self.body(),
                    headers={"Content-Type": "application/json"},
                )
                resp = conn.getresponse()
                self.send(resp.status, resp.read(), "application/json")
            except OSError as exc:
                log.error("api-gateway unreachable: %s", exc)
                self.reply(502, {"error": f"api-gateway unreachable: {exc}"})
            finally:
                conn.close()

    log.info("frontend-app listening on 127.0.0.1:%d", port)
    Server(("127.0.0.1", port), Frontend).serve_forever()


if __name__ == "__main__":
    main()
