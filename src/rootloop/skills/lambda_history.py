"""A Lambda function's configuration history: what changed, when, and what came before.

Why: "errors began with a configuration change" and "the timeout was lowered" need
three facts AWS can answer without CloudTrail — the configuration in force, the
published version before it (the configuration to go back to), and when the
configuration in force was released — and one fact from the metrics: when the errors
began. Published versions are immutable snapshots of a function's configuration, so
the first version (newest first) whose configuration differs from ``$LATEST``'s is
the previous configuration, and the publication of the oldest version of the run
equal to ``$LATEST`` is when it went out. A ``$LATEST`` edited after its last
publication went out at its own ``LastModified`` (AWS updates it on every change; an
emulator that does not leaves it older than the newest version, and the time is then
unknown). No published version at all: the previous configuration is unknown.

Only field names and non-secret values leave this module: environment variables are
named, never shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rootloop.models import Evidence, Signal

#: the configuration fields a change of which can break (or slow) an invocation
COMPARED = ("Handler", "Runtime", "Timeout", "MemorySize")
MAX_VERSIONS = 50


@dataclass
class ConfigHistory:
    in_force: dict[str, Any]
    previous: dict[str, Any] | None = None  # the published version before the config in force
    released_at: datetime | None = None  # when the configuration in force went out
    errors_began_at: datetime | None = None  # the first metric period with errors
    window_start: datetime | None = None
    changes: list[str] = field(default_factory=list)

    def signals(self) -> list[Signal]:
        prev = self.previous
        return [
            Signal(name="previous_version", value=prev.get("Version") if prev else None),
            Signal(name="previous_timeout", value=prev.get("Timeout") if prev else None, unit="s"),
            Signal(name="config_changes", value="; ".join(self.changes) or None),
            Signal(name="config_released_at", value=_iso(self.released_at)),
            Signal(name="errors_began_at", value=_iso(self.errors_began_at)),
            Signal(name="window_start", value=_iso(self.window_start)),
        ]

    def evidence(self) -> list[Evidence]:
        if self.previous is None:
            return []
        when = f" at {self.released_at:%H:%M:%S}" if self.released_at else ""
        return [
            Evidence(
                kind="config",
                title="configuration change",
                text=f"the configuration in force went out{when}; against version "
                f"{self.previous.get('Version')}: {'; '.join(self.changes) or 'no difference'}",
            )
        ]


def read(
    lam: Any,
    function_name: str,
    in_force: dict[str, Any],
    window_start: datetime,
    error_series: tuple[list[float], list[datetime]] | None,
) -> ConfigHistory:
    """The function's configuration history (blocking; a handful of calls)."""
    versions = _published(lam, function_name)
    h = ConfigHistory(in_force=in_force, window_start=_aware(window_start))
    same_run: list[dict[str, Any]] = []
    for v in versions:  # newest first: the run equal to the config in force, then the one before
        if _key(v) != _key(in_force):
            h.previous = v
            break
        same_run.append(v)
    if h.previous is not None:
        h.changes = describe_changes(h.previous, in_force)
        if same_run:
            h.released_at = _when(same_run[-1].get("LastModified"))
        else:
            edited = _when(in_force.get("LastModified"))
            newest = _when(versions[0].get("LastModified")) if versions else None
            if edited is not None and (newest is None or edited > newest):
                h.released_at = edited
    if error_series is not None:
        values, times = error_series
        h.errors_began_at = next(
            (_aware(t) for v, t in zip(values, times, strict=False) if v > 0), None
        )
    return h


def _published(lam: Any, function_name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    kw: dict[str, Any] = {"FunctionName": function_name}
    while len(out) < 10 * MAX_VERSIONS:
        page = lam.list_versions_by_function(**kw)
        out.extend(v for v in page.get("Versions", []) if v.get("Version") != "$LATEST")
        if not page.get("NextMarker"):
            break
        kw["Marker"] = page["NextMarker"]
    out.sort(key=lambda v: int(v["Version"]) if str(v.get("Version")).isdigit() else -1)
    return list(reversed(out))[:MAX_VERSIONS]


def _env(cfg: dict[str, Any]) -> dict[str, str]:
    return dict((cfg.get("Environment") or {}).get("Variables") or {})


def _key(cfg: dict[str, Any]) -> tuple[Any, ...]:
    return (*(cfg.get(k) for k in COMPARED), tuple(sorted(_env(cfg).items())))


def describe_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs, in words: values for the compared fields, names for the environment."""
    out = [
        f"{k} {before.get(k)} -> {after.get(k)}" for k in COMPARED if before.get(k) != after.get(k)
    ]
    env_b, env_a = _env(before), _env(after)
    changed = sorted(k for k in set(env_b) | set(env_a) if env_b.get(k) != env_a.get(k))
    if changed:
        out.append("environment variable(s) " + ", ".join(changed))
    return out


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _aware(value)
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # AWS writes 2026-12-01T18:12:45.103+0000; emulators nanoseconds
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    if text.endswith(("+0000", "-0000")):
        text = text[:-5] + "+00:00"
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        return None


def _aware(t: datetime) -> datetime:
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None
