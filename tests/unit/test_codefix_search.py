"""The code-fix agent's search step runs the model's pattern, so the pattern is bounded.

A weak or hostile model can send a pattern that backtracks exponentially (``(a|aa)+$``
on a line of a's). Python's ``re`` cannot be interrupted; the workspace's search must
stop with an observation the model can act on, and the run must go on.
"""

from __future__ import annotations

from pathlib import Path

from rootloop.reasoning.codefix_workspace import Workspace


def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.txt").write_text("a" * 60 + "b\n")
    (tmp_path / "pkg" / "code.py").write_text("def total(xs):\n    return sum(xs) / len(xs)\n")
    return Workspace(tmp_path)


def test_a_catastrophic_pattern_stops_at_the_bound_with_a_note(tmp_path: Path) -> None:
    # about 1.5e12 ways to split 60 a's into a and aa: no machine tries them within the bound
    out = workspace(tmp_path).search(r"(a|aa)+$", seconds=0.5)
    assert "the pattern is too slow" in out


def test_an_ordinary_pattern_finds_its_lines(tmp_path: Path) -> None:
    out = workspace(tmp_path).search(r"len\(\w+\)")
    assert "pkg/code.py:2:" in out and "too slow" not in out


def test_a_pattern_that_does_not_compile_is_searched_literally(tmp_path: Path) -> None:
    out = workspace(tmp_path).search("sum(xs")
    assert "pkg/code.py:2:" in out
