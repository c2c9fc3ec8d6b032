"""A local server speaking the Slack Web API's shapes, for slack-sdk's WebClient.

``chat.postMessage``, ``chat.update``, ``chat.postEphemeral`` and ``views.open``
answer as Slack documents them (``{"ok": true, "channel", "ts", "message"}``) and
record every call; the client's ``base_url`` points here.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

CHANNEL_IDS = {"#orders": "C0ORDERS", "#alerts": "C0ALERTS"}


class SlackApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/api/{method}")(self.handle)

    def of(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [args for m, args in self.calls if m == method]

    async def handle(self, method: str, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            args = json.loads(raw or b"{}")
        else:
            args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        for key in ("blocks", "view"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        with self._lock:
            ts = f"1700000000.{next(self._ts):06d}"
            args["_ts"] = ts  # what this call answered, for the test to follow the thread
            self.calls.append((method, args))
        channel = CHANNEL_IDS.get(str(args.get("channel")), str(args.get("channel", "")))
        if method == "chat.postMessage":
            if not args.get("text") and not args.get("blocks"):
                return JSONResponse({"ok": False, "error": "no_text"})
            return JSONResponse(
                {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text")}}
            )
        if method == "chat.update":
            return JSONResponse({"ok": True, "channel": channel, "ts": args.get("ts")})
        if method == "chat.postEphemeral":
            return JSONResponse({"ok": True, "message_ts": ts})
        if method == "views.open":
            return JSONResponse({"ok": True, "view": {"id": "V1"}})
        return JSONResponse({"ok": False, "error": "unknown_method"})
