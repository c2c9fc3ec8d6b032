"""rootloop as a service: alerts in, durable investigations out.

    intake (sources/*)  verify the sender, parse the payload into ``Alert``s
    routing             which service map an alert is about
    admission           storms: one investigation per service and environment,
                        flapping suppression, a rate limit per service
    store               alerts, investigations and verdicts in SQL (SQLite or PostgreSQL)
    durable             each investigation a DBOS workflow on a DBOS queue
    investigate         the one adapter onto the loop (``rootloop.runner``)
    app                 the FastAPI application; ``rootloop serve`` runs it on uvicorn

Imports point one way: serve builds on runner; nothing below imports serve.
"""

from rootloop.serve.config import ServeConfig, load_config

__all__ = ["ServeConfig", "load_config"]
