"""The redis skill and the local Redis launcher, against real servers."""

from __future__ import annotations

import asyncio
import secrets
import socket

import pytest
import redis

import rootloop
from rootloop.models import Finding, Status
from rootloop.skills import registry
from rootloop.skills.base import CheckContext, Node
from rootloop.skills.redis import RedisSkill, describe_url
from rootloop.sweep import check_node
from rootloop_lab.servers.redis import RedisServer


def make_node(url: str, timeout: float = 5.0, **settings) -> Node:
    name = f"cache-{secrets.token_hex(3)}"
    return Node(
        name=name,
        type="redis",
        skill="redis",
        role="downstream",
        component=name,
        service="orders-api",
        timeout=timeout,
        settings=RedisSkill.Settings(url=url, **settings),
    )


def fill(client: redis.Redis, n: int, prefix: str = "k") -> int:
    """Write ``n`` 1 KiB values; returns how many writes failed (OOM under noeviction)."""
    failed = 0
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"{prefix}{i}", b"x" * 1024)
    for result in pipe.execute(raise_on_error=False):
        failed += isinstance(result, redis.ResponseError)
    return failed


# -- the launcher ------------------------------------------------------------------


def test_server_is_loopback_only_without_persistence(redis_server: RedisServer) -> None:
    c = redis_server.client()
    try:
        assert c.config_get("bind")["bind"] == "127.0.0.1"
        assert c.config_get("save")["save"] == ""
        assert c.config_get("appendonly")["appendonly"] == "no"
        assert c.config_get("dir")["dir"] == str(redis_server.dir)
    finally:
        c.close()


def test_factory_applies_memory_settings_and_stop(redis_factory) -> None:
    srv = redis_factory(maxmemory="3mb", maxmemory_policy="allkeys-lfu", maxclients=50)
    c = srv.client()
    try:
        got = c.config_get("max*")
        assert got["maxmemory"] == str(3 * 1024 * 1024)
        assert got["maxmemory-policy"] == "allkeys-lfu"
        assert got["maxclients"] == "50"
    finally:
        c.close()
    srv.stop()
    assert not srv.running
    # nothing listens any more (a raw connect: redis-py would retry a refusal for seconds)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((srv.host, srv.port), timeout=5).close()


# -- the skill ---------------------------------------------------------------------


async def test_registry_finds_the_skill() -> None:
    assert isinstance(registry.get("redis"), RedisSkill)


async def test_healthy_redis_is_ok(redis_url: str) -> None:
    f = await RedisSkill().check(make_node(redis_url), CheckContext())
    assert f.status is Status.OK, f.summary
    assert f.value("maxmemory_policy") == "noeviction"
    assert f.value("ping_ms") is not None
    assert f.value("connected_clients") >= 1


async def test_maxmemory_reached_under_noeviction_is_critical(
    redis_server: RedisServer, redis_url: str
) -> None:
    c = redis_server.client()
    try:
        c.config_set("maxmemory", 4 * 1024 * 1024)
        failed = fill(c, 8000)
    finally:
        c.close()
    assert failed > 0  # the server really refuses writes
    f = await RedisSkill().check(make_node(redis_url), CheckContext())
    assert f.status is Status.CRITICAL
    assert f.value("used_memory_ratio") >= 0.98
    assert f.signal("used_memory_ratio").status is Status.CRITICAL
    assert "writes fail" in f.summary
    assert f.value("oom_errors") >= 1


async def test_near_maxmemory_under_noeviction_is_degraded(
    redis_server: RedisServer, redis_url: str
) -> None:
    c = redis_server.client()
    try:
        fill(c, 4000)  # ~5 MiB of data, so a client's buffers barely move the ratio
        used = int(c.info("memory")["used_memory"])
        c.config_set("maxmemory", int(used / 0.94))
    finally:
        c.close()
    f = await RedisSkill().check(make_node(redis_url), CheckContext())
    assert f.status is Status.DEGRADED, f.summary
    assert 0.9 <= f.value("used_memory_ratio") < 0.98


