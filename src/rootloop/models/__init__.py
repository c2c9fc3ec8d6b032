"""Data that crosses module boundaries: findings and diagnoses. Data only, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    """How a node looks. Ordered by severity so the worst can be picked with ``max``."""

    OK = "ok"
    UNKNOWN = "unknown"
    DEGRADED = "degraded"
    UNREACHABLE = "unreachable"
    CRITICAL = "critical"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def healthy(self) -> bool:
        return self is Status.OK


_SEVERITY = {
    Status.OK: 0,
    Status.UNKNOWN: 1,
    Status.DEGRADED: 2,
    Status.UNREACHABLE: 3,
    Status.CRITICAL: 4,
}


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda s: s.severity, default=Status.OK)


class Signal(BaseModel):
    """One named measurement, with the threshold it was judged against."""

    name: str
    value: float | int | str | bool | None
    unit: str = ""
    threshold: float | None = None
    status: Status = Status.OK

    def __str__(self) -> str:
        th = f" (threshold {self.threshold:g})" if self.threshold is not None else ""
        return f"{self.name}={self.value}{self.unit}{th}"


class Evidence(BaseModel):
    """Something a human (or a model) can read to check the finding."""

    kind: Literal["log", "query", "stack", "event", "metric", "text", "config", "diff"] = "text"
    title: str
    text: str


class Suspect(BaseModel):
    """Another node this finding blames, and why."""

    node: str
    reason: str
    weight: float = Field(default=1.0, ge=0.0, le=1.0)


class Finding(BaseModel):
    """What one skill saw on one node during one sweep."""

    node: str
    skill: str
    status: Status
    summary: str
    signals: list[Signal] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    anomaly_started_at: datetime | None = None
    suspects: list[Suspect] = Field(default_factory=list)
    error: str | None = None
    checked_at: datetime = Field(default_factory=utcnow)
    duration_ms: float = 0.0

    def signal(self, name: str) -> Signal | None:
        return next((s for s in self.signals if s.name == name), None)

    def value(
        self, name: str, default: float | int | str | bool | None = None
    ) -> float | int | str | bool | None:
        s = self.signal(name)
        return default if s is None else s.value


class Candidate(BaseModel):
    """A node ranked as a possible root cause: where a human starts when rootloop stops."""

    node: str
    score: float
    reasons: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    onset: datetime | None = None  # when its checks first saw the anomaly, if they know
    would_try: str | None = None  # the first thing rootloop would do about it


class Symptom(BaseModel):
    """One bad signal that led to the investigation: fixed means each is good again.

    ``signal`` None stands for the node's check as a whole (its status); otherwise the
    named signal of that check, which must come back to ``ok`` on its own.
    """

    node: str
    skill: str
    signal: str | None = None
    status: Status
    value: float | int | str | bool | None = None
    summary: str = ""

    @property
    def label(self) -> str:
        what = f"{self.node} {self.signal}" if self.signal else self.node
        return f"{what} ({self.status.value}: {self.summary or self.value})"

    def cleared_in(self, findings: list[Finding]) -> tuple[bool, str]:
        """Whether a sweep shows this symptom gone, and what it shows instead."""
        f = next((x for x in findings if x.node == self.node), None)
        if f is None:
            return False, "not checked in this sweep"
        if self.signal is None:
            return f.status is Status.OK, f"{f.status.value}: {f.summary}"
        s = f.signal(self.signal)
        if s is None:  # the check no longer reports it: judge by the check as a whole
            return f.status is Status.OK, f"{f.status.value}: {f.summary}"
        return s.status is Status.OK, f"{s.name}={s.value}{s.unit} ({s.status.value})"


def entry_symptoms(findings: list[Finding]) -> list[Symptom]:
    """Every bad check of a sweep, and each bad signal in it: what the run must clear.

    ``unknown`` is not bad (a check that could not tell); a bad check without a bad
    signal is recorded as the check itself.
    """
    out: list[Symptom] = []
    for f in findings:
        if f.status in (Status.OK, Status.UNKNOWN):
            continue
        out.append(Symptom(node=f.node, skill=f.skill, status=f.status, summary=f.summary))
        out += [
            Symptom(
                node=f.node,
                skill=f.skill,
                signal=s.name,
                status=s.status,
                value=s.value,
                summary=str(s),
            )
            for s in f.signals
            if s.status not in (Status.OK, Status.UNKNOWN)
        ]
    return out


class AlertContext(BaseModel):
    """The alert that started an investigation, as the run carries it.

    Whatever sent it (Alertmanager, SNS, PagerDuty, a webhook), the run keeps its labels
    and annotations, when it began, and — for a Prometheus alert — the expression that
    raised it: given as ``expr``, or read from Alertmanager's ``generatorURL``
    (``…/graph?g0.expr=<expr>``). A run whose sweep finds nothing wrong runs that
    expression again before it may say the complaint is gone (``rootloop.reproduce``).
    """

    source: str = ""  # alertmanager | sns | pagerduty | …
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    starts_at: datetime | None = None
    generator_url: str = ""
    expr: str | None = None  # the alert's PromQL, when the sender gave it directly

    @property
    def name(self) -> str:
        return self.labels.get("alertname") or self.annotations.get("summary", "")[:80] or "alert"

    @property
    def query(self) -> str | None:
        """The alert's own expression: ``expr``, else ``g0.expr`` of ``generator_url``."""
        if self.expr and self.expr.strip():
            return self.expr.strip()
        return expr_of_generator_url(self.generator_url)


