"""What the Lambda service enforces around lambda-worker's code, played by the lab.

moto stores a function's configuration but runs nothing (that needs Docker); the lab's
worker process is the function's execution environment, so it honours the parts of the
configuration the Lambda service itself enforces:

- ``Timeout``: an invocation still running at its timeout is ended: the log says
  ``Task timed out after N.NN seconds``, the invocation is an error, its Duration is
  the timeout, and its batch is not deleted (the messages come back after their
  visibility timeout, and reach the DLQ after ``maxReceiveCount`` tries);
- reserved concurrency: ``PutFunctionConcurrency`` with 0 (what the console's
  "Throttle" button sets) refuses every invocation: the event-source mapping's invokes
  are throttled (the Throttles metric), nothing is received;
- ``Handler``: the code package defines ``worker.handler`` only; any other handler
  fails every invocation on import (``Runtime.ImportModuleError``), as Lambda's Python
  runtime does.

Each invocation renders the batch's receipts; the renderer's start dominates and takes
``RENDER_SECONDS`` whatever the batch size: the function normally runs for a little
more than a second, well inside its 10 s timeout.
"""

from __future__ import annotations

import time
from typing import Any

#: the modules and functions the code package (worker.py) defines
PACKAGE: dict[str, set[str]] = {"worker": {"handler"}}
HANDLER = "worker.handler"
RENDER_SECONDS = 1.2


class TimedOut(Exception):
    """The invocation reached the function's configured timeout."""


class ImportModuleError(Exception):
    pass


class HandlerNotFound(Exception):
    pass


def load_handler(handler: str) -> None:
    """Raise as Lambda's Python runtime does when the handler cannot be loaded."""
    module, _, func = handler.rpartition(".")
    if module not in PACKAGE:
        raise ImportModuleError(
            f"Unable to import module '{module or handler}': No module named '{module or handler}'"
        )
    if func not in PACKAGE[module]:
        raise HandlerNotFound(f"Handler '{func}' missing on module '{module}'")


def error_type(exc: BaseException) -> str:
    """The errorType Lambda logs: ``Runtime.*`` for the runtime's own failures."""
    if isinstance(exc, ImportModuleError | HandlerNotFound):
        return f"Runtime.{type(exc).__name__}"
    return type(exc).__name__


def render_receipts(deadline: float, timeout_s: float) -> None:
    """Render the batch's receipts, or end the invocation at its deadline."""
    remaining = deadline - time.monotonic()
    if remaining < RENDER_SECONDS:
        time.sleep(max(0.0, remaining))
        raise TimedOut(f"Task timed out after {timeout_s:.2f} seconds")
    time.sleep(RENDER_SECONDS)


def reserved_concurrency(lam: Any, name: str) -> int | None:
    """The function's reserved concurrency (None: it draws on the account's pool)."""
    got = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    return int(got) if got is not None else None


def throttled(reserved: int | None) -> bool:
    """The worker runs one invocation at a time: a reservation below one refuses it."""
    return reserved is not None and reserved < 1
