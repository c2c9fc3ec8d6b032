"""Shared fixtures. Each fixture family lives in its own plugin module.

Real model requests are switched off for the whole suite (pydantic-ai's
``ALLOW_MODEL_REQUESTS``): a test that forgot to script its model fails with
pydantic-ai's error instead of calling a provider. Tests that mean to reach a real
model say so with ``@pytest.mark.real_model``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pydantic_ai.models
import pytest

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.aws",
    "tests.fixtures.llm",
    "tests.fixtures.speed",
]


@pytest.fixture(autouse=True)
def _block_model_requests(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("real_model") is not None:
        yield
        return
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
