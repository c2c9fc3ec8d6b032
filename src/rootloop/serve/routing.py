"""Which service map an alert is about: the routing table of the serve config.

A route matches when every ``match`` label equals, every ``match_re`` label
fully matches its pattern, and every ``match_annotations`` annotation equals.
A route with no conditions matches everything (a catch-all, as the last
route). First match wins. The map's service and environment, read once at
start-up, are the key admission leases on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rootloop import topology
from rootloop.errors import RootloopError, UserError
from rootloop.serve.alerts import Alert
from rootloop.serve.config import Route
from rootloop.skills import registry


@dataclass(frozen=True)
class Target:
    route: str
    map_path: Path
    service: str
    environment: str

    @property
    def lease_key(self) -> str:
        return f"{self.service}@{self.environment}"


class Router:
    def __init__(self, routes: list[Route], targets: dict[str, Target]) -> None:
        self.routes = routes
        self.targets = targets
        self._patterns = {r.name: {k: re.compile(v) for k, v in r.match_re.items()} for r in routes}

    @classmethod
    def load(cls, routes: list[Route]) -> Router:
        """Read every route's map now: a route to a broken map refuses to start the service."""
        names = [r.name for r in routes]
        if len(set(names)) != len(names):
            raise UserError("serve config: route names must be unique")
        targets = {}
        for route in routes:
            try:
                topo = topology.load(route.map, skills=registry)
            except RootloopError as exc:
                raise UserError(f"serve config: route '{route.name}': {exc}") from None
            targets[route.name] = Target(route.name, route.map, topo.service, topo.environment)
        return cls(routes, targets)

    def route(self, alert: Alert) -> Target | None:
        for route in self.routes:
            if self._matches(route, alert):
                return self.targets[route.name]
        return None

    def _matches(self, route: Route, alert: Alert) -> bool:
        if any(alert.labels.get(k) != v for k, v in route.match.items()):
            return False
        if any(alert.annotations.get(k) != v for k, v in route.match_annotations.items()):
            return False
        return all(
            (value := alert.labels.get(label)) is not None and pattern.fullmatch(value)
            for label, pattern in self._patterns[route.name].items()
        )
