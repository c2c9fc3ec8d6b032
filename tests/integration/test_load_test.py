"""The load-test skill against real HTTP servers on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rootloop.errors import UserError
from rootloop.skills.load_test import percentile, run_load_test
from rootloop.topology import LoadTestSpec

Behaviour = Callable[[int], tuple[int, float]]  # request number -> (status, delay seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 turns bursts into 1 s SYN retries


def _serve(behaviour: Behaviour) -> tuple[_Server, list[str]]:
    counter = {"n": 0}
    lock = threading.Lock()
    methods: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            with lock:
                n = counter["n"]
                counter["n"] += 1
                methods.append(self.command)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, delay = behaviour(n)
            if delay:
                time.sleep(delay)
            body = b'{"ok": true}' if status < 400 else b'{"error": "boom"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, methods


@pytest.fixture
def http_server() -> Iterator[Callable[[Behaviour], tuple[str, list[str]]]]:
    servers: list[_Server] = []

    def start(behaviour: Behaviour) -> tuple[str, list[str]]:
        server, methods = _serve(behaviour)
        servers.append(server)
        host, port = server.server_address[:2]
        return f"http://{host}:{port}/pay", methods

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _spec(url: str, **kw: object) -> LoadTestSpec:
    base: dict[str, object] = {
        "url": url,
        "rate": 50,
        "duration": 1.5,
        "min_success_ratio": 0.99,
        "max_p50_ms": 150,
        "max_p95_ms": 150,
    }
    base.update(kw)
    return LoadTestSpec.model_validate(base)


async def test_healthy_service_passes(http_server) -> None:
    url, methods = http_server(lambda n: (200, 0.0))
    # healthy means no errors; the latency limits are far above what a busy box adds
    result = await run_load_test(_spec(url, max_p50_ms=5000, max_p95_ms=5000))
    assert result.passed, result.reasons
    assert result.requests == 75  # 50/s x 1.5 s
    assert result.successes == 75
    assert len(methods) == 75
    assert result.success_ratio == 1.0
    assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms
    assert result.reasons == []


async def test_thirty_percent_errors_fail_the_success_ratio(http_server) -> None:
    url, _ = http_server(lambda n: (500 if n % 10 < 3 else 200, 0.0))
    # the latency limits far above what a busy box adds: the one reason is the errors
    # (at 150 ms, a loaded machine's p95 was a second reason)
    spec = _spec(url, method="POST", body={"amount": 42}, max_p50_ms=5000, max_p95_ms=5000)
    result = await run_load_test(spec)
    assert not result.passed
    assert result.successes == 51  # 75 requests, 24 of them land on n % 10 < 3
    assert result.success_ratio == pytest.approx(51 / 75)
    assert len(result.reasons) == 1
    assert "success ratio" in result.reasons[0]
    assert "HTTP 500" in result.reasons[0]


async def test_slow_tail_fails_p95(http_server) -> None:
    # one request in six takes 2 s: p50 stays fast, p95 does not (limits far from both,
    # so a slow machine cannot move either side across them)
    url, _ = http_server(lambda n: (200, 2.0 if n % 6 == 5 else 0.0))
    limits = {"max_p50_ms": 1500, "max_p95_ms": 1500}
    result = await run_load_test(_spec(url, rate=40, duration=1.5, **limits))
    assert not result.passed
    assert result.success_ratio == 1.0
    assert result.p50_ms < 1500
    assert result.p95_ms >= 2000
    assert any(r.startswith("p95") for r in result.reasons)
    assert not any(r.startswith("success") for r in result.reasons)


async def test_request_timeout_counts_as_failure(http_server) -> None:
    url, _ = http_server(lambda n: (200, 1.5))
    result = await run_load_test(_spec(url, rate=10, duration=0.5), request_timeout=0.3)
    assert not result.passed
    assert result.requests == 5
    assert result.successes == 0
    assert "timeout" in result.reasons[0]
    assert result.p50_ms >= 300


async def test_unreachable_endpoint_is_a_failed_result(closed_port: int) -> None:
    spec = _spec(f"http://127.0.0.1:{closed_port}/", rate=20, duration=0.25)
    result = await run_load_test(spec)
    assert not result.passed
    assert result.successes == 0
    assert result.requests == 5
    assert "ConnectError" in result.reasons[0]


def test_remote_targets_are_refused() -> None:
    import asyncio

    with pytest.raises(UserError, match="not a loopback address"):
        asyncio.run(run_load_test(_spec("http://example.com/pay")))
    with pytest.raises(UserError, match="not an http"):
        asyncio.run(run_load_test(_spec("ftp://127.0.0.1/x")))


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0
