"""The http-health skill against a real HTTP server on loopback (port 0, read back)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rootloop.models import Status
from rootloop.models.nodes import Node
from rootloop.skills.base import CheckContext
from rootloop.skills.http_health import HttpHealthSkill


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = int(self.path.strip("/").split("/")[0] or 200)
        body = b"all good" if code == 200 else b"boom"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def node(url: str, **settings: Any) -> Node:
    return Node(
        name="api",
        type="http",
        skill="http-health",
        role="downstream",
        component="api",
        service="svc",
        timeout=10.0,
        settings=HttpHealthSkill.Settings.model_validate({"url": url, **settings}),
    )


async def check(n: Node):
    ctx = CheckContext()
    try:
        return await HttpHealthSkill().check(n, ctx)
    finally:
        await ctx.aclose()


async def test_an_expected_answer_within_the_thresholds_is_ok(base_url):
    f = await check(node(f"{base_url}/200", latency_warn_ms=60_000, latency_crit_ms=120_000))
    assert f.status is Status.OK, f.summary
    assert f.value("http_status") == 200
    assert f.signal("latency_ms").status is Status.OK


async def test_a_server_error_is_critical_and_a_client_error_degraded(base_url):
    f5 = await check(node(f"{base_url}/503"))
    assert f5.status is Status.CRITICAL
    assert f5.signal("http_status").status is Status.CRITICAL
    assert any("boom" in e.text for e in f5.evidence)
    f4 = await check(node(f"{base_url}/404"))
    assert f4.status is Status.DEGRADED
    # not what the map expects: the signal is as bad as the finding says (it was critical)
    assert f4.signal("http_status").status is Status.DEGRADED


async def test_latency_at_or_over_the_warning_threshold_is_degraded(base_url):
    # any answer takes more than a microsecond: the verdict, not the machine's speed
    f = await check(node(f"{base_url}/200", latency_warn_ms=0.001, latency_crit_ms=600_000))
    assert f.status is Status.DEGRADED and "(slow)" in f.summary
    latency = f.signal("latency_ms")
    assert latency.status is Status.DEGRADED and latency.threshold == 0.001


async def test_a_missing_body_text_is_degraded(base_url):
    f = await check(node(f"{base_url}/200", expect_body="ready", latency_warn_ms=60_000))
    assert f.status is Status.DEGRADED and "lacks" in f.summary


async def test_a_port_nobody_listens_on_is_unreachable():
    # bound but never listening, and held for the whole test: connections are refused,
    # and no other process can take the port meanwhile
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        f = await check(node(f"http://127.0.0.1:{s.getsockname()[1]}/"))
    assert f.status is Status.UNREACHABLE
