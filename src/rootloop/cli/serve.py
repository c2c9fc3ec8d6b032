"""``rootloop serve``: alert intake and durable investigations over HTTP."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0: any free port, printed).")] = 8080,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Serve config (YAML). Default: the embedded one."),
    ] = None,
    worker: Annotated[
        bool | None,
        typer.Option("--worker/--no-worker", help="Run investigations here (default: config)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning | error")] = "info",
) -> None:
    """Receive alerts (Alertmanager, SNS, PagerDuty, EventBridge, signed webhooks) and run
    one durable investigation per service and environment. State lives under the state
    directory ($ROOTLOOP_STATE_DIR) in SQLite unless the config names a PostgreSQL."""
    import uvicorn

    from rootloop.errors import UserError
    from rootloop.serve import durable, logs
    from rootloop.serve.assemble import build
    from rootloop.serve.config import load_config

    settings = load_config(config)
    if worker is not None:
        settings = settings.model_copy(update={"worker": worker})
    logs.configure(log_level.upper())
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it every kept-alive response waits ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)  # connections wait in the backlog while DBOS launches
    app = build(settings)
    logs.configure(log_level.upper())  # DBOS installs its own handlers at launch
    bound = sock.getsockname()[1]
    # One line on stdout a supervisor or a test can read the port from.
    print(json.dumps({"event": "listening", "host": host, "port": bound}), flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, log_level=log_level.lower())
    )
    try:
        server.run(sockets=[sock])
    finally:
        durable.shutdown()
        sys.stdout.flush()
