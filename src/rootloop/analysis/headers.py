"""A log source's header, learnt from its own lines: where the free-text message starts.

Why learnt and not written per format: every system prints its header its own way
(timestamps of any shape, levels in any case, ``host prog[pid]:``, thread names, pipes), and
a list of formats only knows the systems it was written from. What headers share is
*structure*: they come first, in the same order on every line of a source, and each field
has a stable shape (a timestamp always has digits and separators, a level comes from a small
vocabulary, a logger ends with ``:``, a thread sits in brackets). The message has no such
regularity: its first word changes with the template.

So a source's header is learnt from a sample of its lines: each line is cut into leading
fields (whitespace- or ``|``/tab-delimited, a bracketed group counting as one field), each
field gets a set of shape classes, and column by column from the left the class that most
lines share is kept while it covers at least ``consistency`` of the lines that matched every
column before it. The first column no class covers is where the message starts. Parsing a
line then walks the learnt columns and cuts where the line stops matching them, so lines of
another shape (stack-trace continuations, a banner) keep their text.

Two kinds of column are safe to drop even when their shape is plain: a column holding one
value (a single host name, ``main``) carries no information, and a column whose tokens carry
digits is a variable. A low-cardinality word column is dropped only when its words are
severity levels: anything else there may be the message's first word, which tells templates
apart.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

# --- token classes ----------------------------------------------------------------------

TIME = 1 << 0
"""Digits and timestamp separators only: dates, times, epochs, pids, dotted numbers."""
LEVEL = 1 << 1
CALENDAR = 1 << 2
SEPARATOR = 1 << 3
BRACKETED = 1 << 4
DELIMITED = 1 << 5
"""Ended by a field delimiter (``|`` or a tab) rather than a space."""
FIELD = 1 << 6
"""Ends with ``:`` after a name: ``sshd[24200]:``, ``dfs.FSNamesystem:``."""
DOTTED = 1 << 7
"""A dotted (or ``$``-joined) identifier: a logger or component name."""
DIGITS = 1 << 8
"""Has a digit somewhere: a host ``node-12``, an id, a versioned program."""
ANY = 1 << 9
"""A column of no shape, learnt only between typed fields (host names of every spelling)."""

CLASS_NAMES = {
    TIME: "time",
    LEVEL: "level",
    CALENDAR: "calendar",
    SEPARATOR: "separator",
    BRACKETED: "bracketed",
    DELIMITED: "delimited",
    FIELD: "field",
    DOTTED: "dotted",
    DIGITS: "digits",
    ANY: "any",
}
# Most specific first: a tie in coverage goes to the class that says more.
_PREFERENCE = (TIME, LEVEL, CALENDAR, SEPARATOR, BRACKETED, DELIMITED, FIELD, DOTTED, DIGITS)
# Shapes strong enough to vouch for a shapeless column just before them.
_ANCHORS = TIME | LEVEL | CALENDAR | SEPARATOR | BRACKETED | DELIMITED | FIELD


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Severity words of the common logging conventions (syslog, log4j/logback, java.util.logging,
# Python, Android/Windows spellings); case is ignored, single letters are Android/glog style.
_LEVELS = _words(
    "trace debug dbg fine finer finest config info information informational notice note "
    "warn warning error err severe fatal critical crit alert emerg emergency panic verbose "
    "v d i w e f"
)
# Calendar and time-of-day words that timestamps spell out (``Jun 14``, ``Sun Dec 04``, ``PM``).
_CALENDAR = _words(
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april "
    "june july august september october november december mon tue tues wed thu thur thurs "
    "fri sat sun monday tuesday wednesday thursday friday saturday sunday am pm utc gmt"
)
_OPENERS = {"[": "]", "(": ")", "{": "}", "<": ">"}
_DELIMS = "|\t"
_TIME_CHARS = re.compile(r"[0-9\-:/.,+_TZ]+")
_DIGIT = re.compile(r"\d")
_ALNUM = re.compile(r"[^\W_]")
_FIELD_START = re.compile(r"[^ |\t]")
_BRACKET_CHARS = {o: re.compile(re.escape(o) + "|" + re.escape(c)) for o, c in _OPENERS.items()}
_DOTTED = re.compile(r"[A-Za-z_$][\w$-]*(?:[.$][\w$-]+)+:?")
_TOKEN_END = re.compile(r"[\s|]")
_TRIM = "[]()<>{}:,;"
_MAX_BRACKET = 200


class Token(NamedTuple):
    """One leading field of a line: its text, where the line continues, its classes.

    A named tuple, not a dataclass: a few are made for every line templated."""

    text: str
    end: int
    classes: int


@lru_cache(maxsize=8192)
def _classes(text: str, delimited: bool) -> int:
    """The shape classes of one field (cached: levels, loggers and hosts repeat)."""
    c = DELIMITED if delimited else 0
    if text[0] in _OPENERS and text.rstrip(":,;")[-1:] == _OPENERS[text[0]]:
        c |= BRACKETED
    core = text.strip(_TRIM)
    if not core:
        return c | SEPARATOR
    if _DIGIT.search(core) is not None:
        c |= DIGITS
        if _TIME_CHARS.fullmatch(core) is not None:
            c |= TIME
    elif len(text) <= 3 and _ALNUM.search(core) is None:
        c |= SEPARATOR
    low = core.lower()
    if low in _LEVELS:
        c |= LEVEL
    elif low in _CALENDAR:
        c |= CALENDAR
    if len(text) > 1 and text[-1] == ":" and text[-2] != ":":
        c |= FIELD
    if _DOTTED.fullmatch(text) is not None:
        c |= DOTTED
    return c


def next_token(line: str, pos: int) -> Token | None:
    """The field starting at or after ``pos``; a bracketed group is one field, spaces and all."""
    m = _FIELD_START.search(line, pos)
    if m is None:
        return None
    start = pos = m.start()
    opener = line[pos]
    if opener in _OPENERS:
        depth, limit = 0, min(len(line), pos + _MAX_BRACKET)
        for b in _BRACKET_CHARS[opener].finditer(line, pos, limit):
            depth += 1 if b.group(0) == opener else -1
            if depth == 0:
                pos = b.end()
                break
    m = _TOKEN_END.search(line, pos)
    end = m.start() if m else len(line)
    text = line[start:end]
    delimited = end < len(line) and line[end] in _DELIMS
    return Token(text, end, _classes(text, delimited))


def tokens(line: str, limit: int) -> list[Token]:
    """Up to ``limit`` leading fields of ``line``."""
    out: list[Token] = []
    pos = 0
    while len(out) < limit:
        t = next_token(line, pos)
        if t is None:
            break
        out.append(t)
        pos = t.end
    return out


# --- the model --------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One header field: the class its tokens share, or the one value it always holds."""

    classes: int = 0
    value: str | None = None
    coverage: float = 0.0
    top_share: float = 0.0
    """Share of the column's most frequent value: near 1 for a word that never changes."""

    def matches(self, tok: Token) -> bool:
        if self.value is not None:
            return tok.text == self.value
        return self.classes == ANY or bool(tok.classes & self.classes)

    def describe(self) -> str:
        if self.value is not None:
            return f"constant {self.value!r}"
        return "|".join(name for bit, name in CLASS_NAMES.items() if self.classes & bit)


