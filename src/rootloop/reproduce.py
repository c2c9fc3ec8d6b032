"""Reproducing a complaint the sweep does not show, before a run may say it is gone.

A quiet sweep proves little: the checks may not see what the user (or the alert)
saw. Before a run with no fault found ends "not reproduced", it runs what the map has
to reproduce the complaint, and lists each of them with what it showed:

- the map's load and UI tests, judged by their objectives (latency, error ratio, the
  UI's steps);
- when an alert started the run, the alert's own query (its PromQL, from the alert or
  its ``generatorURL``) against the Prometheus the map names (a node whose skill is
  ``prometheus``, its ``url``). The complaint reproduces when the query still returns
  the series the alert was raised for: a series whose labels all appear, with the same
  values, among the alert's labels (an alert's labels are its series' plus the rule's
  and the server's external labels). Other series of the same query are another
  alert's business and are listed, not counted.

The Prometheus asked is only ever one the map names — an alert's ``generatorURL`` is
the sender's word, not a server rootloop was told to trust: when the map names several,
the one at the alert's origin is asked, else each of them.

Anything that could not run is listed as such; nothing here ever says "healthy".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rootloop.errors import PlatformError
from rootloop.models import AlertContext, LoadTestResult, UiTestResult
from rootloop.platforms.prometheus import PrometheusClient, QueryResult
from rootloop.topology import Topology

Tests = Callable[[Topology], Awaitable[tuple[LoadTestResult | None, UiTestResult | None]]]

PROMETHEUS_SKILL = "prometheus"
#: series listed per query result: enough to see what else matched, bounded
SHOWN_SERIES = 3


@dataclass
class Reproduction:
    """What was run to reproduce the complaint (``checked``, one line each) and which of
    those showed it (``reproduced``)."""

    checked: list[str] = field(default_factory=list)
    reproduced: list[str] = field(default_factory=list)
    load: LoadTestResult | None = None
    ui: UiTestResult | None = None


async def reproduce(
    topology: Topology, alert: AlertContext | None, tests: Tests | None
) -> Reproduction:
    """Run every reproduction the map and the alert allow; see the module docstring."""
    out = Reproduction()
    if tests is not None and (topology.load_test or topology.ui_test):
        await _tests(topology, tests, out)
    if alert is not None:
        await _alert_query(topology, alert, out)
    if not out.checked:
        out.checked.append(
            "the map has no load or UI test, and no alert query, to reproduce the complaint with"
        )
    return out


async def _tests(topology: Topology, tests: Tests, out: Reproduction) -> None:
    try:
        load, ui = await tests(topology)
    except Exception as exc:  # the reproduction could not run: say so, claim nothing
        out.checked.append(f"the load/UI tests could not run: {type(exc).__name__}: {exc}")
        return
    out.load, out.ui = load, ui
    if load is not None:
        line = f"load test {load.url}: {load.success_ratio:.1%} ok, p95 {load.p95_ms:.0f} ms"
        out.checked.append(line + (" (within objectives)" if load.passed else ""))
        if not load.passed:
            out.reproduced.append("load test: " + "; ".join(load.reasons))
    if ui is not None:
        out.checked.append(f"UI test {ui.url}: {'passed' if ui.passed else 'failed'}")
        if not ui.passed:
            failing = [s.name for s in ui.steps if not s.passed] or ["a step"]
            out.reproduced.append("UI test failed at " + ", ".join(failing))


async def _alert_query(topology: Topology, alert: AlertContext, out: Reproduction) -> None:
    expr = alert.query
    what = f"alert {alert.name}"
    if expr is None:
        out.checked.append(
            f"{what} ({alert.source or 'unknown source'}) carries no query to run again"
        )
        return
    servers = prometheus_servers(topology)
    if not servers:
        out.checked.append(
            f"{what}: its query `{expr}` was not run: the map names no Prometheus "
            f"(a node with skill '{PROMETHEUS_SKILL}')"
        )
        return
    for node, settings in _chosen(servers, alert.generator_url):
        client = PrometheusClient(
            settings["url"],
            headers=settings.get("headers") or None,
            verify_tls=bool(settings.get("verify_tls", True)),
        )
        try:
            result = await client.query(expr)
        except PlatformError as exc:
            out.checked.append(f"{what}: its query `{expr}` could not run on {node}: {exc}")
            continue
        line, fires = judge_alert_query(result, alert)
        out.checked.append(f"{what}: its query `{expr}` on {node} (Prometheus): {line}")
        if fires:
            out.reproduced.append(f"{what} still fires: `{expr}` on {node} {line}")


def judge_alert_query(result: QueryResult, alert: AlertContext) -> tuple[str, bool]:
    """What the alert's query shows now, and whether the alert's own series is among it."""
    if result.empty:
        return "returns nothing now (the alert's condition does not hold)", False
    if result.result_type in ("scalar", "string"):
        value = result.samples[0].value if result.samples else None
        return f"returns the {result.result_type} {value}", True
    samples = result.samples
    mine = [s for s in samples if s.matches(alert.labels)] if alert.labels else list(samples)
    shown = ", ".join(
        f"{_series(s.labels)} = {s.value:g}" for s in (mine or samples)[:SHOWN_SERIES]
    )
    more = len(mine or samples) - SHOWN_SERIES
    shown += f" (+{more} more)" if more > 0 else ""
    if mine:
        return f"returns {len(mine)} series of this alert: {shown}", True
    return (
        f"returns {len(samples)} series, none with this alert's labels: {shown}",
        False,
    )


def prometheus_servers(topology: Topology) -> list[tuple[str, dict[str, Any]]]:
    """The map's Prometheus servers: each node checked by the ``prometheus`` skill, with
    its settings (``url`` and, when set, ``headers`` and ``verify_tls``)."""
    out = []
    for node in topology.nodes.values():
        if node.skill != PROMETHEUS_SKILL:
            continue
        settings = node.settings.model_dump()
        if isinstance(settings.get("url"), str) and settings["url"]:
            out.append((node.name, settings))
    return out


def _chosen(
    servers: list[tuple[str, dict[str, Any]]], generator_url: str
) -> list[tuple[str, dict[str, Any]]]:
    """The server at the alert's origin when the map names it, else every one."""
    origin = _origin(generator_url)
    if origin:
        same = [s for s in servers if _origin(s[1]["url"]) == origin]
        if same:
            return same
    return servers


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}" if parts.hostname else ""
    except ValueError:
        return ""


def _series(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name
