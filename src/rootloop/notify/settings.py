"""The ``notify`` section of the serve config: where each service's events go."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


def as_secret(raw: object) -> SecretStr:
    """``env:NAME`` / ``file:PATH`` / literal, as the rest of the serve config reads it."""
    from rootloop.serve.config import resolve_secret  # that module imports this one

    if isinstance(raw, SecretStr):
        return raw
    return SecretStr(resolve_secret(str(raw)))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlackApprover(Strict):
    """A Slack user allowed to press Approve/Deny, and where (``*``: every environment)."""

    user_id: str = Field(pattern=r"^[UW][A-Z0-9]{2,30}$")
    name: str = ""
    environments: list[str] = ["*"]

    def may_approve(self, environment: str) -> bool:
        return "*" in self.environments or environment in self.environments


class SlackSettings(Strict):
    bot_token: SecretStr
    signing_secret: SecretStr
    channel: str = Field(description="the default channel id")
    approvers: list[SlackApprover] = []
    #: the Web API's base URL; only tests point it elsewhere
    base_url: str = "https://slack.com/api/"
    #: how old an interaction's timestamp may be (Slack recommends five minutes)
    max_age_seconds: int = Field(default=300, ge=30, le=900)

    @field_validator("bot_token", "signing_secret", mode="before")
    @classmethod
    def _resolve(cls, v: object) -> SecretStr:
        return as_secret(v)

    def approver(self, user_id: str) -> SlackApprover | None:
        return next((a for a in self.approvers if a.user_id == user_id), None)


class TeamsTarget(Strict):
    url: SecretStr  # an incoming webhook URL is itself a credential

    @field_validator("url", mode="before")
    @classmethod
    def _resolve(cls, v: object) -> SecretStr:
        return as_secret(v)


class WebhookTarget(Strict):
    url: str
    secret: SecretStr

    @field_validator("secret", mode="before")
    @classmethod
    def _resolve(cls, v: object) -> SecretStr:
        secret = as_secret(v)
        if len(secret.get_secret_value()) < 16:
            raise ValueError("a webhook secret must be at least 16 characters")
        return secret


class Destinations(Strict):
    slack_channel: str | None = None
    teams: list[str] = []
    webhooks: list[str] = []


class NotifyRoute(Destinations):
    service: str


class NotifySettings(Strict):
    slack: SlackSettings | None = None
    teams: dict[str, TeamsTarget] = {}
    webhooks: dict[str, WebhookTarget] = {}
    routes: list[NotifyRoute] = []
    default: Destinations = Destinations()
    #: the dashboard's public URL, for links in messages
    public_url: str | None = None
    poll_seconds: float = Field(default=2.0, ge=0.2, le=300)

    def destinations(self, service: str) -> Destinations:
        """The service's route, else the default; a Slack channel falls back to Slack's."""
        chosen = next((r for r in self.routes if r.service == service), self.default)
        channel = chosen.slack_channel or self.default.slack_channel
        if channel is None and self.slack is not None:
            channel = self.slack.channel
        return Destinations(slack_channel=channel, teams=chosen.teams, webhooks=chosen.webhooks)

    @property
    def enabled(self) -> bool:
        return self.slack is not None or bool(self.teams) or bool(self.webhooks)
