"""Skill verdicts as data: a table of signal rules that one function judges.

A skill measures (values by signal name) and declares how each measurement is judged:

    RULES = (
        Rule("ping_ms", "above", warn="ping_warn_ms", unit="ms", note="PING took {value:.0f}ms"),
        Rule("oom_errors", "flag", on="new_oom", severity=Status.CRITICAL),
        Rule("maxmemory_policy"),
    )
    verdict = assess(RULES, values, settings, facts)

so a new signal is one line. The judge is the same for every skill:

- ``above``: bad when the value reaches a threshold (``crit`` → critical, ``warn`` →
  degraded); ``below``: bad when the value falls to one. A threshold is a number or the
  name of a field of the node's settings, so maps tune it; a threshold that is None is
  switched off (an opt-in check), and the signal is reported, not judged.
- ``flag``: bad (``severity``) when the value — or the fact named by ``on`` — is true or
  a non-zero number; critical whenever the fact named by ``crit_on`` is.
- ``among``: a state (a string such as a task's rollout state or a run's conclusion, or
  a bool): bad (``severity``) when it is one of ``bad``, or — if ``good`` is given — when
  it is not one of ``good``; critical whenever the fact named by ``crit_on`` is.
- ``info``: reported, never judged.
- A rule whose name is not among the values does not apply (the skill did not measure
  it: no signal). A value that is None for a judged rule is ``unknown``, never ``ok``: a
  check that could not measure something cannot vouch for it.
- ``when`` names a fact that must hold for the rule to judge at all (e.g. memory is
  only a problem under ``noeviction``); when it does not, the signal is ``ok``.
- ``same_as`` reports a count with the verdict of its rate (``errors`` as ``error_rate``).

A note is a ``str.format`` template over ``value``, ``threshold`` and the facts; it is
added to the verdict's notes when the signal is bad (``crit_note`` instead, if given,
when it is critical).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from rootloop.models import Signal, Status, worst

Direction = Literal["above", "below", "flag", "among", "info"]
Value = float | int | str | bool | None
State = str | bool
Threshold = float | str | None


@dataclass(frozen=True)
class Rule:
    """How one signal is judged. See the module docstring."""

    name: str
    direction: Direction = "info"
    warn: Threshold = None
    crit: Threshold = None
    severity: Status = Status.DEGRADED  # a ``flag`` or ``among`` rule's status when bad
    note: str = ""
    crit_note: str = ""
    unit: str = ""
    #: which threshold the signal carries (``reached``: crit when critical, else warn)
    show: Literal["warn", "crit", "reached", "none"] = "warn"
    on: str | None = None  # ``flag``: the fact that marks it, instead of its own value
    crit_on: str | None = None  # ``flag``: a fact that makes it critical whatever ``severity``
    when: str | None = None  # a fact that must be true for the rule to judge
    same_as: str | None = None  # judged as that (other) rule of the table is
    bad: tuple[State, ...] = ()  # ``among``: the states that are bad
    good: tuple[State, ...] = ()  # ``among``: if given, every other state is bad


@dataclass
class Verdict:
    """The signals of one check, their statuses and the notes of the bad ones."""

    signals: list[Signal] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return worst(self.statuses)

    def add(self, signal: Signal, note: str | None = None) -> None:
        """A judged signal and, when it is bad, its note."""
        self.signals.append(signal)
        self.statuses.append(signal.status)
        if note:
            self.notes.append(note)


def threshold_of(value: Threshold, settings: object) -> float | None:
    """A rule's threshold: a number as it is, a name read from the node's settings."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    got = getattr(settings, value)
    if got is None:
        return None
    if isinstance(got, bool) or not isinstance(got, int | float):
        raise TypeError(f"threshold '{value}' of the settings is not a number: {got!r}")
    return float(got)


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _truthy(value: Value) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return bool(value)


def _flagged(rule: Rule, value: Value, facts: Mapping[str, Value]) -> bool | None:
    return _truthy(facts.get(rule.on) if rule.on is not None else value)


def _among(rule: Rule, value: Value) -> bool | None:
    """Whether a state is bad; None when there is no state (or not a state) to judge."""
    if value is None or isinstance(value, float):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    return value in rule.bad or (bool(rule.good) and value not in rule.good)


def judge_value(rule: Rule, value: Value, settings: object, facts: Mapping[str, Value]) -> Status:
    """The status of one value under one rule."""
    if rule.direction == "info":
        return Status.OK
    if rule.when is not None and not _truthy(facts.get(rule.when)):
        return Status.OK
    if rule.direction in ("flag", "among"):
        if rule.crit_on is not None and _truthy(facts.get(rule.crit_on)):
            return Status.CRITICAL
        marked = _among(rule, value) if rule.direction == "among" else _flagged(rule, value, facts)
        if marked is None:
            return Status.UNKNOWN
        return rule.severity if marked else Status.OK
    warn, crit = threshold_of(rule.warn, settings), threshold_of(rule.crit, settings)
    if warn is None and crit is None:
        return Status.OK  # switched off in the settings: reported, not judged
    number = _number(value)
    if number is None:
        return Status.UNKNOWN
    if rule.direction == "above":
        if crit is not None and number >= crit:
            return Status.CRITICAL
        if warn is not None and number >= warn:
            return Status.DEGRADED
        return Status.OK
    if crit is not None and number <= crit:
        return Status.CRITICAL
    if warn is not None and number <= warn:
        return Status.DEGRADED
    return Status.OK


def shown_threshold(rule: Rule, status: Status, settings: object = None) -> float | None:
    """The threshold a signal judged by ``rule`` carries (see ``Rule.show``)."""
    if rule.show == "reached":
        which = rule.crit if status is Status.CRITICAL else rule.warn
    else:
        which = {"warn": rule.warn, "crit": rule.crit, "none": None}[rule.show]
    return threshold_of(which, settings)


def assess(
    rules: Iterable[Rule],
    values: Mapping[str, Value | Signal],
    settings: object = None,
    facts: Mapping[str, Value] | None = None,
) -> Verdict:
    """Judge every rule whose signal was measured, in the table's order.

    A value that is already a ``Signal`` was judged elsewhere (a metric's anomaly
    verdict, ``cloudwatch_metrics``) and is reported as it is, in its place in the table.
    """
    table = [r for r in rules if r.name in values]
    plain = {k: v for k, v in values.items() if not isinstance(v, Signal)}
    facts = {**plain, **(facts or {})}
    statuses: dict[str, Status] = {}
    for rule in table:
        value = values[rule.name]
        if isinstance(value, Signal):
            statuses[rule.name] = value.status
        elif rule.same_as is None:
            statuses[rule.name] = judge_value(rule, value, settings, facts)
    verdict = Verdict()
    for rule in table:
        value = values[rule.name]
        if isinstance(value, Signal):
            verdict.add(value)
            continue
        status = statuses.get(rule.same_as or rule.name, Status.UNKNOWN)
        shown = shown_threshold(rule, status, settings)
        signal = Signal(name=rule.name, value=value, unit=rule.unit, threshold=shown, status=status)
        note = None
        if status in (Status.DEGRADED, Status.CRITICAL, Status.UNREACHABLE):
            template = rule.crit_note if status is Status.CRITICAL and rule.crit_note else rule.note
            fields = {**facts, "value": value, "threshold": shown}
            note = template.format_map(fields) if template else None
        verdict.add(signal, note)
    return verdict
