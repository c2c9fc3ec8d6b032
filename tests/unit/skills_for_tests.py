"""Skills that exist only for tests of the sweep: they wait, hang or crash on purpose."""

from __future__ import annotations

import asyncio

from rootloop.models import Finding, Status
from rootloop.skills.base import BaseSkill, CheckContext, Node, SkillSettings

OPEN: set[str] = set()  # names of checks currently running; empty after a clean sweep


class SleepSettings(SkillSettings):
    seconds: float = 0.01
    status: Status = Status.OK


class SleepSkill(BaseSkill):
    name = "test-sleep"
    Settings = SleepSettings
    default_timeout = 2.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s: SleepSettings = node.settings  # type: ignore[assignment]
        OPEN.add(node.name)
        try:
            await asyncio.sleep(s.seconds)
        finally:
            OPEN.discard(node.name)
        return self.finding(node, s.status, f"slept {s.seconds}s")


class CrashSkill(BaseSkill):
    name = "test-crash"
    default_timeout = 2.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        raise RuntimeError("boom: password=hunter22 leaked in an exception")
