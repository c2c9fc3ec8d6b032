"""Settings from the environment (the ECS task definition's container env)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    port: int
    pg_dsn: str
    redis_url: str
    queue_url: str
    notify_url: str
    git_sha: str
    batch_interval: float
    backpressure_depth: int
    notify_retries: int


def load() -> Config:
    env = os.environ
    return Config(
        port=int(env.get("PORT", "8080")),
        pg_dsn=env.get("PG_DSN", ""),
        redis_url=env.get("REDIS_URL", ""),
        queue_url=env.get("QUEUE_URL", ""),
        notify_url=env.get("NOTIFY_URL", ""),
        git_sha=env.get("GIT_SHA", "unknown"),
        batch_interval=float(env.get("BATCH_INTERVAL", "2")),
        backpressure_depth=int(env.get("BACKPRESSURE_DEPTH", "100")),
        notify_retries=int(env.get("NOTIFY_RETRIES", "3")),
    )
