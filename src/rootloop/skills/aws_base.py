"""The shape every read-only AWS skill shares: read on the thread pool, then judge.

boto3 blocks, so reading happens on the sweep's threads (each call bounded by its
socket timeouts); an AWS failure becomes the finding that says what went wrong
(throttled, access denied with the missing permission, unreachable); judging the
state read is pure and lives in each skill.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rootloop.models import Finding
from rootloop.models.nodes import Node
from rootloop.platforms.aws.errors import AWS_ERRORS, failure_finding
from rootloop.platforms.aws.metrics import Window
from rootloop.platforms.aws.session import clients_for
from rootloop.skills.base import BaseSkill, CheckContext


class AwsSkill(BaseSkill):
    #: reads the state: ``inspect(clients, settings, window) -> state``
    inspect: ClassVar[Callable[..., Any]]
    #: minutes of baseline before the incident window (0: no baseline)
    baseline_minutes: ClassVar[int | None] = None

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s: Any = node.settings
        baseline = self.baseline_minutes
        if baseline is None:
            baseline = s.baseline_minutes
        window = Window.around(ctx.window_start, ctx.window_end, s.window_minutes, baseline)
        try:
            state = await ctx.run_blocking(type(self).inspect, clients_for(s), s, window)
        except AWS_ERRORS as exc:
            return failure_finding(node.name, self.name, exc)
        return self.judge(node, s, state)

    def judge(self, node: Node, s: Any, state: Any) -> Finding:  # pragma: no cover
        raise NotImplementedError
