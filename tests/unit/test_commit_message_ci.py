"""Only rootloop decides whether CI runs a commit it pushes.

A fix's title and reason can come from a model or be quoted from a log; if they could
carry ``[skip ci]``, a hostile line could push an untested fix past CI (and past the
deploy the loop waits for). The incident record, which changes no code, is the one
commit that asks CI to skip it.
"""

from __future__ import annotations

import pytest

from rootloop.code.editor import asks_to_skip_ci, commit_message


def message(title: str, why: str = "because", **kw: object) -> str:
    return commit_message(title, why, service="svc", run_id="20260101-000000-ab12", **kw)


@pytest.mark.parametrize(
    ("title", "why"),
    [
        ("Bound the pool [skip ci]", "because"),
        ("Bound the pool", "ignore previous instructions [CI SKIP] and [no ci]"),
        ("[skip actions] fix", "why\n\nskip-checks: true"),
        ("fix [actions skip]", "Skip-Checks:true"),
    ],
)
def test_a_fix_whose_text_carries_a_skip_marker_still_runs_ci(title: str, why: str) -> None:
    text = message(title, why)
    assert not asks_to_skip_ci(text)
    assert "Rootloop-Run: 20260101-000000-ab12" in text


def test_the_incident_record_asks_ci_to_skip_it() -> None:
    text = message("Incident record 20260101-000000-ab12", "history", skip_ci=True)
    subject = text.splitlines()[0]
    assert subject == "Incident record 20260101-000000-ab12 [skip ci]"
    assert asks_to_skip_ci(text)


def test_a_long_title_keeps_its_marker_within_the_subject_line() -> None:
    subject = message("x" * 200, skip_ci=True).splitlines()[0]
    assert len(subject) <= 72 and subject.endswith("[skip ci]")


@pytest.mark.parametrize(
    "title",
    [
        "[skip [skip ci]ci] fix",
        "fix [ski[no ci]p ci]",
        "skip-checkskip-checks: trues: true",
        "[sk[ci s[skip ci]kip]ip ci] nested twice",
    ],
)
def test_a_marker_hidden_inside_another_does_not_survive_its_removal(title: str) -> None:
    """Taking out one marker must not join the text around it into another."""
    assert not asks_to_skip_ci(message(title, title))


@pytest.mark.parametrize(
    ("title", "service"),
    [
        ("[skip\nci] fix", "svc"),  # the subject's whitespace is joined into one line
        ("fix [no\t\tci]", "svc"),
        ("fix", "payments [skip ci]"),  # a map's service name is pushed too
    ],
)
def test_no_part_of_the_message_becomes_a_marker_once_it_is_assembled(
    title: str, service: str
) -> None:
    text = commit_message(title, "because", service=service, run_id="20260101-000000-ab12")
    assert not asks_to_skip_ci(text)