async def test_evictions_under_allkeys_lru_are_counted(
    redis_server: RedisServer, redis_url: str
) -> None:
    skill = RedisSkill()
    node = make_node(redis_url)
    c = redis_server.client()
    try:
        c.config_set("maxmemory", 4 * 1024 * 1024)
        c.config_set("maxmemory-policy", "allkeys-lru")
        assert fill(c, 8000) == 0  # LRU makes room: no write fails
        c.config_set("maxmemory", 64 * 1024 * 1024)  # the burst is over: no more evictions
        evicted = int(c.info("stats")["evicted_keys"])
    finally:
        c.close()
    assert evicted > 0
    first = await skill.check(node, CheckContext())
    assert first.status is Status.DEGRADED
    assert first.value("evicted_keys") == evicted
    assert f"{evicted} key(s) evicted" in first.summary
    assert first.value("maxmemory_policy") == "allkeys-lru"

    # nothing new evicted since the last reading: the cache is full but fine
    second = await skill.check(node, CheckContext())
    assert second.status is Status.OK, second.summary
    assert second.value("evictions_per_s") == 0


async def test_closed_port_is_unreachable(closed_port: int) -> None:
    f = await RedisSkill().check(
        make_node(f"redis://127.0.0.1:{closed_port}/0", connect_timeout=1), CheckContext()
    )
    assert f.status is Status.UNREACHABLE
    assert f.error and "connect" in f.error.lower()


async def test_password_never_appears_in_findings(redis_factory) -> None:
    secret = "hunter2-redis-secret"
    srv = redis_factory(password=secret)
    ok = await check_node(make_node(srv.url), CheckContext())
    wrong_url = srv.url.replace(secret, "not-the-password")
    wrong = await RedisSkill().check(make_node(wrong_url), CheckContext())
    assert ok.status is Status.OK
    assert wrong.status is Status.UNKNOWN
    for f in (ok, wrong):
        dumped = f.model_dump_json()
        assert secret not in dumped and "not-the-password" not in dumped


async def test_cancelled_check_leaves_no_connection_open() -> None:
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        f: Finding = await check_node(
            make_node(f"redis://127.0.0.1:{port}/0", timeout=0.5, connect_timeout=30),
            CheckContext(),
        )
        assert f.status is Status.UNREACHABLE
        await asyncio.wait_for(closed.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()


def test_describe_url_drops_credentials() -> None:
    assert describe_url("redis://:pw@cache.local:6380/2") == "cache.local:6380/2"
    assert describe_url("rediss://user:pw@h") == "h:6379/0"


async def test_two_maps_with_a_node_called_redis_do_not_share_deltas(
    redis_server: RedisServer, redis_url: str, tmp_path
) -> None:
    """The process has one redis skill (the registry's); each loaded map's node keeps its
    own previous reading, so a second map's first sweep is not judged against the first's."""

    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            f"service: svc-{name}\ndownstream:\n"
            f"  - {{name: redis, type: cache, skill: redis, url: '{redis_url}'}}\n"
        )
    map_a = rootloop.load_map(tmp_path / "a.yaml", env={})
    map_b = rootloop.load_map(tmp_path / "b.yaml", env={})
    c = redis_server.client()
    try:
        c.config_set("maxmemory", 4 * 1024 * 1024)
        c.config_set("maxmemory-policy", "allkeys-lru")
        assert fill(c, 8000, prefix="two-maps") == 0
        c.config_set("maxmemory", 64 * 1024 * 1024)
    finally:
        c.close()
    skill = registry.get("redis")
    assert (await skill.check(map_a.nodes["redis"], CheckContext())).status is Status.DEGRADED
    again_a = await skill.check(map_a.nodes["redis"], CheckContext())
    assert again_a.status is Status.OK  # map a: nothing evicted since its last reading
    first_b = await skill.check(map_b.nodes["redis"], CheckContext())
    assert first_b.status is Status.DEGRADED, first_b.summary  # map b: its own first reading
    assert "since the server started" in first_b.summary
