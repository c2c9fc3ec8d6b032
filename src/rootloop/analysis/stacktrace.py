"""Python and JVM stack traces, parsed into exception type, message and frames.

Why: "ValueError: invalid literal for int() at worker.py:42 in handle" is the
most useful line a log search can return, and it only exists once the trace
is parsed. Logs often arrive one line per event (the awslogs driver without a
multiline pattern), so ``assemble`` first glues continuation lines back onto
the record they belong to, per stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import PurePosixPath
from typing import Literal

_PY_HEADER = "Traceback (most recent call last):"
_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_PY_EXC = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")
_PY_CHAIN = ("During handling of the above exception", "The above exception was the direct")
_JVM_FRAME = re.compile(r"^\s*at (?P<func>[\w$.<>/-]+)\((?P<where>[^)]*)\)\s*(?:~?\[.*\])?$")
_JVM_HEADER = re.compile(
    r"^(?:Exception in thread \"[^\"]*\"\s+|Caused by:\s+|Suppressed:\s+)?"
    r"(?P<type>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+)(?::\s?(?P<msg>.*))?$"
)
_ERRORISH = re.compile(r"ERROR|CRITICAL|FATAL|SEVERE|Exception|[Ee]rror|exception")
_JVM_MORE = re.compile(r"^\s*\.\.\. \d+ (?:more|common frames omitted)")


@dataclass(frozen=True)
class Frame:
    file: str
    line: int | None
    function: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where} in {self.function}"


@dataclass
class StackTrace:
    """One exception; ``cause`` is the exception behind it (JVM 'Caused by', Python chain)."""

    language: Literal["python", "jvm"]
    exception: str
    message: str
    frames: list[Frame] = field(default_factory=list)
    cause: StackTrace | None = None

    @property
    def root(self) -> StackTrace:
        """The innermost cause: usually where the fault is."""
        t = self
        while t.cause is not None:
            t = t.cause
        return t

    @property
    def top_frame(self) -> Frame | None:
        """Where it was raised: the last Python frame, the first JVM frame."""
        if not self.frames:
            return None
        return self.frames[-1] if self.language == "python" else self.frames[0]

    @property
    def signature(self) -> str:
        """Type and raising frame: identical bugs share it, whatever their messages."""
        f = self.top_frame
        return f"{self.exception}@{f.file}:{f.line}" if f else self.exception

    def headline(self) -> str:
        f = self.top_frame
        where = f" at {f}" if f else ""
        msg = f": {self.message}" if self.message else ""
        return f"{self.exception}{msg}{where}"

    def render(self, max_frames: int = 6) -> str:
        """A short text for evidence: the exception, its innermost frames, its causes."""
        out: list[str] = []
        t: StackTrace | None = self
        while t is not None:
            prefix = "caused by " if out else ""
            out.append(f"{prefix}{t.exception}: {t.message}".rstrip(": "))
            frames = t.frames[-max_frames:] if t.language == "python" else t.frames[:max_frames]
            out.extend(f"  {fr}" for fr in frames)
            hidden = len(t.frames) - len(frames)
            if hidden > 0:
                out.append(f"  ... {hidden} more frames")
            t = t.cause
        return "\n".join(out)


def closest_files(frame_path: str, files: Iterable[str]) -> list[str]:
    """The repository files (``a/b.py``, relative) that end with the longest run of
    ``frame_path``'s trailing parts, in ``files``' order: a trace carries the path where
    the code ran (``/srv/app/pricing/stats.py``, ``C:\\app\\x.py``), not the path in the
    repository. Empty when no file shares even the name. The caller decides a tie."""
    want = [q for q in PurePosixPath(frame_path.replace("\\", "/")).parts if q != "/"]
    best: list[str] = []
    best_len = 0
    for f in files:
        parts = PurePosixPath(f).parts
        n = 0
        while n < min(len(parts), len(want)) and parts[-1 - n] == want[-1 - n]:
            n += 1
        if n and n > best_len:
            best, best_len = [f], n
        elif n and n == best_len:
            best.append(f)
    return best


def parse(text: str) -> StackTrace | None:
    """The stack trace in ``text`` (Python first, then JVM), or None."""
    return parse_python(text) or parse_jvm(text)


def parse_python(text: str) -> StackTrace | None:
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.strip() == _PY_HEADER]
    if not starts:
        return None
    chain: list[StackTrace] = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        t = _python_segment(lines[start + 1 : end])
        if t is not None:
            chain.append(t)
    if not chain:
        return None
    # Python prints the earliest exception first; the last one is what was raised.
    for older, newer in pairwise(chain):
        newer.cause = older
    return chain[-1]


def _python_segment(lines: list[str]) -> StackTrace | None:
    frames: list[Frame] = []
    for ln in lines:
        m = _PY_FRAME.match(ln)
        if m:
            frames.append(Frame(m["file"], int(m["line"]), (m["func"] or "?").strip()))
            continue
        if ln[:1].isspace() or not ln.strip() or ln.startswith(_PY_CHAIN):
            continue
        e = _PY_EXC.match(ln.strip())
        if e:
            return StackTrace("python", e["type"], (e["msg"] or "").strip(), frames)
    if frames:
        return StackTrace("python", "UnknownException", "", frames)
    return None


def parse_jvm(text: str) -> StackTrace | None:
    lines = text.splitlines()
    chain: list[StackTrace] = []
    current: StackTrace | None = None
    pending_header: tuple[str, str] | None = None
    for ln in lines:
        f = _JVM_FRAME.match(ln)
        if f:
            if current is None and pending_header is not None:
                current = StackTrace("jvm", *pending_header)
                chain.append(current)
                pending_header = None
            if current is not None:
                current.frames.append(_jvm_frame(f["func"], f["where"]))
            continue
        if _JVM_MORE.match(ln):
            continue
        h = _JVM_HEADER.match(ln.strip())
        if h:
            header = (h["type"], (h["msg"] or "").strip())
            if ln.strip().startswith("Caused by:") and chain:
                current = StackTrace("jvm", *header)
                chain.append(current)
            elif ln.strip().startswith("Suppressed:"):
                current = None  # ignore suppressed exceptions' frames
            else:
                current, pending_header = None, header
        elif ln.strip():
            pending_header = None if current is None else pending_header
    if not chain:
        return None
    for outer, inner in pairwise(chain):
        outer.cause = inner
    return chain[0]


def _jvm_frame(func: str, where: str) -> Frame:
    file, _, line = where.partition(":")
    return Frame(file or "Unknown Source", int(line) if line.isdigit() else None, func)


# --- one record per log event, even when the trace came one line per event ---------------


@dataclass
class Record:
    """One logical log entry: a line, or a line with the trace that followed it."""

    at: datetime | None
    stream: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]


def _continues(line: str, current: Record) -> bool:
    if not line.strip():
        return _PY_HEADER in current.text or "\tat " in current.text
    if line.startswith(_PY_HEADER):
        # logging.exception(): "ERROR ... message" then the trace; an INFO line is not its head
        return _PY_HEADER in current.text or _ERRORISH.search(current.first_line) is not None
    if line[:1].isspace() or line.startswith(("Caused by:", *_PY_CHAIN)):
        return True
    last = current.text.rsplit("\n", 1)[-1]
    # Python's final "ValueError: msg" line follows an indented frame line
    return (
        _PY_HEADER in current.text
        and last[:1].isspace()
        and _PY_EXC.match(line.strip()) is not None
    )


def assemble(events: Iterable[tuple[datetime | None, str, str]]) -> Iterator[Record]:
    """Glue continuation lines to their record, per stream; input is (time, stream, line)."""
    open_: dict[str, Record] = {}
    for at, stream, message in events:
        message = message.rstrip("\n")
        cur = open_.get(stream)
        if cur is not None and "\n" not in message and _continues(message, cur):
            cur.text += "\n" + message
            continue
        if cur is not None:
            yield cur
        open_[stream] = Record(at, stream, message)
    yield from open_.values()
