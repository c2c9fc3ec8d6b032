"""The load-test skill: drive an endpoint at a fixed rate and judge the figures.

Open-loop pacing: request *i* is due at ``start + i / rate`` whether or not
earlier ones have answered, so a slow service cannot slow the generator down
and hide its own latency (latency is measured from the moment a request was
due). Concurrency is bounded, every request has its own timeout, and the whole
test is bounded in count and in wall-clock time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from rootloop.errors import UserError
from rootloop.models import LoadTestResult
from rootloop.models.maps import LoadTestSpec

#: hard ceiling on the requests one test may send, whatever rate x duration says
MAX_REQUESTS = 20_000

# Load and browser tests send real requests; aimed at the wrong host they are a small
# denial of service, so both refuse non-loopback hosts unless the caller opts in.
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(url: str, what: str, allow_remote: bool) -> None:
    """Raise a clear ``UserError`` for a bad or non-loopback URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{what}: '{url}' is not an http(s) URL with a host.")
    if not allow_remote and not is_loopback_url(url):
        raise UserError(
            f"{what}: '{url}' is not a loopback address; rootloop only drives test "
            "traffic at this machine unless remote targets are allowed explicitly."
        )


@dataclass
class _Sample:
    ok: bool
    latency_ms: float
    error: str = ""


async def run_load_test(
    spec: LoadTestSpec,
    *,
    concurrency: int = 64,
    request_timeout: float = 5.0,
    allow_remote: bool = False,
) -> LoadTestResult:
    """Run the load test described by ``spec``; never raises for a failing service."""
    require_loopback(spec.url, "load_test.url", allow_remote)
    total = max(1, min(MAX_REQUESTS, math.ceil(spec.rate * spec.duration)))
    interval = 1.0 / spec.rate
    sem = asyncio.Semaphore(max(1, concurrency))
    samples: list[_Sample] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(request_timeout)

    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:

        async def one(due: float) -> None:
            async with sem:
                samples.append(await _request(client, spec, due, request_timeout))

        start = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        deadline = spec.duration + request_timeout + 5.0
        try:
            async with asyncio.timeout(deadline):
                for i in range(total):
                    due = start + i * interval
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(one(due)))
                await asyncio.gather(*tasks)
        except TimeoutError:
            pass
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.perf_counter() - start

    missing = total - len(samples)
    samples.extend(
        _Sample(False, request_timeout * 1000, "not sent in time") for _ in range(missing)
    )
    return _judge(spec, samples, elapsed)


async def _request(
    client: httpx.AsyncClient, spec: LoadTestSpec, due: float, timeout: float
) -> _Sample:
    try:
        if spec.method == "POST":
            resp = await client.post(spec.url, json=spec.body)
        else:
            resp = await client.get(spec.url)
        ok = resp.status_code < 400
        return _Sample(ok, _since(due), "" if ok else f"HTTP {resp.status_code}")
    except httpx.TimeoutException:
        return _Sample(False, max(_since(due), timeout * 1000), "timeout")
    except httpx.HTTPError as exc:
        return _Sample(False, _since(due), type(exc).__name__)


def _since(due: float) -> float:
    return (time.perf_counter() - due) * 1000.0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the value below which ``p`` % of samples fall)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _judge(spec: LoadTestSpec, samples: list[_Sample], elapsed: float) -> LoadTestResult:
    latencies = [s.latency_ms for s in samples]
    successes = sum(1 for s in samples if s.ok)
    requests = len(samples)
    p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
    ratio = successes / requests if requests else 0.0
    reasons: list[str] = []
    if ratio < spec.min_success_ratio:
        errors = _top_errors(samples)
        reasons.append(
            f"success ratio {ratio:.1%} is below {spec.min_success_ratio:.1%} "
            f"({requests - successes} of {requests} failed: {errors})"
        )
    if p50 > spec.max_p50_ms:
        reasons.append(f"p50 {p50:.0f} ms is above {spec.max_p50_ms:g} ms")
    if p95 > spec.max_p95_ms:
        reasons.append(f"p95 {p95:.0f} ms is above {spec.max_p95_ms:g} ms")
    return LoadTestResult(
        url=spec.url,
        requests=requests,
        successes=successes,
        duration_s=round(elapsed, 3),
        rate=spec.rate,
        p50_ms=round(p50, 2),
        p95_ms=round(p95, 2),
        p99_ms=round(p99, 2),
        passed=not reasons,
        reasons=reasons,
    )


def _top_errors(samples: list[_Sample], n: int = 3) -> str:
    counts: dict[str, int] = {}
    for s in samples:
        if not s.ok:
            counts[s.error] = counts.get(s.error, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} x{v}" for k, v in top) or "none"
