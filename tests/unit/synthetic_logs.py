"""Synthetic log sources with header shapes of many kinds, for the header model's tests.

Why: Loghub gives eight systems; a header model tuned on them must also work on shapes it has
never seen. Each source draws one header layout (timestamp format, level spelling, pid/host/
thread/component fields, separators) and writes messages from random templates, so a test
knows the true message of every line. Nothing here copies a dev-set line.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

Stamp = Callable[[datetime], str]

TIMESTAMPS: dict[str, Stamp] = {
    "iso_z": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
    "iso_offset": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
    "log4j": lambda t: t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}",
    "syslog": lambda t: f"{MONTHS[t.month - 1]} {t.day:>2} {t:%H:%M:%S}",
    "epoch": lambda t: str(int(t.timestamp())),
    "epoch_ms": lambda t: str(int(t.timestamp() * 1000)),
    "epoch_frac": lambda t: f"{t.timestamp():.6f}",
    "compact_ms": lambda t: t.strftime("%Y%m%d-%H:%M:%S:") + f"{t.microsecond // 1000}",
    "apache": lambda t: f"[{DAYS[t.weekday()]} {MONTHS[t.month - 1]} {t:%d %H:%M:%S %Y}]",
    "yy_slash": lambda t: t.strftime("%y/%m/%d %H:%M:%S"),
    "yymmdd": lambda t: t.strftime("%y%m%d %H%M%S"),
    "month_day_ms": lambda t: t.strftime("%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}",
    "dotted_date": lambda t: t.strftime("%Y.%m.%d %H:%M:%S"),
    "bracket_short": lambda t: t.strftime("[%m.%d %H:%M:%S]"),
    "us_date": lambda t: t.strftime("%m/%d/%Y %I:%M:%S %p"),
    "iso_comma": lambda t: t.strftime("%Y-%m-%d %H:%M:%S,"),
    "dash_dot": lambda t: t.strftime("%Y-%m-%d-%H.%M.%S.") + f"{t.microsecond:06d}",
}

LEVEL_SETS = [
    ["INFO", "WARN", "ERROR", "DEBUG"],
    ["info", "warning", "error", "debug"],
    ["Info", "Warning", "Error"],
    ["I", "W", "E", "D", "V"],
    ["[info]", "[warn]", "[error]"],
    ["<notice>", "<warning>", "<err>"],
    ["INFO ", "WARN ", "ERROR"],
    ["NOTICE", "CRIT", "ALERT", "INFO"],
    ["Information", "Error", "Verbose"],
    ["FINE", "SEVERE", "INFO", "CONFIG"],
]

WORDS = [
    "connection",
    "request",
    "worker",
    "session",
    "cache",
    "block",
    "volume",
    "queue",
    "lease",
    "token",
    "handler",
    "socket",
    "replica",
    "shard",
    "index",
    "segment",
    "buffer",
    "channel",
    "thread",
    "task",
    "job",
    "stage",
    "executor",
    "node",
    "peer",
    "client",
    "server",
    "packet",
    "frame",
    "record",
    "snapshot",
    "checkpoint",
    "transaction",
    "lock",
    "file",
    "stream",
]
VERBS = [
    "opened",
    "closed",
    "started",
    "stopped",
    "failed",
    "received",
    "sent",
    "dropped",
    "created",
    "deleted",
    "updated",
    "committed",
    "rejected",
    "accepted",
    "flushed",
    "evicted",
    "expired",
    "registered",
    "removed",
    "scheduled",
]
PROGS = ["sshd", "crond", "kernel", "su", "cupsd", "named", "ftpd", "gdm-binary", "dhclient"]
HOSTS = ["alpha", "web-07", "ip-10-0-3-17", "dn228", "calvisitor-10-105-160-95", "db-primary"]
COMPONENTS = [
    "org.acme.store.OrderService",
    "net.example.io.Pipeline$Worker",
    "svc.auth.TokenCache",
    "db.pool.Manager",
    "rpc.Server$Listener",
]


def _variable(rng: random.Random, kind: int) -> str:
    """A value of one of seven shapes; a template's slot keeps its shape, as in real logs."""
    if kind == 0:
        return str(rng.randrange(100_000))
    if kind == 1:
        return ".".join(str(rng.randrange(256)) for _ in range(4)) + f":{rng.randrange(65536)}"
    if kind == 2:
        return "/var/" + "/".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
    if kind == 3:
        return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(8))
    if kind == 4:
        return f"{rng.random() * 900:.1f}ms"
    if kind == 5:
        return "id_" + "".join(rng.choice(string.digits) for _ in range(10))
    return "".join(rng.choice("0123456789abcdef") for _ in range(32))


