"""The code-fix agent's bounded view of a worktree, and the record of what it changed.

Why a workspace of its own: every path the model names is resolved and refused when it
leaves the worktree (``..``, absolute paths, symlinks out, ``.git``); reads, searches and
listings are bounded and redacted; an edit is an exact search-and-replace that must
match once; the repository's test command runs without a shell, with a timeout and
without secret-looking variables. Every edit is recorded (``FileEdit``), the diff is
computed from the originals, and ``restore`` puts the files back: the change leaves
only as an ``ApplyPatch``. ``apply_edits`` is the same edit semantics for the act step.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import regex
from pydantic import BaseModel

from rootloop.analysis.stacktrace import closest_files
from rootloop.analysis.stacktrace import parse as parse_trace
from rootloop.errors import PlatformError
from rootloop.models.actions import FileEdit
from rootloop.reasoning.prompt import data_block
from rootloop.redact import SENSITIVE_NAME, Redactor

SKIP_DIRS = {
    ".git",
    ".hg",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "dist",
    "build",
    ".tox",
}
MAX_FILE_BYTES = 1_000_000
READ_MAX_LINES = 400
OUTPUT_TAIL = 4000
#: a bound on one search step, whatever its pattern: a step, not a stall of the run
SEARCH_SECONDS = 5.0


class PathRefused(Exception):
    """A path outside the worktree (or inside .git)."""


class StepFailed(Exception):
    """A step that cannot be done as asked (not a file, search text not found once)."""


class TestRun(BaseModel):
    __test__ = False  # not a pytest class

    command: str
    exit_code: int | None
    passed: bool
    timed_out: bool = False
    output: str = ""


@dataclass
class Workspace:
    """The agent's bounded view of the worktree, and the record of what it changed."""

    root: Path
    test_command: str | None = None
    test_timeout: float = 300.0
    redactor: Redactor = field(default_factory=Redactor)
    edits: list[FileEdit] = field(default_factory=list)
    originals: dict[str, str | None] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    last_test: TestRun | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if not self.root.is_dir():
            raise PlatformError(
                f"worktree {self.root} does not exist", "check the repo path of the map"
            )

    # -- paths ------------------------------------------------------------
    def resolve(self, rel: str) -> Path:
        if "\x00" in rel:
            raise PathRefused(f"'{rel!r}' is not a path")
        p = (self.root / rel).resolve()
        if not p.is_relative_to(self.root):
            raise PathRefused(f"'{rel}' is outside the worktree")
        if ".git" in p.relative_to(self.root).parts:
            raise PathRefused(f"'{rel}' is inside .git")
        return p

    def rel(self, p: Path) -> str:
        return p.relative_to(self.root).as_posix() or "."

    def refuse(self, exc: PathRefused) -> str:
        self.refusals.append(str(exc))
        return f"REFUSED: {exc}. Paths are relative to the repository root."

    def _files(self, base: Path) -> list[Path]:
        out = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if p.resolve().is_relative_to(self.root):
                    out.append(p)
        return out

    def locate(self, file: str) -> str | None:
        """The repository file a stack frame's path names, or None.

        Why: a trace carries the path where the code ran (``/srv/app/pricing/stats.py``,
        or a JVM ``Stats.java``), not the path in the repository. The file whose path
        ends with the longest run of the frame's trailing parts is the one, when only
        one file has that run; otherwise nothing is claimed.
        """
        best = closest_files(file, (self.rel(p) for p in self._files(self.root)))
        return best[0] if len(best) == 1 else None

    def trace_frames(self, texts: list[str], limit: int = 8) -> list[str]:
        """The frames of the stack traces in ``texts`` that are files of this repository,
        innermost first, as ``path line N in function``."""
        out: list[str] = []
        for text in texts:
            trace = parse_trace(text)
            while trace is not None:
                frames = trace.frames[::-1] if trace.language == "python" else trace.frames
                for fr in frames:
                    path = self.locate(fr.file)
                    line = f" line {fr.line}" if fr.line is not None else ""
                    here = f"{path}{line} in {fr.function}"
                    if path and here not in out:
                        out.append(here)
                trace = trace.cause
        return out[:limit]

    # -- the five tools ---------------------------------------------------
    def list_files(self, path: str = ".", limit: int = 300) -> str:
        base = self.resolve(path)
        if base.is_file():
            return self.rel(base)
        if not base.is_dir():
            raise StepFailed(f"'{path}' does not exist; list '.' to see the repository")
        files = [self.rel(p) for p in self._files(base)]
        more = (
            f"\n[{len(files) - limit} more files; list a subfolder]" if len(files) > limit else ""
        )
        return "\n".join(files[:limit]) + more

    def read(self, path: str, start: int = 1, end: int = 200) -> str:
        p = self.resolve(path)
        if not p.is_file():
            raise StepFailed(f"'{path}' is not a file; use list_files to find it")
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
        start = max(1, start)
        end = min(len(lines), end, start + READ_MAX_LINES - 1)
        body = "\n".join(f"{i:>5}  {lines[i - 1]}" for i in range(start, end + 1))
        return data_block(
            self.redactor.text(body),
            "file",
            path=self.rel(p),
            lines=f"{start}-{end} of {len(lines)}",
        )

    def search(
        self, pattern: str, path: str = ".", limit: int = 50, seconds: float = SEARCH_SECONDS
    ) -> str:
        """Lines matching ``pattern`` (a regex; a pattern that does not compile is taken
        literally). Why the ``regex`` library: the pattern is the model's, and a pattern
        such as ``(a+)+$`` backtracks for hours in ``re``, which cannot be interrupted;
        ``regex`` takes a timeout, so the whole search is bounded by ``seconds``."""
        try:
            rx = regex.compile(pattern)
        except regex.error:
            rx = regex.compile(regex.escape(pattern))
        base = self.resolve(path)
        hits: list[str] = []
        deadline = time.monotonic() + seconds
        try:
            for p in [base] if base.is_file() else self._files(base):
                if p.stat().st_size > MAX_FILE_BYTES:
                    continue
                try:
                    text = p.read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                for n, line in enumerate(text.splitlines(), 1):
                    if rx.search(line, timeout=max(deadline - time.monotonic(), 0.0)):
                        hits.append(f"{self.rel(p)}:{n}: {line.strip()[:200]}")
                        if len(hits) >= limit:
                            break
                if len(hits) >= limit:
                    hits.append(f"[stopped at {limit} matches; narrow the pattern or path]")
                    break
        except TimeoutError:
            hits.append(
                f"[stopped after {seconds:g} s: the pattern is too slow; use a plainer one]"
            )
        body = "\n".join(hits) or "no matches"
        return data_block(self.redactor.text(body), "search", pattern=pattern[:100])

    def edit(self, path: str, search: str, replace: str) -> str:
        p = self.resolve(path)
        key = self.rel(p)
        if search == "":
            if p.exists():
                raise StepFailed(f"'{key}' exists: give the exact text to replace")
            self.originals.setdefault(key, None)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(replace, encoding="utf-8")
        else:
            if not p.is_file():
                raise StepFailed(f"'{key}' is not a file")
            text = p.read_text(encoding="utf-8")
            count = text.count(search)
            if count != 1:
                raise StepFailed(
                    f"the search text occurs {count} times in '{key}'; it must "
                    "occur exactly once (copy it exactly, with more context)"
                )
            self.originals.setdefault(key, text)
            p.write_text(text.replace(search, replace, 1), encoding="utf-8")
        self.edits.append(FileEdit(path=key, search=search, replace=replace))
        return f"edited {key} ({len(self.edits)} edit(s) so far)"

    async def run_tests(self) -> TestRun:
        if not self.test_command:
            run = TestRun(
                command="",
                exit_code=None,
                passed=False,
                output="this repository has no test command configured",
            )
            self.last_test = run
            return run
        run = await run_command(self.test_command, self.root, self.test_timeout)
        run = run.model_copy(update={"output": self.redactor.text(run.output)})
        self.last_test = run
        return run

    # -- results ----------------------------------------------------------
    def diff(self) -> str:
        out: list[str] = []
        for key, before in self.originals.items():
            p = self.root / key
            after = p.read_text(encoding="utf-8") if p.exists() else ""
            out.extend(
                difflib.unified_diff(
                    (before or "").splitlines(keepends=True),
                    after.splitlines(keepends=True),
                    fromfile="/dev/null" if before is None else f"a/{key}",
                    tofile=f"b/{key}",
                )
            )
        return "".join(out)

    def restore(self) -> None:
        """Put every file the agent touched back as it was."""
        for key, before in self.originals.items():
            p = self.root / key
            if before is None:
                p.unlink(missing_ok=True)
            else:
                p.write_text(before, encoding="utf-8")


