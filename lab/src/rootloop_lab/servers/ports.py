"""Choosing a loopback port for a server that cannot bind port 0 itself.

moto's server binds port 0 and reports the port it got (see ``emulator``). PostgreSQL
refuses port 0 and Redis reads it as "no TCP at all", so their launchers take a port
that was free a moment ago and retry with another when the server says it is taken.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port nothing listened on a moment ago (the caller must cope with losing it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_or_new(previous: int, host: str = HOST) -> int:
    """``previous`` if it is free now (a restarted lab keeps its ports), else a new one."""
    if previous:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, previous))
                return previous
            except OSError:
                pass
    return free_port(host)
