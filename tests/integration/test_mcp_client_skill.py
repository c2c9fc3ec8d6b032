"""The ``mcp`` skill against real MCP servers: the published ``mcp-server-git`` on a
repository made here, and a small SDK server (written by the test) whose tools answer
with structured data, text, errors, hang, or kill their own process mid-call."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import rootloop
from rootloop import topology
from rootloop.errors import TopologyError
from rootloop.models import Finding, Status
from rootloop.skills.base import CheckContext
from rootloop.sweep import check_node, sweep

PROBE_SERVER = textwrap.dedent(
    """
    import os, sys
    import anyio
    from mcp.server.mcpserver import MCPServer

    with open(sys.argv[1], "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    srv = MCPServer("probe")

    @srv.tool()
    def health(state: str = "up", latency_ms: float = 12.5) -> dict:
        return {"status": state, "latency_ms": latency_ms, "deps": [{"name": "db"}]}

    @srv.tool()
    def say(message: str) -> str:
        return message

    @srv.tool()
    def token() -> str:
        return "token in use: " + os.environ.get("PROBE_TOKEN", "(none)")

    @srv.tool()
    async def hang() -> str:
        await anyio.sleep(3600)
        return "never"

    @srv.tool()
    def die() -> str:
        print("fatal: backing store lost", file=sys.stderr, flush=True)
        os._exit(3)

    srv.run()
    """
)


@pytest.fixture
def probe(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "probe_server.py"
    script.write_text(PROBE_SERVER, encoding="utf-8")
    return script, tmp_path / "pids"


def load_map(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> topology.Topology:
    path = tmp_path / "rootloop.yaml"
    path.write_text("service: watcher\ndownstream:\n" + textwrap.indent(body, "  "), "utf-8")
    return rootloop.load_map(path, env={"PY": sys.executable, **(env or {})})


def probe_node(name: str, script: Path, pids: Path, extra: str) -> str:
    return (
        f"- name: {name}\n  type: app\n  skill: mcp\n  command: ${{PY}}\n"
        f"  args: ['{script}', '{pids}']\n" + textwrap.indent(extra, "  ")
    )


def alive(pid: int) -> bool:
    """Running (a killed child not yet reaped by its parent is a zombie: not running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


async def all_gone(pids: list[int], timeout: float = 15.0) -> bool:
    """Every server stopped: the signal is sent before the check returns, but on a busy
    machine the process may take a moment to exit."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def started_pids(pids: Path) -> list[int]:
    return [int(line) for line in pids.read_text().split()] if pids.exists() else []


async def run_all(topo: topology.Topology) -> dict[str, Finding]:
    findings = await sweep(topo.nodes.values(), CheckContext(redactor=topo.redactor))
    return {f.node: f for f in findings}


# -- a published server from PyPI ---------------------------------------------------------
def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


async def test_mcp_server_git_status_maps_to_findings(tmp_path: Path) -> None:
    pytest.importorskip("mcp_server_git", reason="pip install mcp-server-git (a dev dependency)")
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('v1')\n")
    git(repo, "add", "app.py")
    git(repo, "commit", "-q", "-m", "v1")
    node = textwrap.dedent(
        """\
        type: repo
        skill: mcp
        command: ${PY}
        args: [-m, mcp_server_git, --repository, "${REPO}"]
        tool: git_status
        arguments: {repo_path: "${REPO}"}
        status_rules:
          - when: {text_contains: "Changes not staged"}
            status: degraded
            summary: "uncommitted changes in {node}"
          - when: {text_contains: "working tree clean"}
            status: ok
            summary: "{node}: working tree clean"
        default_status: unknown
        """
    )
    body = f"- name: app-repo\n{textwrap.indent(node, '  ')}"
    body += (
        f"- name: stray-repo\n{textwrap.indent(node, '  ')}".replace(
            'arguments: {repo_path: "${REPO}"}', "arguments: {repo_path: /etc}"
        )
        + "  error_status: critical\n"
    )
    topo = load_map(tmp_path, body, env={"REPO": str(repo)})

    clean = await run_all(topo)
    assert clean["app-repo"].status is Status.OK, clean["app-repo"].summary
    assert clean["app-repo"].summary == "app-repo: working tree clean"
    assert "On branch main" in clean["app-repo"].evidence[0].text
    # the server refuses a path outside its repository: an isError result
    assert clean["stray-repo"].status is Status.CRITICAL
    assert "outside the allowed repository" in clean["stray-repo"].summary

    (repo / "app.py").write_text("print('v2')\n")
    dirty = await run_all(topo)
    assert dirty["app-repo"].status is Status.DEGRADED
    assert dirty["app-repo"].summary == "uncommitted changes in app-repo"
    assert "app.py" in dirty["app-repo"].evidence[0].text


# -- mapping structured results and text ------------------------------------------------
async def test_structured_fields_text_and_errors_map_to_findings(
    tmp_path: Path, probe: tuple[Path, Path]
) -> None:
    script, pids = probe
    rules = textwrap.dedent(
        """\
        status_rules:
          - when: {field: status, equals: down}
            status: critical
            summary: "{node} is {status} ({deps.0.name} lost)"
          - when: {field: latency_ms, gt: 500}
            status: degraded
        summary_template: "{status} in {latency_ms}ms"
        signal_fields: [latency_ms, status, deps.0.name]
        """
    )
    body = "".join(
        [
            probe_node("up", script, pids, "tool: health\n" + rules),
            probe_node("down", script, pids, "tool: health\narguments: {state: down}\n" + rules),
            probe_node(
                "slow", script, pids, "tool: health\narguments: {latency_ms: 900}\n" + rules
            ),
            probe_node(
                "text",
                script,
                pids,
                "tool: say\narguments: {message: 'queue ERROR: 5 stuck'}\n"
                "status_rules: [{when: {text_contains: error}, status: degraded}]\n",
            ),
            probe_node(
                "bad-args", script, pids, "tool: say\narguments: {}\nerror_status: critical\n"
            ),
            probe_node("unknown-tool", script, pids, "tool: nope\n"),
        ]
    )
    found = await run_all(load_map(tmp_path, body))

    assert found["up"].status is Status.OK
    assert found["up"].summary == "up in 12.5ms"
    assert found["up"].value("latency_ms") == 12.5 and found["up"].value("deps.0.name") == "db"
    assert found["down"].status is Status.CRITICAL
    assert found["down"].summary == "down is down (db lost)"
    assert found["slow"].status is Status.DEGRADED and found["slow"].summary == "up in 900.0ms"
    assert found["text"].status is Status.DEGRADED
    assert found["text"].summary == "queue ERROR: 5 stuck"
    assert found["bad-args"].status is Status.CRITICAL  # isError → error_status
    assert "message" in found["bad-args"].summary
    assert found["unknown-tool"].status is Status.DEGRADED
    assert "nope" in found["unknown-tool"].summary
    assert await all_gone(started_pids(pids))


async def test_env_reaches_the_server_and_secrets_are_redacted(
    tmp_path: Path, probe: tuple[Path, Path]
) -> None:
    script, pids = probe
    secret = "tok-9f8e7d6c5b4a"
    body = probe_node(
        "tokened", script, pids, "tool: token\nenv: {PROBE_TOKEN: '${PROBE_TOKEN}'}\n"
    )
    topo = load_map(tmp_path, body, env={"PROBE_TOKEN": secret})
    finding = (await run_all(topo))["tokened"]
    assert finding.status is Status.OK
    assert finding.summary == "token in use: ***"  # the server got it; the finding hides it
    assert secret not in finding.model_dump_json()


# -- failures: timeouts, crashes, cancellation, nothing left running ------------------------
async def test_hung_and_crashing_servers_are_unreachable_and_stopped(
    tmp_path: Path, probe: tuple[Path, Path], closed_port: int
) -> None:
    script, pids = probe
    body = "".join(
        [
            probe_node("hung", script, pids, "tool: hang\ntimeout: 3\n"),
            probe_node("crashed", script, pids, "tool: die\n"),
            "- name: gone-http\n  type: app\n  skill: mcp\n"
            f"  url: http://127.0.0.1:{closed_port}/mcp\n  tool: anything\n",
            "- name: no-binary\n  type: app\n  skill: mcp\n"
            f"  command: {tmp_path / 'missing-server'}\n  tool: anything\n",
        ]
    )
    found = await run_all(load_map(tmp_path, body))

    assert found["hung"].status is Status.UNREACHABLE
    assert "no answer" in found["hung"].summary
    assert found["crashed"].status is Status.UNREACHABLE
    assert "closed the connection" in found["crashed"].summary
    assert any("backing store lost" in e.text for e in found["crashed"].evidence)
    assert found["gone-http"].status is Status.UNREACHABLE
    assert "ConnectError" in found["gone-http"].summary
    assert found["no-binary"].status is Status.UNKNOWN
    assert "cannot launch" in found["no-binary"].summary
    assert len(started_pids(pids)) == 2
    assert await all_gone(started_pids(pids))


async def test_a_cancelled_check_stops_its_server(tmp_path: Path, probe: tuple[Path, Path]) -> None:
    script, pids = probe
    topo = load_map(tmp_path, probe_node("hung", script, pids, "tool: hang\ntimeout: 60\n"))
    task = asyncio.create_task(check_node(topo.nodes["hung"], CheckContext()))
    for _ in range(200):  # until the server is up and the call is in flight
        if started_pids(pids):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [pid] = started_pids(pids)
    assert await all_gone([pid])


def test_settings_errors_name_the_field(tmp_path: Path) -> None:
    both = "- name: x\n  type: app\n  skill: mcp\n  command: a\n  url: http://h/mcp\n  tool: t\n"
    with pytest.raises(TopologyError, match="exactly one of 'command'"):
        load_map(tmp_path, both)
    rule = (
        "- name: x\n  type: app\n  skill: mcp\n  command: a\n  tool: t\n"
        "  status_rules: [{when: {equals: down}, status: critical}]\n"
    )
    with pytest.raises(TopologyError, match="add 'field: <path>'"):
        load_map(tmp_path, rule)
    status = (
        "- name: x\n  type: app\n  skill: mcp\n  command: a\n  tool: t\n"
        "  status_rules: [{when: {field: s, equals: x}, status: broken}]\n"
    )
    with pytest.raises(TopologyError, match="status"):
        load_map(tmp_path, status)
