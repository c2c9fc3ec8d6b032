"""One lab for the e2e modules that share it (each lab boot costs a minute on a busy box)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from rootloop_lab import Lab


@pytest.fixture(scope="session")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("shared-lab") / "lab")
    saved = dict(os.environ)
    try:
        yield lab
    finally:
        lab.down()
        os.environ.clear()
        os.environ.update(saved)
