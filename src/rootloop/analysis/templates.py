"""Log template digest: thousands of log lines folded into a few dozen templates.

Why: a model (or a human) cannot read 100k log lines, but it can read "this message
appeared 4,812 times since 10:02, first at 10:02:13". Lines are stripped of their header
(timestamp, level, logger — the parts that are not the message), masked (ids, numbers,
addresses, paths) and clustered with Drain (drain3, in memory). One configuration serves
every system; it is measured on Loghub in ``bench/loghub.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

# --- header stripping -------------------------------------------------------------------

_TIMESTAMPS = [
    # ISO 8601 / log4j: 2015-10-18 18:01:47,978 · 2017-05-16T00:00:00.008Z
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
    # syslog: Dec 10 06:55:46
    r"[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}",
    # bracketed, e.g. Apache: [Sun Dec 04 04:47:44 2005]
    r"\[[^\]\n]{0,40}?\d{1,2}:\d{2}:\d{2}[^\]\n]{0,20}\]",
    # compact: 081109 203615 · 17/06/09 20:10:40 · 20171223-22:15:29:606
    r"\d{6} \d{6}",
    r"\d{2,4}/\d{2}/\d{2,4}[ T:]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?",
    r"\d{8}[-T ]?\d{1,2}:?\d{1,2}:?\d{1,2}(?:[:.,]\d+)?",
    # epoch seconds / millis
    r"\d{10}(?:\d{3})?(?:\.\d+)?",
]
_LEADING_TS = re.compile(r"^(?:\S*?\s)??(?:" + "|".join(_TIMESTAMPS) + r")[\s|,:-]*")
_LEVEL = re.compile(
    r"\[?(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|SEVERE|FATAL|CRITICAL|CRIT|"
    r"notice|info|warn|warning|error|debug|crit|alert|emerg)\]?:?(?=\s|$)"
)
_LOGGER = re.compile(r"[A-Za-z_$][\w$-]*(?:\.[\w$-]+)+:?(?=\s|$)")
_SYSLOG_PROG = re.compile(r"^\S+ [\w./-]+(?:\[\d+\])?: ")
_PID = re.compile(r"\d+(?=\s)")
_SEP = re.compile(r"[\s:|-]+")


def _skip_brackets(s: str, i: int) -> int:
    """Skip balanced ``[...]`` groups (thread names, request contexts) starting at ``i``."""
    while i < len(s) and s[i] == "[":
        depth, j = 0, i
        while j < len(s):
            if s[j] == "[":
                depth += 1
            elif s[j] == "]":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j >= len(s):
            return i
        i = j + 1
        while i < len(s) and s[i] in " \t":
            i += 1
    return i


def strip_header(line: str) -> str:
    """The message part of a log line: drops a leading timestamp, pid, level and logger.

    Generic on purpose (the same code for every system): it only removes what is
    recognisably a header and returns the line unchanged otherwise.
    """
    s = line.strip()
    m = _LEADING_TS.match(s)
    if m is None:
        return s
    s = s[m.end() :]
    if "|" in s[:80] and s.count("|") >= 2 and not s.startswith("["):
        # pipe-delimited record (component|pid|message): the message is the last field
        return s.split("|", s.count("|", 0, 80))[-1].strip() or s
    lv = _LEVEL.search(s, 0, 60)
    if lv is not None and lv.start() <= 40:
        i = lv.end()
        i += len(_SEP.match(s, i).group(0)) if _SEP.match(s, i) else 0
        i = _skip_brackets(s, i)
        lg = _LOGGER.match(s, i)
        if lg is not None:
            i = lg.end()
            while i < len(s) and s[i] in " \t":
                i += 1
            i = _skip_brackets(s, i)
        sep = _SEP.match(s, i)
        if sep is not None and sep.group(0).strip(" \t") in {"-", ":", "|"}:
            i = sep.end()
        rest = s[i:].strip()
        return rest or s
    sp = _SYSLOG_PROG.match(s)
    if sp is not None:
        return s[sp.end() :].strip() or s
    return s.strip()


# --- masking ----------------------------------------------------------------------------

_B = r"(?<![\w.\-/])"  # token start
_E = r"(?![\w\-/]|\.\w)"  # token end (a trailing full stop is punctuation)
_IP4 = r"\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?"
_MASKS: list[tuple[str, str]] = [
    (r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+", "URL"),
    (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "EMAIL"),
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
    (_B + r"(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}" + _E, "MAC"),
    (r"(?<![\w.])/?" + _IP4 + r"(?:," + _IP4 + r")*(?![\w.])", "IP"),
    (_B + r"(?:[\w.-]*/)+[\w.@~+%-]+/?" + r"(?![\w/])", "PATH"),
    (_B + r"0[xX][0-9a-fA-F]+" + _E, "HEX"),
    (_B + r"(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}" + _E, "HEX"),
    # identifiers with digits: blk_-38865, appattempt_1445_0020, req-12ab, job_1445
    (_B + r"(?=[\w\-.:]*\d)[A-Za-z_][\w\-.:]*[\w]" + _E, "ID"),
    (_B + r"[-+]?\d+(?:[.,:]\d+)*(?:[a-zA-Z%]{1,3})?" + _E, "NUM"),
]


def masking_instructions() -> list[MaskingInstruction]:
    """The one masking configuration, built in code (no ini file)."""
    return [MaskingInstruction(p, name) for p, name in _MASKS]


# --- digest -----------------------------------------------------------------------------


@dataclass
class Template:
    """One message shape and how often / when it was seen."""

    template: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    example: str
    cluster_id: int


@dataclass
class LogDigest:
    """Templates most frequent first; ``distinct`` counts all templates, not just those kept."""

    templates: list[Template]
    total_lines: int
    distinct: int

    def render(self, limit: int | None = None) -> str:
        """Plain-text table for evidence and prompts."""
        rows = self.templates if limit is None else self.templates[:limit]
        out = [f"{self.total_lines} lines, {self.distinct} templates"]
        for t in rows:
            when = f" first {t.first_seen.isoformat()}" if t.first_seen else ""
            out.append(f"{t.count:>7}x {t.template}{when}")
        return "\n".join(out)


@dataclass
class _Stats:
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    example: str = ""
    masked: str = ""  # template to show if drain3 evicted the cluster (max_clusters)


@dataclass
class TemplateDigester:
    """Wraps drain3 with one configuration for every system; in-memory, no persistence."""

    sim_th: float = 0.75
    depth: int = 5
    max_children: int = 100
    max_clusters: int | None = None
    strip_headers: bool = True
    max_line_chars: int = 2000
    _miner: TemplateMiner = field(init=False, repr=False)
    _stats: dict[int, _Stats] = field(init=False, repr=False, default_factory=dict)
    _total: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not 0.0 < self.sim_th <= 1.0:
            raise ValueError(f"sim_th must be in (0, 1], got {self.sim_th}")
        if self.depth < 3:
            raise ValueError(f"depth must be at least 3, got {self.depth}")
        cfg = TemplateMinerConfig()
        cfg.drain_sim_th = self.sim_th
        cfg.drain_depth = self.depth
        cfg.drain_max_children = self.max_children
        cfg.drain_max_clusters = self.max_clusters
        cfg.masking_instructions = masking_instructions()
        cfg.parametrize_numeric_tokens = True
        self._miner = TemplateMiner(persistence_handler=None, config=cfg)

    def message(self, line: str) -> str:
        """The part of ``line`` that is clustered (header stripped, length capped)."""
        line = line[: self.max_line_chars]
        return strip_header(line) if self.strip_headers else line.strip()

    def add(self, line: str, at: datetime | None = None) -> int:
        """Add one line; returns the id of its cluster (stable for the digester's life)."""
        msg = self.message(line)
        cid = int(self._miner.add_log_message(msg)["cluster_id"])
        st = self._stats.get(cid)
        if st is None:
            masked = self._miner.masker.mask(msg)
            st = self._stats[cid] = _Stats(example=line.strip()[:500], masked=masked)
        st.count += 1
        self._total += 1
        if at is not None:
            if st.first_seen is None or at < st.first_seen:
                st.first_seen = at
            if st.last_seen is None or at > st.last_seen:
                st.last_seen = at
        return cid

    def digest(self, limit: int = 30) -> LogDigest:
        """The ``limit`` most frequent templates (ties: seen first comes first)."""
        clusters = {c.cluster_id: c for c in self._miner.drain.clusters}
        order = sorted(
            self._stats.items(),
            key=lambda kv: (-kv[1].count, kv[1].first_seen or datetime.max, kv[0]),
        )
        kept = order if limit <= 0 else order[:limit]
        templates = [
            Template(
                template=clusters[cid].get_template() if cid in clusters else st.masked,
                count=st.count,
                first_seen=st.first_seen,
                last_seen=st.last_seen,
                example=st.example,
                cluster_id=cid,
            )
            for cid, st in kept
        ]
        return LogDigest(templates=templates, total_lines=self._total, distinct=len(order))


def digest_lines(lines: Iterable[str | tuple[datetime | None, str]], limit: int = 30) -> LogDigest:
    """Digest lines (plain, or ``(timestamp, line)`` pairs) with the default configuration."""
    d = TemplateDigester()
    for item in lines:
        if isinstance(item, tuple):
            at, text = item
            d.add(text, at)
        else:
            d.add(item)
    return d.digest(limit)
