"""The real clients: Prometheus evaluates a rule, Alertmanager posts to ``rootloop serve``.

A small exporter on loopback serves ``checkout_error_ratio``; Prometheus (Debian
package ``prometheus``) scrapes it every second and fires ``CheckoutErrors``
while it is above 0.1; Alertmanager (``prometheus-alertmanager``) routes the
alert to ``/hooks/alertmanager``. Nobody calls rootloop by hand: the test sees
the investigation start, end, and — once the exporter is healthy again — the
resolved notice recorded on it. The investigator is the recording fake; the
loop on a real lab fault is a later step.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rootloop.serve.testing import ServeProcess, serve_processes, wait_for, write_map

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

pytestmark = pytest.mark.skipif(
    not (PROMETHEUS and ALERTMANAGER),
    reason="needs the Debian packages prometheus and prometheus-alertmanager",
)


def free_port() -> int:
    # Prometheus and Alertmanager cannot report a port 0 back; take one the kernel chose.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    def __init__(self) -> None:
        self.ratio = 0.5
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (
                    "# TYPE checkout_error_ratio gauge\n"
                    f'checkout_error_ratio{{service="checkout"}} {exporter.ratio}\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[ServeProcess, Exporter]]:
    write_map(tmp_path / "checkout.yaml", "checkout", "staging")
    (tmp_path / "serve.yaml").write_text(
        "investigator: rootloop.serve.testing\n"
        "queue: {polling_interval_seconds: 0.2}\n"
        "routes:\n  - {name: checkout, map: checkout.yaml, match: {service: checkout}}\n"
    )
    env = {
        "ROOTLOOP_STATE_DIR": str(tmp_path / "state"),
        "ROOTLOOP_SERVE_FAKE_LOG": str(tmp_path / "effects.log"),
    }
    exporter = Exporter()
    procs: list[subprocess.Popen[bytes]] = []
    with serve_processes(tmp_path, env) as start:
        serve = start()
        am_port, prom_port = free_port(), free_port()
        (tmp_path / "am.yml").write_text(
            "route:\n  receiver: rootloop\n  group_by: [alertname, service]\n"
            "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
            "receivers:\n  - name: rootloop\n    webhook_configs:\n"
            f"      - url: {serve.base}/hooks/alertmanager\n        send_resolved: true\n"
        )
        (tmp_path / "rules.yml").write_text(
            "groups:\n  - name: checkout\n    rules:\n      - alert: CheckoutErrors\n"
            "        expr: checkout_error_ratio > 0.1\n        for: 0s\n"
            "        labels: {severity: page}\n"
            "        annotations: {summary: checkout errors above 10%}\n"
        )
        (tmp_path / "prom.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{tmp_path / 'rules.yml'}]\n"
            "alerting:\n  alertmanagers:\n"
            f"    - static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]\n"
            "scrape_configs:\n  - job_name: checkout\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n"
        )
        log = (tmp_path / "prom-am.log").open("ab")
        procs.append(
            subprocess.Popen(
                [
                    str(ALERTMANAGER),
                    f"--config.file={tmp_path / 'am.yml'}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=log,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={tmp_path / 'prom.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=log,
                stderr=log,
            )
        )
        try:
            yield serve, exporter
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            exporter.server.shutdown()
            exporter.server.server_close()


def test_prometheus_rule_through_alertmanager_starts_and_resolves_an_investigation(
    stack: tuple[ServeProcess, Exporter],
) -> None:
    serve, exporter = stack
    investigations = wait_for(
        "Alertmanager to start an investigation",
        lambda: serve.get("/investigations").json(),
    )
    (inv,) = investigations  # type: ignore[misc]
    assert inv["service"] == "checkout" and inv["environment"] == "staging"
    assert inv["fingerprint"].startswith("alertmanager:")
    alerts = serve.get(f"/investigations/{inv['id']}").json()["alerts"]
    assert alerts[-1]["labels"]["alertname"] == "CheckoutErrors"
    assert alerts[-1]["labels"]["severity"] == "page"
    wait_for(
        "the investigation to end",
        lambda: serve.get(f"/investigations/{inv['id']}").json()["status"] == "ended",
    )
    exporter.ratio = 0.0  # the service is healthy again: Prometheus resolves the alert
    detail = wait_for(
        "the resolved notice",
        lambda: (d := serve.get(f"/investigations/{inv['id']}").json())["resolved_at"] and d,
    )
    assert "resolved" in [a["verdict"] for a in detail["alerts"]]  # type: ignore[index]
    assert len(serve.get("/investigations").json()) == 1
