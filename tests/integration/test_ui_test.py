"""The UI-test skill: Playwright on Debian's Chromium against a real page on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rootloop.errors import UserError
from rootloop.skills.ui_test import CHROMIUM, parse_steps, run_ui_test
from rootloop.topology import UiTestSpec

PAGE = b"""<!doctype html><html><body>
<h1>Pay</h1>
<form id="pay"><input id="amount" name="amount"><button type="submit">Pay</button></form>
<p id="out"></p>
<script>
document.getElementById('pay').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const r = await fetch('/api/pay', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({amount: document.getElementById('amount').value})});
  const out = document.getElementById('out');
  if (r.ok) { const j = await r.json(); out.textContent = 'Payment confirmed #' + j.id; }
  else { out.textContent = 'Something went wrong (' + r.status + ')'; }
});
</script></body></html>"""

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium not installed (apt-get install chromium)"
)


def _serve(api_status: int) -> tuple[ThreadingHTTPServer, list[dict[str, object]]]:
    payments: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/":
                self._send(200, PAGE, "text/html")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if api_status == 200:
                payments.append(data)
                self._send(
                    200, json.dumps({"id": 1000 + len(payments)}).encode(), "application/json"
                )
            else:
                self._send(api_status, b'{"error":"db down"}', "application/json")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, payments


@pytest.fixture
def shop() -> Iterator[Callable[[int], tuple[str, list[dict[str, object]]]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(api_status: int = 200) -> tuple[str, list[dict[str, object]]]:
        server, payments = _serve(api_status)
        servers.append(server)
        host, port = server.server_address[:2]
        return f"http://{host}:{port}/", payments

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


FLOW = [
    {"goto": "/"},
    {"fill": "#amount", "value": "42"},
    {"click": "button[type=submit]"},
    {"expect_text": "Payment confirmed"},
]


@needs_chromium
async def test_payment_flow_passes(shop, tmp_path: Path) -> None:
    url, payments = shop(200)
    spec = UiTestSpec(url=url, steps=FLOW)
    result = await run_ui_test(spec, tmp_path / "shots" / "ui.png", step_timeout=5)
    assert result.passed, result.steps
    assert [s.name for s in result.steps] == [
        "goto /",
        "fill #amount = 42",
        "click button[type=submit]",
        "expect text 'Payment confirmed'",
    ]
    assert all(s.passed for s in result.steps)
    assert payments == [{"amount": "42"}]  # the form really reached the API
    shot = Path(result.screenshot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_chromium
async def test_missing_confirmation_names_the_failed_step(shop, tmp_path: Path) -> None:
    url, payments = shop(503)
    spec = UiTestSpec(url=url, steps=FLOW)
    result = await run_ui_test(spec, tmp_path / "ui.png", step_timeout=1.5)
    assert not result.passed
    assert [s.passed for s in result.steps] == [True, True, True, False]
    failed = result.steps[-1]
    assert failed.name == "expect text 'Payment confirmed'"
    assert "not visible within 1.5 s" in failed.detail
    assert payments == []
    assert result.screenshot and Path(result.screenshot).exists()


@needs_chromium
async def test_missing_element_stops_the_flow(shop, tmp_path: Path) -> None:
    url, _ = shop(200)
    spec = UiTestSpec(
        url=url,
        steps=[{"goto": "/"}, {"click": "#no-such-button"}],
        expect_text="Payment confirmed",
    )
    result = await run_ui_test(spec, tmp_path / "ui.png", step_timeout=1)
    assert not result.passed
    assert len(result.steps) == 2  # the expect_text step never ran
    assert result.steps[1].name == "click #no-such-button" and not result.steps[1].passed


async def test_missing_browser_is_a_failed_result(tmp_path: Path) -> None:
    spec = UiTestSpec(url="http://127.0.0.1:9/", steps=FLOW)
    result = await run_ui_test(spec, tmp_path / "ui.png", executable_path="/nonexistent/chromium")
    assert not result.passed
    assert result.steps[0].name == "browser"
    assert "apt-get install chromium" in result.steps[0].detail
    assert result.screenshot is None


def test_malformed_steps_are_user_errors() -> None:
    with pytest.raises(UserError, match=r"steps\[1\].*needs exactly one of"):
        parse_steps(UiTestSpec(url="http://127.0.0.1/", steps=[{"goto": "/"}, {"tap": "x"}]))
    with pytest.raises(UserError, match=r"steps\[0\]: the 'fill' step needs 'value'"):
        parse_steps(UiTestSpec(url="http://127.0.0.1/", steps=[{"fill": "#a"}]))
    with pytest.raises(UserError, match="not a loopback address"):
        import asyncio

        asyncio.run(run_ui_test(UiTestSpec(url="http://example.com/"), "/tmp/x.png"))
    # no steps: open the URL, then the expected text
    steps = parse_steps(UiTestSpec(url="http://127.0.0.1/", expect_text="Hello"))
    assert [(k, a) for k, a, _ in steps] == [
        ("goto", "http://127.0.0.1/"),
        ("expect_text", "Hello"),
    ]
