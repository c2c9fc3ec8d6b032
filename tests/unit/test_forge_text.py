"""Pure text handling: log archives and tails, PR body limits, commit messages, errors."""

from __future__ import annotations

import io
import zipfile

from rootloop.code.editor import commit_message
from rootloop.forge.base import BODY_LIMIT, fit_body
from rootloop.platforms.github.client import resolve_token
from rootloop.platforms.github.logs import error_lines, section, step_log, tail


def archive(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


JOB_LOG = """2026-11-27T09:58:03.1Z ##[group]Run actions/checkout@v4
2026-11-27T09:58:04.1Z Syncing repository
2026-11-27T09:58:31.1Z ##[group]Run pytest -q
2026-11-27T09:58:36.1Z E   assert 18.0 == 20
2026-11-27T09:58:38.1Z ##[error]Process completed with exit code 1.
2026-11-27T09:58:39.1Z Post job cleanup.
"""


def test_step_log_is_found_by_job_and_step_number():
    zipped = archive(
        {
            "build (ubuntu-latest, 3.12)/5_Run pytest.txt": "wrong job",
            "test/4_Install dependencies.txt": "pip install",
            "test/5_Run pytest.txt": "E   assert 18.0 == 20",
            "1_test.txt": JOB_LOG,
        }
    )
    assert step_log(zipped, "test", 5, "Run pytest") == "E   assert 18.0 == 20"
    # a matrix job name is sanitised by GitHub; matching ignores punctuation
    assert step_log(zipped, "build (ubuntu-latest, 3.12)", 5) == "wrong job"


def test_step_log_falls_back_to_the_job_file_section():
    zipped = archive({"1_test.txt": JOB_LOG})
    text = step_log(zipped, "test", 5, "Run pytest -q")
    assert text is not None and text.splitlines()[0].endswith("##[group]Run pytest -q")
    assert "Syncing" not in text and "Post job cleanup" not in text
    assert step_log(b"not a zip", "test", 5) is None
    assert step_log(zipped, "deploy", 2) is None


def test_tail_and_error_lines():
    assert tail(JOB_LOG, 2) == ("##[error]Process completed with exit code 1.\nPost job cleanup.")
    assert error_lines(JOB_LOG) == ["Process completed with exit code 1."]
    assert section(JOB_LOG, "") == JOB_LOG
    assert section(JOB_LOG, "a step that is not there") == JOB_LOG


def test_fit_body_trims_with_a_note_and_closes_fences():
    short = "## Summary\nok"
    assert fit_body(short) == (short, False)
    body = "## Map\n```mermaid\ngraph LR\n" + "  a-->b\n" * 20_000 + "```\n"
    trimmed, cut = fit_body(body)
    assert cut and len(trimmed) <= BODY_LIMIT
    assert trimmed.count("```") % 2 == 0
    assert "Trimmed by rootloop" in trimmed and f"{len(body):,}" in trimmed


def test_commit_message_says_what_why_and_which_run():
    msg = commit_message(
        "Raise the pool size",
        "The pool ran dry under load.",
        service="checkout",
        run_id="r1",
        iteration=2,
    )
    subject, blank, why, *rest = msg.splitlines()
    assert (subject, blank, why) == ("Raise the pool size", "", "The pool ran dry under load.")
    assert "Rootloop-Run: r1" in rest and "Rootloop-Iteration: 2" in rest


def test_token_resolution_order():
    env = {"GH_TOKEN": "gh", "GITHUB_TOKEN": "github", "MINE": "mine"}
    assert resolve_token("MINE", env) == "mine"
    assert resolve_token("UNSET", env) == "github"
    assert resolve_token(None, {"GH_TOKEN": "gh"}) == "gh"
    assert resolve_token(None, {}) is None