@dataclass(frozen=True)
class HeaderModel:
    """The learnt header of one source: its columns, in order. No columns = no header."""

    columns: tuple[Column, ...] = ()
    field_span: int = 3
    """A ``prog[pid]:`` field may hold spaces (``syslogd 1.4.1:``): up to this many tokens."""

    def split(self, line: str) -> tuple[str, str]:
        """``(header, message)``; the header is the longest prefix that fits the columns.

        One column may mismatch when the two fields after it fit the next columns: an
        occasional value of another shape (an alert tag where ``-`` usually stands) does
        not make the rest of the header message.
        """
        indented = line[:1] in (" ", "\t")
        line = line.strip()
        pos, forgiven, cols = 0, False, self.columns
        for j, col in enumerate(cols):
            tok = next_token(line, pos)
            if tok is not None and col.matches(tok):
                pos = tok.end
                continue
            end = None
            if tok is not None:
                end = self._spanned_field(line, tok, col)
                if (
                    end is None
                    and not forgiven
                    and self._rest_fits(line, tok.end, cols[j + 1 : j + 3])
                ):
                    end, forgiven = tok.end, True
            if end is None:
                if indented:  # an indented line (a stack frame) has a header only if all fits
                    return "", line
                break
            pos = end
        return line[:pos].strip(), line[pos:].lstrip(" \t|")

    @staticmethod
    def _rest_fits(line: str, pos: int, following: tuple[Column, ...]) -> bool:
        if not following:
            return False
        for col in following:
            tok = next_token(line, pos)
            if tok is None or not col.matches(tok):
                return False
            pos = tok.end
        return True

    def message(self, line: str) -> str:
        return self.split(line)[1]

    def _spanned_field(self, line: str, tok: Token, col: Column) -> int | None:
        if col.value is not None or not col.classes & FIELD:
            return None
        t: Token | None = tok
        for _ in range(self.field_span - 1):
            assert t is not None
            t = next_token(line, t.end)
            if t is None:
                return None
            if t.classes & FIELD:
                return t.end
        return None

    def describe(self) -> str:
        if not self.columns:
            return "no header"
        return " · ".join(f"{c.describe()} ({c.coverage:.0%})" for c in self.columns)


