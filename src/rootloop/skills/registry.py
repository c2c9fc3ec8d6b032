"""Finds skills by name: an explicit table of built-ins plus the ``rootloop.skills``
entry-point group, so a third-party package adds a skill by declaring

    [project.entry-points."rootloop.skills"]
    my-skill = "my_package.module:MySkill"

Skills load lazily: naming ``aws-ecs`` imports boto3, naming ``redis`` does not.
"""

from __future__ import annotations

import difflib
import importlib
from functools import cache
from importlib.metadata import entry_points

from rootloop.errors import UserError
from rootloop.skills.base import Skill

BUILTIN: dict[str, str] = {
    "http-health": "rootloop.skills.http_health:HttpHealthSkill",
    "postgres": "rootloop.skills.postgres:PostgresSkill",
    "redis": "rootloop.skills.redis:RedisSkill",
    "aws-ecs": "rootloop.skills.aws_ecs:EcsSkill",
    "cloudwatch-logs": "rootloop.skills.cloudwatch_logs:CloudWatchLogsSkill",
    "cloudwatch-metrics": "rootloop.skills.cloudwatch_metrics:CloudWatchMetricsSkill",
    "aws-sqs": "rootloop.skills.aws_sqs:SqsSkill",
    "aws-lambda": "rootloop.skills.aws_lambda:LambdaSkill",
    "aws-elasticache": "rootloop.skills.aws_elasticache:ElastiCacheSkill",
    "github-actions": "rootloop.skills.github_actions:GitHubActionsSkill",
    "mcp": "rootloop.skills.mcp_client:McpSkill",
    "prometheus": "rootloop.skills.prometheus:PrometheusSkill",
}


class UnknownSkill(UserError):
    pass


_REGISTERED: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Add a skill at run time ("module:Class"), e.g. from a plugin loaded by hand."""
    _REGISTERED[name] = target
    get.cache_clear()


def _targets() -> dict[str, str]:
    found = {**BUILTIN, **_REGISTERED}
    for ep in entry_points(group="rootloop.skills"):
        found.setdefault(ep.name, ep.value)
    return found


def names() -> list[str]:
    return sorted(_targets())


def suggest(name: str) -> str:
    close = difflib.get_close_matches(name, names(), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


@cache
def get(name: str) -> Skill:
    """The skill instance registered under ``name``."""
    targets = _targets()
    if name not in targets:
        raise UnknownSkill(
            f"unknown skill '{name}': {suggest(name)}known skills are {', '.join(names())}"
        )
    module_name, _, attr = targets[name].partition(":")
    try:
        module = importlib.import_module(module_name)
        skill = getattr(module, attr)()
    except (ImportError, AttributeError) as exc:
        raise UnknownSkill(
            f"skill '{name}' is registered as '{targets[name]}' but could not be loaded "
            f"({type(exc).__name__}: {exc}); is the package that provides it installed?"
        ) from None
    if not isinstance(skill, Skill):
        raise UnknownSkill(f"'{targets[name]}' registered as skill '{name}' is not a Skill")
    return skill
