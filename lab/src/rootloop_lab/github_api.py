"""A GitHub-REST-shaped API over the lab's CI runs, on loopback.

Serves the Actions endpoints rootloop's ``github-actions`` skill reads, with
GitHub's documented response shapes: runs (``workflow_runs``), jobs with steps,
and logs (a 302 to a zip of ``<job>/<n>_<step>.txt`` files plus ``0_<job>.txt``,
each line prefixed by an ISO timestamp, like GitHub's).
"""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rootloop_lab.ci import JOB, WORKFLOW, WORKFLOW_PATH, CiStore, RunRecord
from rootloop_lab.layout import GITHUB_REPO

_RUNS = re.compile(r"^/repos/([^/]+)/([^/]+)/actions(?:/workflows/[^/]+)?/runs$")
_RUN = re.compile(r"^/repos/([^/]+)/([^/]+)/actions/runs/(\d+)(/jobs|/logs)?$")
_JOB = re.compile(r"^/repos/([^/]+)/([^/]+)/actions/jobs/(\d+)(/logs)?$")
_REPO = re.compile(r"^/repos/([^/]+)/([^/]+)$")


class GitHubApi:
    def __init__(self, store: CiStore, port: int) -> None:
        self.store = store
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True, name="github-api").start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- shapes -----------------------------------------------------------
    def html(self, path: str = "") -> str:
        return f"{self.base}/{GITHUB_REPO}{path}"

    def api(self, path: str = "") -> str:
        return f"{self.base}/repos/{GITHUB_REPO}{path}"

    def run_json(self, r: RunRecord) -> dict[str, Any]:
        owner, name = GITHUB_REPO.split("/")
        return {
            "id": r.id,
            "name": WORKFLOW,
            "node_id": f"WFR_{r.id}",
            "head_branch": r.head_branch,
            "head_sha": r.head_sha,
            "path": WORKFLOW_PATH,
            "display_title": r.message,
            "run_number": r.run_number,
            "event": "push",
            "status": r.status,
            "conclusion": r.conclusion,
            "workflow_id": 1,
            "check_suite_id": r.id,
            "url": self.api(f"/actions/runs/{r.id}"),
            "html_url": self.html(f"/actions/runs/{r.id}"),
            "jobs_url": self.api(f"/actions/runs/{r.id}/jobs"),
            "logs_url": self.api(f"/actions/runs/{r.id}/logs"),
            "workflow_url": self.api("/actions/workflows/1"),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "run_started_at": r.started_at or r.created_at,
            "run_attempt": 1,
            "pull_requests": [],
            "head_commit": {
                "id": r.head_sha,
                "tree_id": r.head_sha,
                "message": r.message,
                "timestamp": r.created_at,
                "author": {"name": "lab", "email": "dev@lab.local"},
                "committer": {"name": "lab", "email": "dev@lab.local"},
            },
            "repository": {
                "id": 1,
                "name": name,
                "full_name": GITHUB_REPO,
                "owner": {"login": owner, "id": 1},
            },
        }

    def job_json(self, r: RunRecord) -> dict[str, Any]:
        return {
            "id": r.job_id,
            "run_id": r.id,
            "run_url": self.api(f"/actions/runs/{r.id}"),
            "node_id": f"J_{r.job_id}",
            "head_sha": r.head_sha,
            "head_branch": r.head_branch,
            "url": self.api(f"/actions/jobs/{r.job_id}"),
            "html_url": self.html(f"/actions/runs/{r.id}/job/{r.job_id}"),
            "status": r.status,
            "conclusion": r.conclusion,
            "created_at": r.created_at,
            "started_at": r.started_at or r.created_at,
            "completed_at": r.completed_at,
            "name": JOB,
            "workflow_name": WORKFLOW,
            "labels": ["ubuntu-latest"],
            "runner_name": "lab-runner",
            "runner_id": 1,
            "run_attempt": 1,
            "check_run_url": self.api(f"/check-runs/{r.job_id}"),
            "steps": [s.model_dump() for s in r.steps],
        }

    def step_text(self, r: RunRecord, step: str) -> str:
        ts = (r.completed_at or r.created_at).replace("Z", ".0000000Z")
        if step == "Run tests":
            body = f"##[group]Run {r.output.splitlines()[0][2:] if r.output else 'tests'}\n"
            body += "##[endgroup]\n" + r.output
            if r.conclusion == "failure":
                body += "##[error]Process completed with exit code 1.\n"
        else:
            body = f"{step}\n"
        return "".join(f"{ts} {line}\n" for line in body.splitlines())

    def logs_zip(self, r: RunRecord) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            whole = ""
            for s in r.steps:
                text = self.step_text(r, s.name)
                whole += text
                z.writestr(f"{JOB}/{s.number}_{s.name}.txt", text)
            z.writestr(f"0_{JOB}.txt", whole)
        return buf.getvalue()

    def job_log(self, r: RunRecord) -> str:
        return "".join(self.step_text(r, s.name) for s in r.steps)

    # -- HTTP -------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: object) -> None:
                pass

            def send(
                self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def json(self, status: int, body: Any) -> None:
                self.send(
                    status,
                    json.dumps(body).encode(),
                    "application/json; charset=utf-8",
                    {
                        "X-GitHub-Media-Type": "github.v3",
                        "X-RateLimit-Remaining": "5000",
                        "X-RateLimit-Limit": "5000",
                    },
                )

            def not_found(self) -> None:
                self.json(
                    404,
                    {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},
                )

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                path = url.path.rstrip("/")
                if path.startswith("/_blobs/"):
                    return self.blob(path)
                m = _RUNS.match(path)
                if m and f"{m[1]}/{m[2]}" == GITHUB_REPO:
                    return self.runs(q)
                m = _RUN.match(path)
                if m and f"{m[1]}/{m[2]}" == GITHUB_REPO:
                    run = api.store.get(int(m[3]))
                    if run is None:
                        return self.not_found()
                    if m[4] == "/jobs":
                        return self.json(200, {"total_count": 1, "jobs": [api.job_json(run)]})
                    if m[4] == "/logs":
                        return self.send(
                            302,
                            b"",
                            "text/plain",
                            {"Location": f"{api.base}/_blobs/runs/{run.id}.zip"},
                        )
                    return self.json(200, api.run_json(run))
                m = _JOB.match(path)
                if m and f"{m[1]}/{m[2]}" == GITHUB_REPO:
                    run = api.store.get(int(m[3]) // 10)
                    if run is None or run.job_id != int(m[3]):
                        return self.not_found()
                    if m[4] == "/logs":
                        return self.send(
                            302,
                            b"",
                            "text/plain",
                            {"Location": f"{api.base}/_blobs/jobs/{run.id}.txt"},
                        )
                    return self.json(200, api.job_json(run))
                m = _REPO.match(path)
                if m and f"{m[1]}/{m[2]}" == GITHUB_REPO:
                    return self.json(
                        200,
                        {
                            "id": 1,
                            "name": m[2],
                            "full_name": GITHUB_REPO,
                            "default_branch": "main",
                            "private": True,
                        },
                    )
                return self.not_found()

            def runs(self, q: dict[str, str]) -> None:
                runs = api.store.all()
                if q.get("branch"):
                    runs = [r for r in runs if r.head_branch == q["branch"]]
                if q.get("head_sha"):
                    runs = [r for r in runs if r.head_sha == q["head_sha"]]
                if q.get("status"):
                    runs = [r for r in runs if q["status"] in (r.status, r.conclusion)]
                per_page = min(100, int(q.get("per_page", 30)))
                page = max(1, int(q.get("page", 1)))
                chunk = runs[(page - 1) * per_page : page * per_page]
                self.json(
                    200,
                    {"total_count": len(runs), "workflow_runs": [api.run_json(r) for r in chunk]},
                )

            def blob(self, path: str) -> None:
                kind, _, name = path[len("/_blobs/") :].partition("/")
                run = api.store.get(int(name.split(".")[0])) if name[:1].isdigit() else None
                if run is None:
                    return self.not_found()
                if kind == "runs":
                    return self.send(200, api.logs_zip(run), "application/zip")
                return self.send(200, api.job_log(run).encode(), "text/plain; charset=utf-8")

        return Handler
