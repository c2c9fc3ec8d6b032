"""Fetching the code that stack frames and error messages point at, with lines around it.

Frames name files as the running process saw them (``/app/src/checkout/app.py``,
``/home/runner/work/checkout/checkout/src/...``); the reader maps them to the
repository by the longest matching path suffix and never reads outside it. The
source is the working tree, or a commit (the deployed one) through git.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from rootloop.analysis.stacktrace import closest_files
from rootloop.platforms.local.git import Git, GitError
from rootloop.redact import Redactor


class SourceRef(BaseModel):
    """A place in the code named by an error: a path and maybe a line and function."""

    path: str
    line: int | None = None
    function: str | None = None


class Snippet(BaseModel):
    """Lines around a referenced place, numbered; ``path`` is relative to the repo."""

    ref: SourceRef
    path: str
    start: int
    end: int
    text: str

    def render(self) -> str:
        return f"{self.path}:{self.ref.line or self.start}\n{self.text}"


_FRAMES: list[re.Pattern[str]] = [
    re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>[\w<>.]+))?'),
    re.compile(
        r"at (?:(?P<func>[\w$.<>\[\] ]+?) \()?(?:file://)?(?P<path>[\w./@~-]+\.\w+)"
        r":(?P<line>\d+)(?::\d+)?\)?"
    ),  # Node / JS
    re.compile(
        r"at [\w$.]+\.(?P<func>[\w$<>]+)\((?P<path>[\w$-]+\.(?:java|kt|scala))"
        r":(?P<line>\d+)\)"
    ),  # JVM
    re.compile(
        r"(?P<path>(?:[\w.@~-]+/)*[\w.@-]+\.(?:py|go|rs|js|mjs|cjs|ts|tsx|jsx|rb|"
        r"php|java|kt|cs|c|cc|cpp|h|hpp|swift|sql|ya?ml|toml|json)):(?P<line>\d+)"
    ),
]


def extract_refs(text: str, limit: int = 20) -> list[SourceRef]:
    """Every file:line an error text names, first seen first, without duplicates."""
    seen: dict[tuple[str, int | None], SourceRef] = {}
    for line in text.splitlines():
        for pattern in _FRAMES:
            matches = list(pattern.finditer(line))
            for m in matches:
                num = int(m.group("line")) if m.group("line") else None
                func = m.groupdict().get("func")
                seen.setdefault(
                    (m.group("path"), num),
                    SourceRef(
                        path=m.group("path"), line=num, function=func.strip() if func else None
                    ),
                )
            if matches:
                break  # the most specific pattern that matched a line wins
        if len(seen) >= limit:
            break
    return list(seen.values())


class CodeReader:
    """Reads snippets from a repository's working tree, or from one commit of it."""

    def __init__(
        self,
        root: Path,
        *,
        ref: str | None = None,
        context: int = 5,
        redactor: Redactor | None = None,
        git: Git | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.ref = ref
        self.context = context
        self.redactor = redactor or Redactor()
        self.git = git or Git(self.root)
        self._files: list[str] | None = None

    def files(self) -> list[str]:
        if self._files is None:
            if self.ref is not None:
                out = self.git.out("ls-tree", "-r", "--name-only", self.ref)
            else:
                res = self.git.run(
                    "ls-files", "--cached", "--others", "--exclude-standard", check=False
                )
                out = (
                    res.stdout
                    if res.returncode == 0
                    else "\n".join(
                        str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()
                    )
                )
            self._files = [f for f in out.splitlines() if f]
        return self._files

    def resolve(self, path: str) -> str | None:
        """The repo file a frame's path means: the longest common suffix wins."""
        # of the files tied at the longest suffix, the shortest path (then the first)
        return min(closest_files(path, self.files()), key=len, default=None)

    def _text(self, rel: str) -> str | None:
        if self.ref is not None:
            try:
                return self.git.show_file(self.ref, rel)
            except GitError:
                return None
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target.read_text(encoding="utf-8", errors="replace")

    def snippet(self, ref: SourceRef) -> Snippet | None:
        rel = self.resolve(ref.path)
        text = self._text(rel) if rel else None
        if text is None or rel is None:
            return None
        lines = text.splitlines()
        focus = min(max(ref.line or 1, 1), max(len(lines), 1))
        start = max(1, focus - self.context)
        end = min(len(lines), focus + self.context if ref.line else 2 * self.context)
        width = len(str(end))
        body = "\n".join(
            f"{'>' if n == ref.line else ' '} {n:>{width}} | {lines[n - 1]}"
            for n in range(start, end + 1)
        )
        return Snippet(ref=ref, path=rel, start=start, end=end, text=self.redactor.text(body))

    def read(self, error_text: str, limit: int = 8) -> list[Snippet]:
        """Snippets for the frames an error names that exist in this repository."""
        out: list[Snippet] = []
        for ref in extract_refs(error_text):
            snip = self.snippet(ref)
            if snip is not None:
                out.append(snip)
            if len(out) >= limit:
                break
        return out
