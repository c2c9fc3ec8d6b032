"""Named points where a test can kill rootloop, signalled by rootloop itself.

Crash-safety tests must kill a run at an exact place (between a commit and its
push, inside a migration's transaction), not "after 3 seconds": a sleep lands
somewhere else on a busy machine. So rootloop names its places and calls
``hit(name)`` there:

- ``ROOTLOOP_KILL_AT=<name>`` makes the process SIGKILL itself the first time it
  reaches ``<name>`` (a real kill -9: no ``finally``, no flush, no atexit);
  ``<name>#<n>`` kills at the n-th time instead.
- ``ROOTLOOP_STOP_AT=<name>`` makes it SIGSTOP itself there instead: alive, holding
  what it holds (its lease), frozen until the test sends SIGCONT — how a test
  runs a second investigation "while the first one acts" without racing it.
- ``hook``: tests that run in-process set it to a function that raises a
  ``BaseException`` (the loop's ``except Exception`` cannot catch it, like a kill).

Names: ``phase:<phase>:<start|end>`` at the loop's phase boundaries and
``step:<action kind>:<what>`` right before each side effect of an executor.
With neither set, ``hit`` costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable

ENV = "ROOTLOOP_KILL_AT"
STOP_ENV = "ROOTLOOP_STOP_AT"

#: in-process tests: called with every point's name
hook: Callable[[str], None] | None = None

_seen: Counter[str] = Counter()


def hit(name: str) -> None:
    """Mark that the process reached ``name``; die here if a test asked for it."""
    if hook is not None:
        hook(name)
    for env, sig in ((ENV, signal.SIGKILL), (STOP_ENV, signal.SIGSTOP)):
        target = os.environ.get(env)
        if not target:
            continue
        want, _, nth = target.partition("#")
        if want != name:
            continue
        _seen[env + name] += 1
        if _seen[env + name] == (int(nth) if nth.isdigit() else 1):
            os.kill(os.getpid(), sig)
