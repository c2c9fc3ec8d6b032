"""Reading GitHub Actions logs: the run's zip of text files and plain job logs.

The run logs archive holds one folder per job with one file per step
(``build/3_Run tests.txt``) and one file per job at the top
(``0_build.txt``). GitHub sanitises names (``/`` and ``:`` become ``_``), so
files are matched on the step number first and the name second. Lines start
with an ISO timestamp, which is noise in a tail and is stripped.
"""

from __future__ import annotations

import io
import re
import zipfile

_TS = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
MAX_ZIP_MEMBER = 20 * 1024 * 1024  # a log file bigger than this is read from its end only


def _norm(name: str) -> str:
    return _UNSAFE.sub("", name).lower()


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    with zf.open(info) as fh:
        if info.file_size > MAX_ZIP_MEMBER:
            fh.seek(info.file_size - MAX_ZIP_MEMBER)
        return fh.read().decode("utf-8", errors="replace")


def step_log(archive: bytes, job: str, step_number: int, step_name: str = "") -> str | None:
    """The text of one step's log inside a run's logs zip, or None if it is not there."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile:
        return None
    with zf:
        files = [i for i in zf.infolist() if not i.is_dir()]
        in_job = [
            i
            for i in files
            if "/" in i.filename and _norm(i.filename.rsplit("/", 1)[0]) == _norm(job)
        ]
        candidates = in_job or [i for i in files if "/" in i.filename]
        prefix = f"{step_number}_"
        numbered = [i for i in candidates if i.filename.rsplit("/", 1)[1].startswith(prefix)]
        if len(numbered) > 1 and step_name:
            named = [i for i in numbered if _norm(step_name)[:20] in _norm(i.filename)]
            numbered = named or numbered
        if numbered:
            return _read(zf, numbered[0])
        top = [
            i
            for i in files
            if "/" not in i.filename
            and _norm(i.filename.split("_", 1)[-1].removesuffix(".txt")) == _norm(job)
        ]
        return section(_read(zf, top[0]), step_name) if top else None


def section(job_log: str, step_name: str) -> str:
    """The part of a whole-job log that belongs to one step (from its ``##[group]`` line)."""
    if not step_name:
        return job_log
    lines = job_log.splitlines()
    starts = [
        i
        for i, line in enumerate(lines)
        if "##[group]" in line and _norm(step_name.removeprefix("Run ")) in _norm(line)
    ]
    if not starts:
        return job_log
    begin = starts[-1]
    end = next(
        (
            i
            for i in range(begin + 1, len(lines))
            if "##[group]Run " in lines[i] or "Post job cleanup" in lines[i]
        ),
        len(lines),
    )
    return "\n".join(lines[begin:end])


def clean(text: str) -> list[str]:
    """Lines without timestamps or trailing whitespace."""
    return [_ANSI.sub("", _TS.sub("", line)).rstrip() for line in text.splitlines()]


def tail(text: str, lines: int = 60) -> str:
    out = [line for line in clean(text) if line.strip()]
    return "\n".join(out[-lines:])


def error_lines(text: str, limit: int = 10) -> list[str]:
    """GitHub's ``##[error]`` annotations, which name what failed."""
    found = [line.split("##[error]", 1)[1].strip() for line in clean(text) if "##[error]" in line]
    return found[:limit]
