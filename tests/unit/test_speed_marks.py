"""The list of slow tests cannot quietly go stale: a rename stops the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fixtures import speed


def test_every_listed_file_and_test_exists() -> None:
    assert speed._listed_but_gone(Path(__file__).parents[2]) == []


def test_a_renamed_test_or_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "test_a.py").write_text(
        "def test_kept():\n    pass\n\nasync def test_async():\n    pass\n"
    )
    monkeypatch.setattr(
        speed,
        "SLOW",
        {
            "test_a.py::test_kept": "x",
            "test_a.py::test_async": "x",
            "test_a.py::test_renamed": "x",
            "test_gone.py": "x",
            "test_a.py::test_kep": "x",
        },
    )
    assert speed._listed_but_gone(tmp_path) == [
        "test_a.py::test_renamed",
        "test_gone.py",
        "test_a.py::test_kep",
    ]
