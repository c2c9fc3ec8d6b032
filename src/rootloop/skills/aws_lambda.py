"""Lambda function: errors, throttles, duration vs timeout, concurrency, cold starts.

Numbers come from CloudWatch (AWS/Lambda), limits from the function's
configuration (timeout, reserved concurrency) and the account settings, cold
starts from the ``REPORT`` lines of its log group (``Init Duration``), and the
state of its event-source mappings (a disabled SQS trigger is a consumer that
stopped; ``LastProcessingResult: PROBLEM`` is one that fails).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from pydantic import Field

from rootloop.models import Evidence, Finding, Signal, Status
from rootloop.models.nodes import Node, SkillSettings, node_default
from rootloop.platforms.aws.logs import filter_events
from rootloop.platforms.aws.metrics import Window
from rootloop.platforms.aws.session import AwsClients, AwsConfig
from rootloop.skills import lambda_history, verdicts
from rootloop.skills.aws_base import AwsSkill
from rootloop.skills.cloudwatch_metrics import MetricAssessment, MetricSpec, assess
from rootloop.skills.verdicts import Rule, Value

AWS_DEFAULT_ACCOUNT_CONCURRENCY = 1000
_INIT = re.compile(r"Init Duration:\s*([\d.]+)\s*ms")


class Settings(SkillSettings, AwsConfig):
    fill_from_node: ClassVar[Any] = node_default("function_name")

    function_name: str = ""
    log_group: str | None = Field(default=None, description="default /aws/lambda/<function>")
    window_minutes: float = Field(default=15, gt=0, le=1440)
    baseline_minutes: float = Field(default=60, gt=0, le=10080)
    error_rate_warn: float = Field(default=0.05, ge=0, le=1)
    error_rate_crit: float = Field(default=0.25, ge=0, le=1)
    throttle_rate_crit: float = Field(default=0.05, ge=0, le=1)
    duration_warn_ratio: float = Field(default=0.8, gt=0, le=1)
    concurrency_warn_ratio: float = Field(default=0.9, gt=0, le=1)
    cold_starts: bool = True
    max_report_lines: int = Field(default=5000, ge=1)


@dataclass
class LambdaState:
    config: dict[str, Any]
    reserved: int | None
    account_limit: int
    account_limit_known: bool
    mappings: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, MetricAssessment] = field(default_factory=dict)
    reports: int = 0
    cold_starts: int = 0
    max_init_ms: float | None = None
    history: lambda_history.ConfigHistory | None = None  # configuration changes


def inspect(clients: AwsClients, s: Any, window: Window) -> LambdaState:
    lam = clients.lambda_
    cfg = lam.get_function_configuration(FunctionName=s.function_name)
    reserved = lam.get_function_concurrency(FunctionName=s.function_name).get(
        "ReservedConcurrentExecutions"
    )
    try:
        limit = int(lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
        known = True
    except (ClientError, KeyError):  # not granted, or an emulator without the API
        limit, known = AWS_DEFAULT_ACCOUNT_CONCURRENCY, False
    maps = lam.list_event_source_mappings(FunctionName=s.function_name).get(
        "EventSourceMappings", []
    )
    st = LambdaState(
        config=cfg, reserved=reserved, account_limit=limit, account_limit_known=known, mappings=maps
    )
    dims = {"FunctionName": s.function_name}
    timeout_ms = float(cfg.get("Timeout", 3)) * 1000.0
    conc_limit = float(reserved if reserved is not None else limit)
    specs = [
        MetricSpec(
            namespace="AWS/Lambda",
            name="Invocations",
            dimensions=dims,
            stat="Sum",
            label="invocations",
            direction="both",
        ),
        MetricSpec(
            namespace="AWS/Lambda", name="Errors", dimensions=dims, stat="Sum", label="errors"
        ),
        MetricSpec(
            namespace="AWS/Lambda", name="Throttles", dimensions=dims, stat="Sum", label="throttles"
        ),
        MetricSpec(
            namespace="AWS/Lambda",
            name="Duration",
            dimensions=dims,
            stat="Maximum",
            label="duration_max",
            unit="ms",
            warn=timeout_ms * s.duration_warn_ratio,
            crit=timeout_ms * 0.99,
        ),
        MetricSpec(
            namespace="AWS/Lambda",
            name="ConcurrentExecutions",
            dimensions=dims,
            stat="Maximum",
            label="concurrent_executions",
            warn=conc_limit * s.concurrency_warn_ratio,
        ),
    ]
    st.metrics = {a.spec.signal_name: a for a in assess(clients, specs, window)}
    errors = st.metrics.get("errors")
    try:  # an extra read: without lambda:ListVersionsByFunction the rest still stands
        st.history = lambda_history.read(
            lam, s.function_name, cfg, window.start,
            (errors.incident, errors.incident_times) if errors else None,
        )  # fmt: skip
    except ClientError:
        st.history = None
    if s.cold_starts:
        group = s.log_group or f"/aws/lambda/{s.function_name}"
        try:
            got = filter_events(
                clients.logs,
                group,
                window.start,
                window.end,
                pattern="REPORT",
                max_events=s.max_report_lines,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            got = None
        for e in got.events if got else []:
            if not e.message.startswith("REPORT"):
                continue
            st.reports += 1
            m = _INIT.search(e.message)
            if m:
                st.cold_starts += 1
                v = float(m.group(1))
                st.max_init_ms = v if st.max_init_ms is None else max(st.max_init_ms, v)
    return st


#: a function's signals (see ``rootloop.skills.verdicts``); the metrics' and the event
#: sources' verdicts are their own (anomaly scores; mapping states)
RULES: tuple[Rule, ...] = (
    Rule("invocations"),
    Rule("errors", same_as="error_rate"),
    # degraded from the warning rate, but only with errors; critical from the critical rate
    Rule("error_rate", "above", warn="error_rate_warn", crit="error_rate_crit", when="errors"),
    Rule("throttles", same_as="throttle_rate"),
    # any throttle is degraded (warn 0 once there are throttles); critical from the rate
    Rule(
        "throttle_rate", "above", warn=0, crit="throttle_rate_crit", when="throttles", show="none"
    ),
    Rule("duration_max"),
    Rule("timeout", unit="s"),
    Rule("concurrent_executions"),
    Rule("concurrency_limit"),
    Rule("reserved_concurrency"),
    Rule("state", "among", bad=("Failed", "Inactive"), severity=Status.CRITICAL, show="none"),
    # a trigger failing its batches is degraded; a disabled one (a consumer that stopped)
    # is critical
    Rule("event_source_problems", "flag", crit_on="disabled_triggers"),
    Rule("cold_starts"),
    Rule("max_init_duration", unit="ms"),
)


class LambdaSkill(AwsSkill):
    name: ClassVar[str] = "aws-lambda"
    Settings: ClassVar[type[SkillSettings]] = Settings
    inspect = staticmethod(inspect)
    default_timeout: ClassVar[float] = 20.0

    def judge(self, node: Node, s: Any, st: LambdaState) -> Finding:
        m = st.metrics
        inv, errs, thr = m["invocations"].total, m["errors"].total, m["throttles"].total
        attempts = inv + thr  # throttled requests are not counted as invocations
        err_rate = errs / inv if inv else (1.0 if errs else 0.0)
        thr_rate = thr / attempts if attempts else 0.0
        timeout_s = float(st.config.get("Timeout", 3))
        limit = st.reserved if st.reserved is not None else st.account_limit

        state = st.config.get("State", "Active")
        problems = []
        disabled = 0
        for mp in st.mappings:
            src = str(mp.get("EventSourceArn", "")).rsplit(":", 1)[-1]
            if mp.get("State") in ("Disabled", "Disabling"):
                problems.append(
                    f"trigger from {src} is {mp['State']} ({mp.get('StateTransitionReason', '')})"
                )
                disabled += 1
            elif str(mp.get("LastProcessingResult", "")).startswith("PROBLEM"):
                problems.append(f"trigger from {src}: {mp['LastProcessingResult']}")
        values: dict[str, Value | Signal] = {
            "invocations": inv,
            "errors": errs,
            "error_rate": round(err_rate, 4),
            "throttles": thr,
            "throttle_rate": round(thr_rate, 4),
            "duration_max": m["duration_max"].signal(),
            "timeout": timeout_s,
            "concurrent_executions": m["concurrent_executions"].signal(),
            "concurrency_limit": limit,
            "reserved_concurrency": st.reserved,
            "state": state,
            "event_source_problems": len(problems),
        }
        if st.reports:
            values["cold_starts"] = st.cold_starts
            values["max_init_duration"] = st.max_init_ms
        facts: dict[str, Value] = {"disabled_triggers": disabled}
        verdict = verdicts.assess(RULES, values, s, facts)
        status, signals = verdict.status, verdict.signals
        if st.history is not None:
            signals.extend(st.history.signals())
        parts = [f"{inv:g} invocations, {errs:g} errors, {thr:g} throttles"]
        dur = m["duration_max"]
        if dur.has_data:
            parts.append(f"max duration {dur.peak:g} ms of a {timeout_s:g}s timeout")
        if thr:
            which = "reserved" if st.reserved is not None else "account"
            parts.append(f"throttled at the {which} concurrency limit of {limit}")
        if st.cold_starts:
            parts.append(f"{st.cold_starts} cold start(s), init up to {st.max_init_ms:g} ms")
        parts.extend(problems)
        evidence = [
            Evidence(kind="metric", title=a.spec.signal_name, text=a.describe()) for a in m.values()
        ]
        evidence.append(
            Evidence(
                kind="config",
                title=f"function {s.function_name}",
                text=(
                    f"runtime {st.config.get('Runtime')}, memory {st.config.get('MemorySize')} MB, "
                    f"timeout {timeout_s:g}s, reserved concurrency {st.reserved}, account limit "
                    f"{st.account_limit}{'' if st.account_limit_known else ' (assumed default)'}\n"
                    + "\n".join(
                        f"event source {mp.get('EventSourceArn')}: {mp.get('State')} "
                        f"{mp.get('LastProcessingResult', '')}"
                        for mp in st.mappings
                    )
                ),
            )
        )
        evidence.extend(st.history.evidence() if st.history is not None else [])
        onsets = [a.onset for a in m.values() if a.onset and a.status is not Status.OK]
        return self.finding(
            node,
            status,
            f"{s.function_name}: " + ", ".join(parts),
            signals=signals,
            evidence=evidence,
            anomaly_started_at=min(onsets, default=None),
        )
