"""``rootloop mcp --transport http`` in a subprocess on a free loopback port, reached with
the SDK's streamable HTTP client — and by rootloop's own ``mcp`` skill over the same URL."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

import rootloop
from rootloop.mcpserver.toolbox import SweepResult
from rootloop.models import Status
from rootloop.skills.base import CheckContext
from rootloop.sweep import sweep
from rootloop_lab.servers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def map_file(tmp_path: Path, redis_url: str, closed_port: int) -> Path:
    path = tmp_path / "rootloop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            service: cart
            downstream:
              - name: redis
                type: cache
                skill: redis
                url: {redis_url}
                ping_warn_ms: 10000  # the test is about the transport, not the box's speed
              - name: pricing
                type: http
                skill: http-health
                url: http://127.0.0.1:{closed_port}
            """
        ),
        encoding="utf-8",
    )
    return path


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listened on {port} within {timeout}s")


@pytest.fixture
def http_server(map_file: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "rootloop.cli.mcp", "--transport", "http", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "-t", str(map_file), "--state-dir", str(tmp_path / "state")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_sweep_over_streamable_http(http_server: str) -> None:
    async with Client(http_server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"sweep", "check_node", "diagnose"} <= names
        assert not names & {"apply_action", "run_investigation"}
        result = await client.call_tool("sweep", {})
    assert not result.is_error, result.content
    swept = SweepResult.model_validate(result.structured_content)
    status = {f.node: f.status for f in swept.findings}
    assert status == {"redis": Status.OK, "pricing": Status.UNREACHABLE}


async def test_the_mcp_skill_checks_a_node_through_rootloops_http_server(
    http_server: str, tmp_path: Path
) -> None:
    watcher = tmp_path / "watcher.yaml"
    node = textwrap.dedent(
        f"""\
        skill: mcp
        url: {http_server}
        tool: check_node
        status_rules:
          - when: {{field: status, not_equals: ok}}
            status: critical
            summary: "{{node}} is {{status}}: {{summary}}"
        summary_field: summary
        """
    )
    watcher.write_text(
        "service: watcher\ndownstream:\n"
        f"  - name: cart-redis\n    type: remote\n{textwrap.indent(node, '    ')}"
        "    arguments: {node: redis}\n"
        "    headers: {Authorization: 'Bearer ${RL_TOKEN}'}\n"
        f"  - name: cart-pricing\n    type: remote\n{textwrap.indent(node, '    ')}"
        "    arguments: {node: pricing}\n",
        encoding="utf-8",
    )
    topo = rootloop.load_map(watcher, env={"RL_TOKEN": "tok-0123456789abcdef"})
    found = {f.node: f for f in await sweep(topo.nodes.values(), CheckContext())}
    assert found["cart-redis"].status is Status.OK, found["cart-redis"].summary
    assert found["cart-pricing"].status is Status.CRITICAL
    assert found["cart-pricing"].summary.startswith("pricing is unreachable: ")