def expr_of_generator_url(url: str) -> str | None:
    """The PromQL expression in a Prometheus alert's ``generatorURL`` (``g0.expr``)."""
    if not url:
        return None
    try:
        exprs = parse_qs(urlsplit(url).query).get("g0.expr")
    except ValueError:
        return None
    expr = exprs[0].strip() if exprs else ""
    return expr or None


class Diagnosis(BaseModel):
    """The reasoner's answer: where the fault is, of what kind, and why it thinks so."""

    root_cause: str
    category: str
    summary: str
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    path: list[str] = Field(
        default_factory=list, description="nodes from the symptom to the root cause"
    )
    reasoner: str = "rules"

    @property
    def key(self) -> str:
        """Identity of a diagnosis for 'already tried' checks: node and category."""
        return f"{self.root_cause}:{self.category}"


class Outcome(StrEnum):
    """How one iteration ended: data the gates, memory and the report read.

    The iteration's ``result`` text is for people; every decision reads this instead.
    ``fixed`` is the only outcome that credits the action with the recovery.
    """

    FIXED = "fixed"  # every entry symptom cleared because of the action, verified
    SAME_FAULT = "same_fault"  # applied, changed something; the diagnosed fault remains
    NEW_FAULT = "new_fault"  # applied; the old fault is gone but a new one shows
    NO_OP = "no_op"  # the action changed nothing in the real world
    APPLY_FAILED = "apply_failed"  # the action did not apply (error, tests, CI, push)
    REFUSED = "refused"  # a gate refused it: nothing ran
    INTERRUPTED = "interrupted"  # cut off before a verdict: killed before acting, tests broken
    RECOVERED_WITHOUT_FIX = "recovered_without_fix"  # symptoms cleared, not by this action

    @property
    def did_not_help(self) -> bool:
        """Never propose this action again for the diagnosis. A new fault is progress (the
        seed's batch-size fix that exposed pool exhaustion), not a failure of the action."""
        return self in (Outcome.SAME_FAULT, Outcome.NO_OP, Outcome.APPLY_FAILED)

    @property
    def failed(self) -> bool:
        """The iteration did not end with its fault fixed."""
        return self is not Outcome.FIXED

    @property
    def ran(self) -> bool:
        """The action's side effect was attempted."""
        return self not in (Outcome.REFUSED, Outcome.INTERRUPTED)


class PastIncident(BaseModel):
    """A previous investigation that looks like this one."""

    run_id: str
    service: str
    summary: str
    root_cause: str | None = None
    category: str | None = None
    outcome: str | None = None
    score: float = 0.0


class FailedAction(BaseModel):
    """An action that did not fix a diagnosis before: never try it again for that diagnosis."""

    run_id: str
    diagnosis_key: str
    fingerprint: str
    description: str


class PriorContext(BaseModel):
    """What memory hands a new investigation before its first sweep."""

    last_summary: str | None = None
    last_run_id: str | None = None
    similar: list[PastIncident] = Field(default_factory=list)
    failed_actions: list[FailedAction] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.last_summary or self.similar or self.failed_actions)


class Check(BaseModel):
    """One verifier's verdict (tasks stable, error rate, no blocking queries...)."""

    name: str
    passed: bool
    detail: str = ""
    symptom: bool = False  # the check of one of the run's entry symptoms


class VerifyResult(BaseModel):
    passed: bool
    checks: list[Check] = Field(default_factory=list)


class LoadTestResult(BaseModel):
    url: str
    requests: int
    successes: int
    duration_s: float
    rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    passed: bool
    reasons: list[str] = Field(default_factory=list)

    @property
    def success_ratio(self) -> float:
        return self.successes / self.requests if self.requests else 0.0


class UiTestResult(BaseModel):
    url: str
    passed: bool
    steps: list[Check] = Field(default_factory=list)
    screenshot: str | None = None
    duration_s: float = 0.0
