"""The map's policy: where rootloop may act, how far, and when it must stop.

``act_in`` is the allow-list of lower environments (default deny: anything else is
diagnosed only); ``aws_accounts`` the lower AWS accounts; ``autonomy`` how far
rootloop may go per environment and action (observe / propose / act). The rest are
the loop's budgets and timeouts. See docs/gates.md.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rootloop.models.actions import BaseAction
from rootloop.production import DEFAULT_LOWER, normalise

Level = Literal["observe", "propose", "act"]
#: strictest first: where two rules or two maps disagree, the earlier level wins
LEVELS: tuple[Level, ...] = ("observe", "propose", "act")
FAMILIES = ("infra", "code", "data")


def known_kinds() -> list[str]:
    """Every action kind rootloop has an executor for (for did-you-mean in policy rules)."""
    return sorted(str(c.model_fields["kind"].default) for c in BaseAction.__subclasses__())


class AutonomyRule(BaseModel):
    """How far rootloop may go for one environment and/or one action kind or family."""

    model_config = ConfigDict(extra="forbid")

    environment: str = "*"
    action: str = Field(default="*", description="an action kind, a family, or '*'")
    level: Level

    @field_validator("action")
    @classmethod
    def _known_action(cls, value: str) -> str:
        kinds = known_kinds()
        if value in ("*", *FAMILIES) or value in kinds:
            return value
        close = difflib.get_close_matches(value, [*kinds, *FAMILIES], n=1)
        hint = f" did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"'{value}' is not an action kind or family (infra, code, data).{hint}")


class Autonomy(BaseModel):
    """``observe`` (diagnose only), ``propose`` (each action waits for a human), ``act``.

    The most specific rule decides (environment and action > action > environment);
    between equally specific rules the stricter wins. Outside the lower environments the
    level is ``observe`` whatever is written here.
    """

    model_config = ConfigDict(extra="forbid")

    default: Level = "act"
    rules: list[AutonomyRule] = []

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"default": data} if isinstance(data, str) else data

    def level_for(self, environment: str, kind: str, family: str) -> tuple[Level, str]:
        env = normalise(environment)
        best: tuple[int, int, AutonomyRule] | None = None
        for rule in self.rules:
            env_hit = rule.environment == "*" or normalise(rule.environment) == env
            act_hit = rule.action in ("*", kind, family)
            if not (env_hit and act_hit):
                continue
            score = (2 if rule.action != "*" else 0) + (1 if rule.environment != "*" else 0)
            rank = (score, -LEVELS.index(rule.level), rule)
            if best is None or rank[:2] > best[:2]:
                best = rank
        if best is None:
            return self.default, f"policy.autonomy.default is '{self.default}'"
        rule = best[2]
        return rule.level, (
            f"policy.autonomy rule (environment {rule.environment}, action {rule.action}) "
            f"says '{rule.level}'"
        )


class Policy(BaseModel):
    """What the loop may do and when it must stop."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_iterations: int = Field(default=5, ge=1, le=50)
    no_progress_limit: int = Field(default=2, ge=1, le=50)
    error_rate_threshold: float = Field(default=0.02, ge=0, le=1)
    settle_seconds: float = Field(default=3.0, ge=0, le=3600)
    verify_timeout: float = Field(default=120.0, gt=0, le=86400)
    ci_timeout: float = Field(default=300.0, gt=0, le=86400)
    deploy_timeout: float = Field(default=180.0, gt=0, le=86400)
    concurrency: int = Field(default=512, ge=1, le=4096)
    default_timeout: float = Field(default=5.0, gt=0, le=600)
    #: the lower environments rootloop may act in; anything else is diagnosed only
    act_in: list[str] = Field(default=list(DEFAULT_LOWER), min_length=0)
    #: AWS accounts that are lower; when set, every AWS action asks STS first
    aws_accounts: list[str] = []
    autonomy: Autonomy = Autonomy()
    production_environments: list[str] = ["production", "prod", "prd", "live"]
    #: an extra regex for production names, on top of the built-in word rule
    production_name_pattern: str | None = None
    production_tags: dict[str, str] = {"environment": "production", "env": "production"}

    @field_validator("aws_accounts", mode="before")
    @classmethod
    def _account_ids(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            text = str(item).strip() if isinstance(item, int | str) else item
            if not (isinstance(text, str) and re.fullmatch(r"\d{12}", text)):
                raise ValueError(
                    f"AWS account ids are 12 digits, got {item!r}; write them in quotes "
                    "('012345678901'): unquoted, YAML reads a number and drops leading zeros"
                )
            out.append(text)
        return out

    @field_validator("production_name_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return value
