"""Where the lab keeps things, and the state file the supervisor writes.

``lab.json`` is the contract between the supervisor (which writes it) and every
other process (``Lab``, the CLI, tests): ports, URLs, pids, and whether the lab
is ready.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from rootloop.state import atomic_write

CLUSTER = "lab"
REGION = "us-east-1"
ACCOUNT = "123456789012"
ACCESS_KEY = "testing"  # the emulator accepts any key; these are not secrets
SECRET_KEY = "testing"
FUNCTION = "lambda-worker"
QUEUE = "sqs-payments"
DLQ = "sqs-payments-dlq"
SERVICE = "payments-api"
ECS_SERVICES = ("payments-api", "api-gateway", "frontend-app", "notification-svc")
GITHUB_REPO = "lab/payments-api"
PG_MAX_CONNECTIONS = 50


class Ports(BaseModel):
    moto: int = 0
    postgres: int = 0
    redis: int = 0
    ci: int = 0
    payments_api: int = 0
    api_gateway: int = 0
    frontend_app: int = 0
    notification_svc: int = 0

    def of(self, service: str) -> int:
        return int(getattr(self, service.replace("-", "_")))


class LabState(BaseModel):
    status: Literal["starting", "ready", "failed", "stopping", "stopped"] = "starting"
    error: str = ""
    supervisor_pid: int = 0
    ports: Ports = Ports()
    pg_data_dir: str = ""
    queue_url: str = ""
    dlq_url: str = ""
    started_at: float = 0.0
    ready_at: float = 0.0
    generation: int = 0  # how many times it was restored in place (rootloop_lab.snapshot)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.moto}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports.of(service)}"

    def pg_dsn(
        self,
        user: str = "postgres",
        database: str = "payments",
        application_name: str | None = None,
    ) -> str:
        dsn = f"postgresql://{user}@127.0.0.1:{self.ports.postgres}/{database}"
        return dsn + (f"?application_name={application_name}" if application_name else "")

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports.redis}/0"


class Layout:
    """The paths of one lab directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def state_file(self) -> Path:
        return self.root / "lab.json"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def origin(self) -> Path:
        return self.root / "repo" / "origin.git"

    @property
    def work(self) -> Path:
        return self.root / "repo" / "work"

    @property
    def deploys(self) -> Path:
        return self.root / "deploy"

    @property
    def ci(self) -> Path:
        return self.root / "ci"

    @property
    def map_file(self) -> Path:
        return self.root / "rootloop.yaml"

    @property
    def production_map_file(self) -> Path:
        return self.root / "rootloop.production.yaml"

    @property
    def runbooks(self) -> Path:
        return self.root / "runbooks"

    def read_state(self) -> LabState | None:
        try:
            return LabState.model_validate(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return None

    def write_state(self, state: LabState) -> None:
        atomic_write(self.state_file, state.model_dump_json(indent=2) + "\n")

    def record_pid(self, name: str, pid: int) -> None:
        self.pids.mkdir(parents=True, exist_ok=True)
        (self.pids / f"{name}.pid").write_text(f"{pid}\n")

    def forget_pid(self, name: str) -> None:
        (self.pids / f"{name}.pid").unlink(missing_ok=True)

    def recorded_pids(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in sorted(self.pids.glob("*.pid")) if self.pids.exists() else []:
            try:
                out[f.stem] = int(f.read_text().strip())
            except (OSError, ValueError):
                continue
        return out
