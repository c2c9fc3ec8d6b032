"""A real Prometheus and a real Alertmanager on loopback, for the lab and its tests.

The Debian packages' binaries (``prometheus``, ``prometheus-alertmanager``), each in
its own directory, listening on 127.0.0.1 only, with the configuration written
here: Prometheus scrapes the lab services' ``/metrics`` and evaluates the lab's
service-level rules (``LAB_RULES``), Alertmanager posts what fires to a webhook —
``rootloop serve``'s ``/hooks/alertmanager``. Neither binds port 0 and tells which
port it got, so each takes a port that was free a moment ago and tries another
when it finds the port taken.

The intervals are arguments: a test wants seconds where a deployment wants minutes;
the rules' thresholds are not (they are the service levels).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from rootloop.errors import PlatformError
from rootloop_lab.servers.ports import HOST, free_port
from rootloop_lab.servers.process import stop_escalating

#: The lab's service levels, from the signals every lab service exposes
#: (``rootloop_lab.apps.httpmetrics``): at most 5% of requests answered with a 5xx,
#: its own health check passing, and its /metrics reachable at all.
ERROR_RATIO_SLO = 0.05


def lab_rules(window: str = "1m", hold: str = "30s") -> dict[str, object]:
    """Alerting rules over ``window`` of samples, firing after ``hold`` of breach."""
    ratio = (
        f'sum by (service) (rate(http_requests_total{{code=~"5.."}}[{window}]))\n'
        f"  / sum by (service) (rate(http_requests_total[{window}]))"
    )
    return {
        "groups": [
            {
                "name": "lab-service-levels",
                "rules": [
                    {
                        "alert": "HighErrorRatio",
                        "expr": f"({ratio}) > {ERROR_RATIO_SLO}",
                        "for": hold,
                        "labels": {"severity": "page"},
                        "annotations": {
                            "summary": "{{ $labels.service }} answers "
                            "{{ $value | humanizePercentage }} of its requests with a 5xx",
                            "query": ratio,
                        },
                    },
                    {
                        "alert": "HealthCheckFailing",
                        "expr": "service_health_up == 0",
                        "for": hold,
                        "labels": {"severity": "page"},
                        "annotations": {"summary": "{{ $labels.service }}'s /health fails"},
                    },
                    {
                        "alert": "TargetDown",
                        "expr": "up == 0",
                        "for": hold,
                        "labels": {"severity": "page"},
                        "annotations": {"summary": "{{ $labels.service }}'s /metrics is down"},
                    },
                ],
            }
        ]
    }


@dataclass
class Daemon:
    """A running server; ``url`` is its HTTP root."""

    name: str
    port: int
    directory: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self, timeout: float = 15.0) -> None:
        stop_escalating(self.process, ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)))
        self.process = None

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def binary(name: str, package: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None
    )
    if found is None:
        raise PlatformError(f"{name} not found", f"install it: apt-get install {package}")
    return found


def start_prometheus(
    directory: str | Path,
    targets: dict[str, str],
    alertmanager_url: str,
    *,
    rules: dict[str, object] | None = None,
    scrape_interval: str = "15s",
    evaluation_interval: str = "15s",
    labels: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Daemon:
    """Prometheus scraping ``targets`` (``{service: "host:port"}``, path ``/metrics``).

    Each target's series carry ``service``. ``labels`` (say ``system: lab``) are the
    server's external labels: Prometheus adds them to every alert it sends, whatever
    the rule's aggregation kept, so Alertmanager's receivers can route on them."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules.yml").write_text(yaml.safe_dump(rules or lab_rules()), encoding="utf-8")
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
            "scrape_timeout": scrape_interval,
            "external_labels": labels or {},
        },
        "rule_files": [str(directory / "rules.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager_url.split("://", 1)[-1]]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": "lab",
                "static_configs": [
                    {"targets": [address], "labels": {"service": service}}
                    for service, address in sorted(targets.items())
                ],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    exe = binary("prometheus", "prometheus")

    def command(port: int) -> list[str]:
        return [
            exe,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={HOST}:{port}",
            "--web.enable-lifecycle",
        ]

    return _start("prometheus", directory, command, timeout)


def start_alertmanager(
    directory: str | Path,
    webhook_url: str,
    *,
    group_wait: str = "30s",
    group_interval: str = "5m",
    repeat_interval: str = "4h",
    timeout: float = 60.0,
) -> Daemon:
    """Alertmanager sending every alert, grouped by name, to ``webhook_url`` (and resolutions)."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "route": {
            "receiver": "rootloop",
            "group_by": ["alertname"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [
            {"name": "rootloop", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
        ],
    }
    (directory / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    exe = binary("prometheus-alertmanager", "prometheus-alertmanager")

    def command(port: int) -> list[str]:
        return [
            exe,
            f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address={HOST}:{port}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ]

    return _start("alertmanager", directory, command, timeout)


def _start(
    name: str,
    directory: Path,
    command: Callable[[int], list[str]],
    timeout: float,
    attempts: int = 3,
) -> Daemon:
    for attempt in range(attempts):
        port = free_port()
        log_file = directory / f"{name}.log"
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(
                command(port),
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        daemon = Daemon(name, port, directory, log_file, proc)
        try:
            _wait_ready(daemon, timeout)
            return daemon
        except _PortTaken:
            daemon.stop()
            if attempt + 1 == attempts:
                raise PlatformError(f"{name} found every port it tried taken") from None
        except BaseException:
            daemon.stop()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


class _PortTaken(Exception):
    pass


def _wait_ready(daemon: Daemon, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert daemon.process is not None
        if daemon.process.poll() is not None:
            said = ""
            with contextlib.suppress(OSError):
                said = daemon.log_file.read_text(errors="replace")
            if "address already in use" in said.lower():
                raise _PortTaken
            raise PlatformError(
                f"{daemon.name} exited with code {daemon.process.returncode} before it was "
                f"ready: {said.strip()[-600:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{daemon.url}/-/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise PlatformError(f"{daemon.name} was not ready after {timeout:g}s", str(daemon.log_file))