@dataclass(frozen=True)
class HeaderLearner:
    """How headers are learnt; every constant here was chosen on half of Loghub-2k and
    checked on the other half (docs/analysis.md)."""

    consistency: float = 0.8
    """Share of the still-matching lines a column's class must cover to be header."""
    support: float = 0.5
    """Share of all sampled lines that must still match for the scan to go on."""
    max_columns: int = 12
    min_lines: int = 8
    """Fewer sample lines than this say nothing about columns: no header is learnt."""

    def fit(self, lines: Sequence[str]) -> HeaderModel:
        """Learn from ``lines``; indented ones (stack frames) only when little else is there."""
        lines = [ln for ln in lines if ln.strip()]
        flush = [ln for ln in lines if ln[:1] not in (" ", "\t")]
        sample = [ln.strip() for ln in (flush if len(flush) >= self.min_lines else lines)]
        if len(sample) < self.min_lines:
            return HeaderModel()
        return self._fit(sample, constants=True)

    def fit_line(self, line: str) -> HeaderModel:
        """The header of one line on its own, before a source has shown enough lines.

        With one line every field is "consistent", so only typed fields count (no constant
        words): the header is the leading run of fields that have a header shape.
        """
        line = line.strip()
        return self._fit([line], constants=False) if line else HeaderModel()

    def _fit(self, sample: list[str], constants: bool) -> HeaderModel:
        rows = [tokens(ln, self.max_columns) for ln in sample]
        alive = list(range(len(rows)))
        columns: list[Column] = []
        for j in range(self.max_columns):
            here = [rows[i][j] for i in alive if len(rows[i]) > j + 1]  # a message must remain
            if len(here) < self.support * len(rows) or not here:
                break
            col = self._column(here, constants)
            if col is None and constants and columns and not any(c.classes == ANY for c in columns):
                col = self._free_column(rows, alive, j)
            if col is None:
                break
            columns.append(col)
            alive = [i for i in alive if len(rows[i]) > j + 1 and col.matches(rows[i][j])]
        return HeaderModel(tuple(columns[: _constants_cut(columns)]))

    def _free_column(self, rows: list[list[Token]], alive: list[int], j: int) -> Column | None:
        """A shapeless column between typed fields: the next column anchors it.

        Host names of many spellings (``web``, ``authorMacBook-Pro``, ``ip-10-0-3-17``) have no
        common shape, but a ``prog[pid]:`` or a level right after them does. Only one such
        column, never the first, and only before a field of a strong shape.
        """
        after = [rows[i][j + 1] for i in alive if len(rows[i]) > j + 2]
        if len(after) < self.support * len(rows) or not after:
            return None
        nxt = self._column(after, constants=False)
        if nxt is None or not nxt.classes & _ANCHORS:
            return None
        return Column(classes=ANY, coverage=len(after) / len(alive))

    def _column(self, here: list[Token], constants: bool) -> Column | None:
        n = len(here)
        value, count = Counter(t.text for t in here).most_common(1)[0]
        best: Column | None = None
        for bit in _PREFERENCE:
            cover = sum(1 for t in here if t.classes & bit) / n
            if cover >= self.consistency and (best is None or cover > best.coverage):
                best = Column(classes=bit, coverage=cover, top_share=count / n)
        if not constants:
            return best
        if count / n >= self.consistency and (best is None or count / n > best.coverage):
            best = Column(value=value, coverage=count / n, top_share=count / n)
        return best


_MAX_CONSTANT_RUN = 2
"""Fixed words in a row a header may hold (a host; a facility and a subsystem)."""
_FIXED = 0.95
"""A column whose top value covers this share of lines never changes."""


def _constants_cut(columns: list[Column]) -> int:
    """Where the header ends if a run of constant words is not followed by a varying field.

    Constant words in a header (one host, one thread, a fixed facility and subsystem) sit
    before a typed field whose value changes (``sshd[24200]:``, a level); constant words
    followed by nothing, a mere number, a field that never changes or more than two in a row
    are more likely the first words of a template that dominates the sample (``payment 7``,
    ``could not obtain connection:``). Kept in the message, they cost nothing.
    """
    j = 0
    while j < len(columns):
        if columns[j].value is None:
            j += 1
            continue
        end = j
        while end < len(columns) and columns[end].value is not None:
            end += 1
        nxt = columns[end] if end < len(columns) else None
        if (
            nxt is None
            or nxt.classes in (DIGITS, TIME)
            or nxt.top_share >= _FIXED  # a fixed word after fixed words: one template's text
            or end - j > _MAX_CONSTANT_RUN
        ):
            return j
        j = end
    return len(columns)


def learn_header(lines: Sequence[str], learner: HeaderLearner | None = None) -> HeaderModel:
    """The header model of one source, from a sample of its lines."""
    return (learner or HeaderLearner()).fit(lines)
