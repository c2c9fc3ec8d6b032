"""The lab's CI reads a pushed head's message as GitHub Actions does: the documented
markers (and the ``skip-checks: true`` trailer) skip the run, and so the deploy.

Why it matters: rootloop's incident record commit says ``[skip ci]``; a CI that ran it
anyway would redeploy the service after the run verified what runs.
"""

from __future__ import annotations

import pytest

from rootloop.code.editor import asks_to_skip_ci


@pytest.mark.parametrize(
    "message",
    [
        "Incident record 20261201-231915-ac87 [skip ci]\n\nRootloop-Run: x\n",
        "docs [CI SKIP]",
        "x\n\nbody [no ci] here",
        "[skip actions] y",
        "[actions skip]",
        "change\n\nskip-checks: true\n",
        "change\n\nSkip-Checks:true",
    ],
)
def test_the_documented_markers_skip(message: str) -> None:
    assert asks_to_skip_ci(message)


@pytest.mark.parametrize(
    "message",
    [
        "Bound the PostgreSQL connection pool of the batch\n\nRootloop-Run: x\n",
        "skip ci without brackets",
        "[skip-ci]",
        "change\n\nskip-checks: false\n",
        "a line that mentions skip-checks: true in the middle",
        "",
    ],
)
def test_anything_else_runs(message: str) -> None:
    assert not asks_to_skip_ci(message)
