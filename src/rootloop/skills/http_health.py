"""``http-health``: is an HTTP dependency answering, fast enough, with the right status?"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import Field, ValidationInfo, model_validator

from rootloop.models import Evidence, Finding, Signal, Status
from rootloop.models.nodes import Node, SkillSettings
from rootloop.skills.base import BaseSkill, CheckContext
from rootloop.skills.verdicts import Rule, Value, Verdict, assess


class HttpHealthSettings(SkillSettings):
    url: str = Field(default="", description="base URL of the service, or the full health URL")
    path: str = ""
    method: str = "GET"
    expect_status: list[int] = [200]
    expect_body: str | None = None  # a substring the body must contain
    latency_warn_ms: float = 500.0
    latency_crit_ms: float = 2000.0
    headers: dict[str, str] = {}
    verify_tls: bool = True

    @model_validator(mode="before")
    @classmethod
    def _default_url(cls, data: Any, info: ValidationInfo) -> Any:
        """The seed's maps name nodes only: use service discovery (http://NAME/health)."""
        node = (info.context or {}).get("node")
        if isinstance(data, dict) and not data.get("url") and node:
            return {**data, "url": f"http://{node}", "path": data.get("path") or "/health"}
        return data

    @model_validator(mode="after")
    def _url_has_scheme(self) -> HttpHealthSettings:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https:// (got {self.url!r})")
        return self

    @property
    def target(self) -> str:
        return self.url.rstrip("/") + self.path if self.path else self.url


LATENCY = Rule("latency_ms", "above", warn="latency_warn_ms", crit="latency_crit_ms", unit="ms")
#: the signals of an HTTP check (see ``rootloop.skills.verdicts``): a status the map does
#: not expect is degraded, a server error (5xx) critical; a body without the expected text
#: is degraded
RULES: tuple[Rule, ...] = (
    Rule("http_status", "flag", on="unexpected_status", crit_on="server_error"),
    LATENCY,
    Rule("expected_body", "among", good=(True,)),
)


def judge_response(
    s: HttpHealthSettings, status_code: int, latency_ms: float, text: str
) -> Verdict:
    """The verdict on one answer. The body is looked at only when the status is expected
    (an error page says nothing about the service's own body)."""
    unexpected = status_code not in s.expect_status
    values: dict[str, Value] = {"http_status": status_code, "latency_ms": round(latency_ms, 1)}
    if s.expect_body and not unexpected:
        values["expected_body"] = s.expect_body in text
    facts: dict[str, Value] = {
        "unexpected_status": unexpected,
        "server_error": unexpected and status_code >= 500,
    }
    return assess(RULES, values, s, facts)


class HttpHealthSkill(BaseSkill):
    name = "http-health"
    Settings = HttpHealthSettings
    default_timeout = 5.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s = node.settings
        assert isinstance(s, HttpHealthSettings)
        # The client timeout sits just inside the sweep's, so the sweep sees a clean
        # answer ("timed out after …") instead of cancelling us.
        timeout = httpx.Timeout(max(0.1, node.timeout * 0.9))
        start = time.perf_counter()
        try:
            client = ctx.http(s.verify_tls)
            resp = await client.request(s.method, s.target, headers=s.headers, timeout=timeout)
        except httpx.TimeoutException:
            return self.finding(
                node,
                Status.UNREACHABLE,
                f"{s.target} did not answer within {timeout.read:g}s",
                error="timeout",
            )
        except httpx.HTTPError as exc:
            return self.unreachable(node, exc)
        latency = (time.perf_counter() - start) * 1000.0
        body = resp.text[:2000]
        verdict = judge_response(s, resp.status_code, latency, resp.text)
        signals = verdict.signals
        wait = retry_after_s(resp.headers.get("retry-after"))
        if wait is not None:  # the server asks callers to come back later (429, 503)
            signals.append(Signal(name="retry_after_s", value=wait, unit="s"))
        if resp.status_code not in s.expect_status:
            summary = f"HTTP {resp.status_code} from {s.path or '/'} in {latency:.0f} ms"
            evidence = [Evidence(kind="text", title="response body", text=body or "(empty)")]
            return self.finding(node, verdict.status, summary, signals=signals, evidence=evidence)
        if s.expect_body and s.expect_body not in resp.text:
            return self.finding(
                node,
                verdict.status,
                f"HTTP {resp.status_code} but the body lacks {s.expect_body!r}",
                signals=signals,
                evidence=[Evidence(kind="text", title="response body", text=body)],
            )
        summary = f"HTTP {resp.status_code} in {latency:.0f} ms"
        if verdict.status is not Status.OK:
            summary += " (slow)"
        return self.finding(node, verdict.status, summary, signals=signals)


def retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` (RFC 9110 §10.2.3) in seconds: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, round((when - datetime.now(UTC)).total_seconds(), 1))