async def run_command(command: str, cwd: Path, timeout: float) -> TestRun:
    """Run a repository's test command (no shell), killing its process group on timeout.

    The environment is the parent's minus anything that looks like a secret: the code
    under test was just edited by a model and has no business reading API keys.
    """
    env = {k: v for k, v in os.environ.items() if not SENSITIVE_NAME.search(k)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        argv = shlex.split(command)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:
        return TestRun(
            command=command,
            exit_code=None,
            passed=False,
            output=f"cannot start the test command: {exc}",
        )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        return TestRun(
            command=command,
            exit_code=None,
            passed=False,
            timed_out=True,
            output=f"the test command did not finish within {timeout:g} s",
        )
    text = out.decode("utf-8", errors="replace")
    return TestRun(
        command=command,
        exit_code=proc.returncode,
        passed=proc.returncode == 0,
        output=text[-OUTPUT_TAIL:],
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def apply_edits(root: Path, edits: tuple[FileEdit, ...] | list[FileEdit]) -> list[str]:
    """Apply an ``ApplyPatch``'s edits in order, with the agent's rules; returns the paths.

    Raises ``PlatformError`` (nothing written) when a path leaves ``root`` or a search
    text does not occur exactly once.
    """
    ws = Workspace(root)
    staged: dict[Path, str] = {}
    for e in edits:
        try:
            p = ws.resolve(e.path)
        except PathRefused as exc:
            raise PlatformError(f"patch refused: {exc}") from None
        text = staged.get(p)
        if text is None and p.is_file():
            text = p.read_text(encoding="utf-8")
        if e.search == "":
            if text is not None:
                raise PlatformError(f"patch does not apply: {e.path} already exists")
            staged[p] = e.replace
            continue
        count = (text or "").count(e.search)
        if count != 1:
            raise PlatformError(
                f"patch does not apply: the search text occurs {count} times in {e.path}"
            )
        staged[p] = (text or "").replace(e.search, e.replace, 1)
    for p, text in staged.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return [ws.rel(p) for p in staged]
