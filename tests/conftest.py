"""Shared fixtures. Each fixture family lives in its own plugin module.

Real model requests are switched off for the whole suite (pydantic-ai's
``ALLOW_MODEL_REQUESTS``): a test that forgot to script its model fails with
pydantic-ai's error instead of calling a provider. Tests that mean to reach a real
model say so with ``@pytest.mark.real_model``.

The fixture plugins import the heavy libraries where they use them, so the process that
only hands tests to pytest-xdist's workers starts them in a second, not three.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.aws",
    "tests.fixtures.llm",
    "tests.fixtures.speed",
]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Take what collection loaded out of the garbage collector's sight (``gc.freeze``).

    Collection leaves each process some 300,000 long-lived objects (modules, pydantic
    schemas, test functions), none of them garbage. Without this, every full collection
    during the tests, and the ones pytest and the interpreter make at exit, walk them all
    again: about a tenth of ``make test-fast``'s CPU, and seconds at the end of a worker.
    """
    gc.freeze()


@pytest.fixture(autouse=True)
def _block_model_requests(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("real_model") is not None:
        yield
        return
    import pydantic_ai.models

    allowed = pydantic_ai.models.ALLOW_MODEL_REQUESTS
    pydantic_ai.models.ALLOW_MODEL_REQUESTS = False
    try:
        yield
    finally:
        pydantic_ai.models.ALLOW_MODEL_REQUESTS = allowed


@pytest.fixture
def fake_world_hosts_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's in-memory fakes (tests/fakes.py) act on ``static`` checks (rootloop.testing).

    The target gate lets an action land only on its target's own check of the right skill
    (ECS for set-env, PostgreSQL for a migration…). For the tests of the loop's state
    machine, whose world is fake, that skill is ``static``; the gate's own tests never
    use this fixture, so they judge the real table.
    """
    from rootloop.actions import gates

    monkeypatch.setattr(gates, "SKILL_OF", dict.fromkeys(gates.SKILL_OF, "static"))
