"""Stopping a server process politely first, then firmly."""

from __future__ import annotations

import contextlib
import signal
import subprocess


def stop_escalating(
    proc: subprocess.Popen | None, steps: tuple[tuple[signal.Signals, float], ...]
) -> None:
    """Send each signal in turn and wait its time for the process to exit."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in steps:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
