"""Log template digest: thousands of log lines folded into a few dozen templates.

Why: a model (or a human) cannot read 100k log lines, but it can read "this message
appeared 4,812 times since 10:02, first at 10:02:13". Lines are stripped of their header
(timestamp, level, logger — the parts that are not the message), masked (ids, numbers,
addresses, paths) and clustered with Drain (drain3, in memory). One configuration serves
every system; it is measured on Loghub in ``bench/loghub.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from drain3 import TemplateMiner
from drain3.masking import AbstractMaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

from rootloop.analysis.headers import HeaderLearner, HeaderModel

# --- header stripping -------------------------------------------------------------------


def strip_header(line: str) -> str:
    """The message part of one line on its own: its leading run of header-shaped fields.

    For a single line with no source to learn from (the digester learns each source's header
    from its lines instead, see ``rootloop.analysis.headers``).
    """
    s = line.strip()
    return HeaderLearner().fit_line(s).message(s) or s


# --- masking ----------------------------------------------------------------------------

_B = r"(?<![\w.\-/])"  # token start
_E = r"(?![\w\-/]|\.\w)"  # token end (a trailing full stop is punctuation)
_IP4 = r"\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?"
_H4 = r"[0-9a-fA-F]{1,4}"
_IP6 = (
    r"(?:(?:"
    + _H4
    + r":){7}"
    + _H4  # full form
    + r"|(?=[0-9a-fA-F:]*[0-9a-fA-F])(?:"
    + _H4
    + r"(?::"
    + _H4
    + r")*)?::"  # compressed
    + r"(?:"
    + _H4
    + r"(?::"
    + _H4
    + r")*)?)(?:%\w+)?"
)
_MASKS: list[tuple[str, str]] = [
    (r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+", "URL"),
    (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "EMAIL"),
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
    (_B + r"(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}" + _E, "MAC"),
    (_B + _IP6 + _E, "IP"),
    (_B + r"[A-Za-z][\w-]*(?:\.[\w-]+)+:\d{1,5}" + _E, "HOST"),
    (r"(?<![\w.])/?" + _IP4 + r"(?:," + _IP4 + r")*(?![\w.])", "IP"),
    # dates and times: 2026-11-27T10:04:05.123Z, 10:04:05,978, 17/06/09, 2005-06-03-15.42.50
    (_B + r"\d+(?:[-:/.,]\d+)*[-:/T]\d+(?:[-:/.,T]\d+)+(?:Z|[+-]\d{2}:?\d{2})?" + _E, "TIME"),
    (_B + r"(?:[\w.-]*/)+[\w.@~+%-]+/?" + r"(?![\w/])", "PATH"),
    # Windows paths: C:\Windows\winsxs\x.dll, \\host\share\dir
    (r"(?:[A-Za-z]:|\\)?\\[^\s\\\"'<>|]+(?:\\[^\s\\\"'<>|]*)+", "PATH"),
    (_B + r"0[xX][0-9a-fA-F]+" + _E, "HEX"),
    (_B + r"(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}" + _E, "HEX"),
    # identifiers with digits: blk_-38865, appattempt_1445_0020, req-12ab, job_1445
    (_B + r"(?=[\w\-.:]*\d)[A-Za-z_][\w\-.:]*[\w]" + _E, "ID"),
    (_B + r"[-+]?\d+(?:[.,:]\d+)*(?:[a-zA-Z%]{1,3})?" + _E, "NUM"),
]


class ShapeMask(AbstractMaskingInstruction):
    """Every mask of ``_MASKS`` in one pass: one alternation, first listed shape wins.

    Why one pass: drain3 applies its instructions one ``re.sub`` after another, and a dozen
    passes over every line were most of the templating time. Only tokens with a digit, ``/``,
    ``\\`` or ``@`` go through it (every mask needs one of them).
    """

    def __init__(self) -> None:
        super().__init__("*")
        self.names = [name for _, name in _MASKS]
        self.regex = re.compile("|".join(f"({p})" for p, _ in _MASKS))
        # Without ``@`` or ``://`` in a token the URL and e-mail shapes cannot match; leaving
        # them out (as never-matching groups, so group numbers stay) halves the work.
        lean = [p if name not in ("URL", "EMAIL") else "(?!)" for p, name in _MASKS]
        self.lean = re.compile("|".join(f"({p})" for p in lean))

    def mask(self, content: str, mask_prefix: str, mask_suffix: str) -> str:
        names, full, lean = self.names, self.regex, self.lean

        def one(m: re.Match[str]) -> str:
            return mask_prefix + names[(m.lastindex or 1) - 1] + mask_suffix

        num = mask_prefix + "NUM" + mask_suffix

        def token(m: re.Match[str]) -> str:
            tok = m.group(0)
            if tok.isdigit():  # the commonest variable; only the number shape fits it
                return num
            regex = full if "@" in tok or "://" in tok else lean
            whole = regex.fullmatch(tok)
            return one(whole) if whole is not None else regex.sub(one, tok)

        return _MAYBE_VARIABLE.sub(token, content)


# Only whitespace-separated tokens holding a digit, ``/``, ``\\`` or ``@`` can hold a variable.
_MAYBE_VARIABLE = re.compile(r"(?<!\S)(?=[^\s\d/@\\]*[\d/@\\])\S+")


def masking_instructions() -> list[AbstractMaskingInstruction]:
    """The one masking configuration, built in code (no ini file)."""
    return [ShapeMask()]


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
    """Wraps drain3 with one configuration for every system; in-memory, no persistence.

    One digester per log source: the header is learnt from the source's first
    ``header_sample`` lines (``rootloop.analysis.headers``). Until then each line is cut on
    its own shape; once the sample is full (or at ``digest()``/``add_many()``) the model is
    learnt and those first lines are clustered again with it, so the digest is consistent.
    Cluster ids returned by ``add`` for the first ``header_sample`` lines are therefore
    provisional; ``add_many`` learns first and returns final ids.
    """

    sim_th: float = 0.75
    depth: int = 5
    max_children: int = 100
    max_clusters: int | None = None
    strip_headers: bool = True
    max_line_chars: int = 2000
    header_sample: int = 200
    header: HeaderModel | None = None
    """A known header model (e.g. ``HeaderModel()`` for bare messages); None = learn it."""
    learner: HeaderLearner = field(default_factory=HeaderLearner)
    _miner: TemplateMiner = field(init=False, repr=False)
    _stats: dict[int, _Stats] = field(init=False, repr=False, default_factory=dict)
    _total: int = field(init=False, default=0)
    _last_cid: int = field(init=False, default=-1)
    _pending: list[tuple[str, datetime | None]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.sim_th <= 1.0:
            raise ValueError(f"sim_th must be in (0, 1], got {self.sim_th}")
        if self.depth < 3:
            raise ValueError(f"depth must be at least 3, got {self.depth}")
        if self.header_sample < 1:
            raise ValueError(f"header_sample must be at least 1, got {self.header_sample}")
        self._pending = []
        self._reset()

    def _reset(self) -> None:
        cfg = TemplateMinerConfig()
        cfg.drain_sim_th = self.sim_th
        cfg.drain_depth = self.depth
        cfg.drain_max_children = self.max_children
        cfg.drain_max_clusters = self.max_clusters
        cfg.masking_instructions = masking_instructions()
        cfg.parametrize_numeric_tokens = True
        self._miner = TemplateMiner(persistence_handler=None, config=cfg)
        self._stats = {}
        self._total = 0

    @property
    def learning(self) -> bool:
        """True while the header model is still to be learnt from the first lines."""
        return self.strip_headers and self.header is None

    def message(self, line: str) -> str:
        """The part of ``line`` that is clustered (header stripped, length capped)."""
        line = line[: self.max_line_chars]
        if not self.strip_headers:
            return line.strip()
        if self.header is None:
            return strip_header(line)
        return self.header.message(line) or line.strip()

    def learn_header(self, sample: Sequence[str] = ()) -> HeaderModel:
        """Learn the header from the lines held so far plus ``sample``; re-cluster the held ones."""
        if self.header is None:
            lines = [ln[: self.max_line_chars] for ln, _ in self._pending] + list(sample)
            self.header = self.learner.fit(lines[: self.header_sample])
            held, self._pending = self._pending, []
            self._reset()
            for line, at in held:
                self._add(line, at)
        return self.header

    def add(self, line: str, at: datetime | None = None) -> int:
        """Add one line; returns the id of its cluster (see the class note on the first lines)."""
        if not self.learning:
            return self._add(line, at)
        self._pending.append((line, at))
        if len(self._pending) >= self.header_sample:
            self.learn_header()
            return self._last_cid
        return self._add(line, at)

    def add_many(self, lines: Iterable[str | tuple[datetime | None, str]]) -> list[int]:
        """Add lines (plain, or ``(timestamp, line)`` pairs); their final cluster ids."""
        items = [(None, x) if isinstance(x, str) else x for x in lines]
        if self.learning:
            self.learn_header([text for _, text in items[: self.header_sample]])
        return [self._add(text, at) for at, text in items]

    def _add(self, line: str, at: datetime | None) -> int:
        # drain3's masker and Drain directly: TemplateMiner.add_log_message would also build
        # a result dict with the template string for every line, which nobody here reads.
        masked = self._miner.masker.mask(self.message(line))
        cluster, _ = self._miner.drain.add_log_message(masked)
        cid = int(cluster.cluster_id)
        st = self._stats.get(cid)
        if st is None:
            st = self._stats[cid] = _Stats(example=line.strip()[:500], masked=masked)
        st.count += 1
        self._total += 1
        self._last_cid = cid
        if at is not None:
            if st.first_seen is None or at < st.first_seen:
                st.first_seen = at
            if st.last_seen is None or at > st.last_seen:
                st.last_seen = at
        return cid

    def digest(self, limit: int = 30) -> LogDigest:
        """The ``limit`` most frequent templates (ties: seen first comes first)."""
        if self.learning and len(self._pending) >= self.learner.min_lines:
            self.learn_header()
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
    d.add_many(lines)
    return d.digest(limit)
