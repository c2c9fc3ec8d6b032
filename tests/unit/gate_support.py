"""Maps and actions for the gate tests: a small lower-environment service, written to disk.

``write_map`` renders one map with a compute (ECS), a Lambda, PostgreSQL and Redis
node, so every action kind has a node of its own to land on; each test changes only
what it attacks (the environment, a name, a tag, a child map, the policy).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

import rootloop
from rootloop import topology
from rootloop.actions.gates import GateDecision, Gatekeeper
from rootloop.actions.types import parse_action
from rootloop.context import DebugContext

RESTART = {
    "kind": "restart",
    "target": "payments-api",
    "cluster": "staging",
    "service": "payments-api",
}
REDIS = {"kind": "set-redis-policy", "target": "redis", "policy": "allkeys-lru"}
LAMBDA = {
    "kind": "set-function-env",
    "target": "lambda-worker",
    "function_name": "payments-worker",
    "name": "POOL",
    "value": "2",
}
TERMINATE = {"kind": "terminate-backend", "target": "postgresql", "pid": 42}
MIGRATION = {
    "kind": "run-migration",
    "target": "postgresql",
    "name": "add_note",
    "sql": "ALTER TABLE payments ADD COLUMN note text",
}


def base_map(
    environment: str | None = "staging",
    cluster: str = "staging",
    service: str = "payments-api",
    policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "service": "payments-api",
        "self": {
            "health": {"skill": "http-health", "url": "http://127.0.0.1:9/health"},
            "compute": {
                "skill": "aws-ecs",
                "cluster": cluster,
                "service": service,
                "region": "us-east-1",
            },
        },
        "downstream": [
            {
                "name": "postgresql",
                "type": "db",
                "skill": "postgres",
                "dsn": "postgresql://127.0.0.1:9/payments",
            },
            {"name": "redis", "type": "cache", "skill": "redis", "url": "redis://127.0.0.1:9/0"},
            {
                "name": "lambda-worker",
                "type": "compute",
                "skill": "aws-lambda",
                "function_name": "payments-worker",
                "region": "us-east-1",
            },
        ],
    }
    if environment is not None:
        data["environment"] = environment
    if policy:
        data["policy"] = policy
    return data


def write_map(tmp_path: Path, data: dict[str, Any], name: str = "rootloop.yaml") -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def load(tmp_path: Path, data: dict[str, Any], env: dict[str, str] | None = None):
    return rootloop.load_map(write_map(tmp_path, data), env=env or {})


def decide(
    topo: topology.Topology, action: dict[str, Any], ctx: DebugContext | None = None
) -> GateDecision:
    return Gatekeeper(topo).check(parse_action(action), ctx or DebugContext(service=topo.service))