@dataclass
class SyntheticSource:
    """Lines and, for each line, its true message and template number."""

    name: str
    lines: list[str]
    messages: list[str]
    template_ids: list[int]


def _templates(rng: random.Random, n: int) -> list[list[str | int]]:
    """Message templates: words, with a shape number where a variable goes; all different."""
    seen: set[tuple[str | int, ...]] = set()
    out: list[list[str | int]] = []
    while len(out) < n:
        words: list[str | int] = [rng.choice(WORDS).capitalize(), rng.choice(VERBS)]
        for _ in range(rng.randint(1, 6)):
            words.append(rng.randrange(7) if rng.random() < 0.35 else rng.choice(WORDS + VERBS))
        key = tuple(words)
        if key not in seen:
            seen.add(key)
            out.append(words)
    return out


def make_source(seed: int, n_lines: int = 600, n_templates: int = 25) -> SyntheticSource:
    """One source: one header layout drawn from ``seed``, messages from random templates."""
    rng = random.Random(seed)
    ts_name = rng.choice(sorted(TIMESTAMPS))
    stamp = TIMESTAMPS[ts_name]
    levels = rng.choice(LEVEL_SETS)
    layout = rng.choice(["syslog", "log4j", "pid_tid", "pipe", "bracket_level", "component"])
    host = rng.choice(HOSTS)
    many_hosts = rng.random() < 0.3  # an aggregated syslog: host names of every spelling
    thread_names = ["main", "worker-1", "IPC Server handler 3 on 8020", "pool-2-thread-7"]
    label = rng.random() < 0.25  # a leading alert-label column, "-" on most lines
    continuation = rng.choice([0.0, 0.0, 0.08])  # share of header-less continuation lines
    templates = _templates(rng, n_templates)
    weights = [rng.paretovariate(1.2) for _ in templates]
    t = datetime(2026, rng.randint(1, 12), rng.randint(1, 28), tzinfo=UTC)
    lines, messages, ids = [], [], []
    for _ in range(n_lines):
        t += timedelta(milliseconds=rng.randint(1, 90_000))
        k = rng.choices(range(len(templates)), weights)[0]
        msg = " ".join(w if isinstance(w, str) else _variable(rng, w) for w in templates[k])
        lvl = levels[0] if rng.random() < 0.7 else rng.choice(levels)
        pid = rng.randint(100, 40_000)
        ts = stamp(t)
        if rng.random() < continuation:
            word = rng.choice(WORDS)
            cont = f"at org.acme.{word}.Worker.run(Worker.java:{rng.randint(1, 900)})"
            lines.append("    " + cont)
            messages.append(cont)
            ids.append(-1 - WORDS.index(word))  # one stack frame, one template
            continue
        if layout == "syslog":
            prog = rng.choice(PROGS) if rng.random() > 0.03 else "Google Chrome Helper"
            prog = f"{prog}(pam_unix)[{pid}]:" if rng.random() < 0.3 else f"{prog}[{pid}]:"
            head = f"{ts} {rng.choice(HOSTS) if many_hosts else host} {prog}"
        elif layout == "log4j":
            head = f"{ts} {lvl} [{rng.choice(thread_names)}] {rng.choice(COMPONENTS)}:"
        elif layout == "pid_tid":
            head = f"{ts}  {pid}  {pid + rng.randint(0, 50)} {lvl} {rng.choice(PROGS)}:"
        elif layout == "pipe":
            head = f"{ts}|{rng.choice(PROGS)}|{pid}|"
        elif layout == "bracket_level":
            head = f"{ts} [{lvl.strip('[]<> ')}] [pid {pid}]"
        else:
            head = f"{ts} {lvl} {rng.choice(COMPONENTS)} -"
        if label:
            head = ("-" if rng.random() < 0.93 else rng.choice(["KERNDTLB", "APPSEV"])) + " " + head
        lines.append(head + ("" if head.endswith("|") else " ") + msg)
        messages.append(msg)
        ids.append(k)
    return SyntheticSource(f"{ts_name}/{layout}/{levels[0]}", lines, messages, ids)
