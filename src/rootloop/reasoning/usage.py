"""Token and cost accounting for model calls, per call and per run.

Why a ledger of its own: a model costs money and time, and an operator reading a
report wants to know what each diagnosis and each code fix cost. Every call (one
``Agent.run``: a diagnosis, a code fix, including failed ones, whose tokens were
spent all the same) becomes a ``CallUsage``; the loop keeps the run's ledger in
``DebugContext.usage`` (``UsageLedger.store``) and the report reads it back
(``UsageLedger.from_context``). Storing is idempotent, so a resumed run never
counts a call twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from rootloop.context import DebugContext
from rootloop.models import utcnow

if TYPE_CHECKING:
    from pydantic_ai.messages import ModelMessage

Purpose = Literal["diagnose", "code-fix", "summary"]


class Price(BaseModel):
    """What the provider charges, in US dollars per 1,000 tokens (from its price page)."""

    input_per_1k: float = Field(ge=0)
    output_per_1k: float = Field(ge=0)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return round(
            input_tokens / 1000 * self.input_per_1k + output_tokens / 1000 * self.output_per_1k, 6
        )


class CallUsage(BaseModel):
    """One model call: one agent run, however many requests its retries and tools took."""

    id: str = Field(default_factory=lambda: secrets.token_hex(6))
    purpose: Purpose = "diagnose"
    model: str = ""
    iteration: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    seconds: float = 0.0  # wall time of the call, retries included
    cost_usd: float | None = None
    ok: bool = True
    error: str | None = None
    at: datetime = Field(default_factory=utcnow)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class UsageTotals(BaseModel):
    calls: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    seconds: float = 0.0
    failed_calls: int = 0
    cost_usd: float | None = None


class UsageLedger(BaseModel):
    """Every model call of a run, and their sum."""

    calls: list[CallUsage] = Field(default_factory=list)

    def add(self, call: CallUsage) -> CallUsage:
        self.calls.append(call)
        return call

    def totals(self, purpose: Purpose | None = None) -> UsageTotals:
        rows = [c for c in self.calls if purpose is None or c.purpose == purpose]
        costs = [c.cost_usd for c in rows if c.cost_usd is not None]
        inp = sum(c.input_tokens for c in rows)
        out = sum(c.output_tokens for c in rows)
        return UsageTotals(
            calls=len(rows),
            requests=sum(c.requests for c in rows),
            input_tokens=inp,
            output_tokens=out,
            total_tokens=inp + out,
            seconds=round(sum(c.seconds for c in rows), 3),
            failed_calls=sum(1 for c in rows if not c.ok),
            cost_usd=round(sum(costs), 6) if costs else None,
        )

    def since(self, n: int) -> list[CallUsage]:
        """Calls added after the first ``n`` (what a caller has not stored yet)."""
        return self.calls[n:]

    # -- the debug context --------------------------------------------------
    @classmethod
    def from_context(cls, ctx: DebugContext) -> UsageLedger:
        calls = ctx.usage.get("calls") or []
        return cls(calls=[CallUsage.model_validate(c) for c in calls])

    def store(self, ctx: DebugContext) -> UsageTotals:
        """Merge this ledger's calls into ``ctx.usage`` (by id: storing twice adds nothing)."""
        merged = UsageLedger.from_context(ctx)
        known = {c.id for c in merged.calls}
        for call in self.calls:
            if call.id not in known:
                merged.calls.append(call)
        totals = merged.totals()
        ctx.usage = {
            "calls": [c.model_dump(mode="json") for c in merged.calls],
            "totals": totals.model_dump(mode="json"),
        }
        return totals


def call_from_messages(
    messages: Iterable[ModelMessage],
    *,
    purpose: Purpose,
    model: str,
    price: Price | None = None,
    iteration: int = 0,
    error: str | None = None,
    seconds: float = 0.0,
) -> CallUsage:
    """Sum the usage every model response of one run reported (failed runs included)."""
    # Here, not at the top: only a run that used a model has messages, and the report
    # (which imports this module) must not load the model framework for a rules-only run.
    from pydantic_ai.messages import ModelResponse

    inp = out = requests = tools = 0
    for m in messages:
        if isinstance(m, ModelResponse):
            requests += 1
            inp += m.usage.input_tokens
            out += m.usage.output_tokens
            tools += sum(1 for p in m.parts if p.part_kind == "tool-call")
    return CallUsage(
        purpose=purpose,
        model=model,
        iteration=iteration,
        requests=requests,
        input_tokens=inp,
        output_tokens=out,
        tool_calls=tools,
        seconds=round(seconds, 3),
        cost_usd=price.cost(inp, out) if price else None,
        ok=error is None,
        error=error,
    )


def report_view(usage: dict[str, Any]) -> dict[str, Any]:
    """What a report shows of ``DebugContext.usage``: the run's totals, the model, and why
    each failed call failed (a rejected answer says which check refused it)."""
    if not usage or "calls" not in usage:
        return usage
    ledger = UsageLedger(calls=[CallUsage.model_validate(c) for c in usage["calls"]])
    t = ledger.totals()
    models = sorted({c.model for c in ledger.calls if c.model})
    view: dict[str, Any] = {
        "model": ", ".join(models) or None,
        "calls": t.calls,
        "requests": t.requests,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "seconds": t.seconds,
        "cost_usd": t.cost_usd,
    }
    failures = [f"{c.purpose} #{c.iteration}: {c.error}" for c in ledger.calls if c.error]
    if failures:
        view["failed_calls"] = "; ".join(failures)
    return view


def event_data(call: CallUsage, ledger: UsageLedger) -> dict[str, Any]:
    """Payload for the loop's ``usage`` event: this call and the run so far."""
    return {"call": call.model_dump(mode="json"), "totals": ledger.totals().model_dump()}
