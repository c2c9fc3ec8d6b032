"""boto3 sessions and clients, configured the standard way.

Credentials come from boto3's default chain (environment, shared files and
profiles, SSO, container and instance roles); rootloop never reads keys from
the map. A node may name a ``region``, a ``profile`` and an ``endpoint_url``
(an emulator such as moto's server, or a VPC endpoint). Every client carries
connect/read timeouts and a bounded retry budget, so a call made on a sweep
thread always ends: a thread cannot be cancelled, its socket timeout can.

Every session of the process shares one botocore data loader (per data path), so
the service models and endpoint rules, several megabytes of JSON, are read once
rather than once per session: a new session (another region or timeout, or the
cache cleared after credentials change) costs about 20 ms of CPU instead of 130.
The loaded models are read-only to botocore, as they already are to the clients of
one session.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader, create_loader
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_REGION = "us-east-1"


class AwsConfig(BaseModel):
    """How to reach AWS. Mixed into every AWS skill's settings (flat keys in the map)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str | None = Field(default=None, description="AWS region; default: the chain's")
    profile: str | None = Field(default=None, description="a named profile of ~/.aws/config")
    endpoint_url: str | None = Field(
        default=None, description="emulator or VPC endpoint, e.g. http://127.0.0.1:5000"
    )
    connect_timeout: float = Field(default=3.0, gt=0, le=60)
    read_timeout: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=3, ge=1, le=10)

    def aws_key(self) -> tuple[Any, ...]:
        return (
            self.region,
            self.profile,
            self.endpoint_url,
            self.connect_timeout,
            self.read_timeout,
            self.max_attempts,
        )

    def aws_only(self) -> AwsConfig:
        """Just the connection part of a (skill settings) object that mixes this in."""
        return AwsConfig(**{k: getattr(self, k) for k in AwsConfig.model_fields})


def botocore_config(cfg: AwsConfig) -> Config:
    return Config(
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        retries={"max_attempts": cfg.max_attempts, "mode": "standard"},
        user_agent_extra="rootloop",
    )


@dataclass
class AwsClients:
    """Lazily built, cached boto3 clients for one AwsConfig. Clients are thread-safe."""

    config: AwsConfig
    session: boto3.session.Session
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def region(self) -> str:
        return self.session.region_name or DEFAULT_REGION

    def client(self, service: str) -> Any:
        with self._lock:  # botocore's client creation is not thread-safe on one session
            c = self._clients.get(service)
            if c is None:
                c = self.session.client(
                    service,
                    region_name=self.region,
                    endpoint_url=self.config.endpoint_url,
                    config=botocore_config(self.config),
                )
                c.meta.events.register("before-call", _remember_service)
                self._clients[service] = c
            return c

    @property
    def ecs(self) -> Any:
        return self.client("ecs")

    @property
    def logs(self) -> Any:
        return self.client("logs")

    @property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @property
    def sqs(self) -> Any:
        return self.client("sqs")

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")

    @property
    def elasticache(self) -> Any:
        return self.client("elasticache")


_LAST = threading.local()


def _remember_service(model: Any = None, **_: Any) -> None:
    """botocore 'before-call' hook: which service this thread called last (for errors)."""
    _LAST.service = model.service_model.service_name if model is not None else None


def last_service() -> str | None:
    """The AWS service this thread called last, to name a missing IAM action."""
    return getattr(_LAST, "service", None)


_CACHE: dict[tuple[Any, ...], AwsClients] = {}
_CACHE_LOCK = threading.Lock()
_LOADERS: dict[str | None, Loader] = {}  # by AWS_DATA_PATH; guarded by _CACHE_LOCK


def _new_session(cfg: AwsConfig) -> boto3.session.Session:
    """A boto3 session on the process's shared data loader for its data path.

    Called under ``_CACHE_LOCK``. A profile that does not exist raises botocore's
    ProfileNotFound here, as ``boto3.session.Session(profile_name=...)`` does.
    """
    core = botocore.session.Session(profile=cfg.profile)
    data_path = core.get_config_variable("data_path")
    loader = _LOADERS.get(data_path)
    if loader is None:
        loader = _LOADERS[data_path] = create_loader(data_path)
    core.register_component("data_loader", loader)
    session = boto3.session.Session(botocore_session=core, region_name=cfg.region)
    # boto3 appends its own data folder to the loader's search path on every session:
    # keep each folder once, so the shared loader's path does not grow with sessions
    paths = loader.search_paths
    paths[:] = list(dict.fromkeys(paths))
    return session


def clients_for(cfg: AwsConfig) -> AwsClients:
    """Clients for a config, shared by every node that connects the same way."""
    cfg = cfg.aws_only()
    key = cfg.aws_key()
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = _CACHE[key] = AwsClients(config=cfg, session=_new_session(cfg))
        return found


def clear_cache() -> None:
    """Forget cached sessions (after credentials files or environment change)."""
    with _CACHE_LOCK:
        _CACHE.clear()
