"""The service's configuration: sources, routes, storms, the database, the queue.

Validated once at start-up, with errors that name the field: a service that
would route alerts to a map it cannot load, or verify webhooks with no secret,
should refuse to start rather than fail at 3 a.m. on the first alert.

Secrets are never written in the file itself unless the operator insists:
``env:NAME`` reads an environment variable and ``file:/path`` a file, so the
config can be committed. They are held as ``SecretStr`` and never logged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from rootloop.errors import UserError
from rootloop.notify.settings import NotifySettings
from rootloop.serve.auth.settings import AccessSettings
from rootloop.state import state_dir

# AWS publishes SNS signing certificates and subscription endpoints only on these hosts.
AWS_SNS_HOSTS = [r"sns\.[a-z0-9-]+\.amazonaws\.com", r"sns\.[a-z0-9-]+\.amazonaws\.com\.cn"]


def resolve_secret(raw: str) -> str:
    """``env:NAME`` → the variable, ``file:PATH`` → the file's text, else the literal."""
    if raw.startswith("env:"):
        name = raw[4:]
        value = os.environ.get(name)
        if not value:
            raise ValueError(f"environment variable {name} is not set or empty")
        return value
    if raw.startswith("file:"):
        path = Path(raw[5:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    return raw


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _secrets(values: object) -> list[SecretStr]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise ValueError("expected a list of secrets (env:NAME, file:PATH or the value)")
    out = []
    for raw in values:
        if isinstance(raw, SecretStr):
            out.append(raw)
            continue
        value = resolve_secret(str(raw))
        if len(value) < 16:
            raise ValueError("a webhook secret must be at least 16 characters")
        out.append(SecretStr(value))
    return out


Secrets = Annotated[list[SecretStr], BeforeValidator(_secrets)]


class AlertmanagerSource(_Strict):
    """Alertmanager's webhook can send a bearer token (``http_config.authorization``)."""

    tokens: Secrets = []


class PagerDutySource(_Strict):
    """PagerDuty v3 signs with each subscription's secret; several allow a rotation."""

    secrets: Secrets = []


class GenericSource(_Strict):
    secrets: Secrets = []
    window_seconds: int = Field(default=300, ge=10, le=3600)


class EventBridgeSource(_Strict):
    """API destinations send a fixed key; we expect ``Authorization: Bearer <key>``."""

    keys: Secrets = []
    header: str = "Authorization"


class SnsSource(_Strict):
    topic_arns: list[str] = []
    cert_hosts: list[str] = Field(default_factory=lambda: list(AWS_SNS_HOSTS))
    subscribe_hosts: list[str] = Field(default_factory=lambda: list(AWS_SNS_HOSTS))
    ca_bundle: Path | None = None
    max_age_seconds: int = Field(default=3600, ge=60, le=7 * 86400)

    @field_validator("cert_hosts", "subscribe_hosts")
    @classmethod
    def _compile(cls, v: list[str]) -> list[str]:
        for pattern in v:
            re.compile(pattern)
        return v


class Sources(_Strict):
    alertmanager: AlertmanagerSource = AlertmanagerSource()
    pagerduty: PagerDutySource = PagerDutySource()
    generic: GenericSource = GenericSource()
    eventbridge: EventBridgeSource = EventBridgeSource()
    sns: SnsSource = SnsSource()


class Route(_Strict):
    """Alerts whose labels (and annotations) match go to this map. First match wins."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    map: Path
    match: dict[str, str] = {}
    match_re: dict[str, str] = {}
    match_annotations: dict[str, str] = {}

    @field_validator("match_re")
    @classmethod
    def _regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for label, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match_re.{label}: not a regular expression ({exc})") from None
        return v


class RateLimit(_Strict):
    max: int = Field(default=6, ge=1)
    per_seconds: int = Field(default=3600, ge=1)


class Storms(_Strict):
    # After an investigation of an alert ends, the same alert firing again within this
    # window is recorded but starts nothing: it is flapping, and rerunning the analysis
    # on every flap is what floods the trackers of tools like this one.
    flap_window_seconds: int = Field(default=900, ge=0)
    rate_limit: RateLimit = RateLimit()


class QueueSettings(_Strict):
    name: str = "rootloop-investigations"
    worker_concurrency: int = Field(default=1, ge=1, le=64)
    global_concurrency: int | None = Field(default=None, ge=1)
    polling_interval_seconds: float = Field(default=1.0, gt=0, le=60)


class ReadAccess(_Strict):
    """Alerts carry labels and annotations an outsider should not read: with tokens set,
    GET /alerts and /investigations need ``Authorization: Bearer <token>``."""

    tokens: Secrets = []


class Approvals(_Strict):
    """Who may approve a paused investigation over HTTP, and how long it waits."""

    tokens: Secrets = []  # none: approvals only through `rootloop approve`
    wait_seconds: int = Field(default=86_400, ge=60)


class FleetSettings(_Strict):
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=300)
    # A worker silent this long is declared dead and its investigations recovered by another.
    # Too short, and a merely slow worker has its step run twice; hence two minutes.
    dead_after_seconds: float = Field(default=120.0, ge=1)


class ServeConfig(_Strict):
    state_dir: Path | None = None
    # None: SQLite files under the state directory (one machine). A PostgreSQL URL
    # (postgresql://…) for a fleet: every worker and intake shares it.
    database_url: SecretStr | None = None
    executor_id: str | None = None
    worker: bool = True
    reasoner: Literal["rules", "model", "hybrid", "auto"] = "auto"
    # A module with investigate(request) and approve(request, gate, approver); the default
    # is the loop's adapter, rootloop.serve.investigate.
    investigator: str = "rootloop.serve.investigate"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    sources: Sources = Sources()
    routes: list[Route] = []
    storms: Storms = Storms()
    queue: QueueSettings = QueueSettings()
    fleet: FleetSettings = FleetSettings()
    approvals: Approvals = Approvals()
    read: ReadAccess = ReadAccess()
    # the dashboard and its API (rootloop.serve.dashboard); absent: not mounted
    access: AccessSettings | None = None
    # Slack, Teams and webhook notifications (rootloop.notify)
    notify: NotifySettings = NotifySettings()

    @field_validator("database_url", mode="before")
    @classmethod
    def _db(cls, v: object) -> object:
        if v is None:
            return v
        url = resolve_secret(str(v))
        if not url.startswith(("postgresql://", "postgresql+psycopg://", "sqlite:///")):
            raise ValueError("database_url must be postgresql://… or sqlite:///…")
        return url

    def resolved_state_dir(self) -> Path:
        return (self.state_dir or state_dir()).expanduser().resolve()

    def database(self) -> str:
        """DBOS's system database: the fleet's PostgreSQL, else a SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.serve_dir() / 'dbos.sqlite'}"

    @property
    def shared(self) -> bool:
        """PostgreSQL: several processes, on several machines, share the queue."""
        return self.database_url is not None and not self.database().startswith("sqlite")

    def resolved_executor_id(self) -> str:
        """Configured, else ``local`` on SQLite (one process; a restart recovers its runs),
        else unique per process on PostgreSQL (two workers must never share an id: each
        would recover the other's running workflows as its own at start-up)."""
        if self.executor_id:
            return self.executor_id
        if not self.shared:
            return "local"
        import secrets
        import socket

        return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"

    def store_database(self) -> str:
        """Alerts and investigations: beside DBOS's tables in PostgreSQL, else their own file
        (two SQLite files, so intake writes never wait on the queue's polling)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.serve_dir() / 'serve.sqlite'}"

    def serve_dir(self) -> Path:
        path = self.resolved_state_dir() / "serve"
        path.mkdir(parents=True, exist_ok=True)
        return path


def load_config(path: Path | None) -> ServeConfig:
    """The embedded default when ``path`` is None; else the YAML file, validated."""
    if path is None:
        return ServeConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UserError(f"cannot read serve config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    base = path.resolve().parent
    for route in raw.get("routes") or []:
        if isinstance(route, dict) and isinstance(route.get("map"), str):
            route["map"] = str((base / route["map"]).resolve())
    try:
        return ServeConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(f"{path}: {problems}") from None
