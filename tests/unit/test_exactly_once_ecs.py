"""ECS actions are exactly once across a kill: found by their key tag on resume (moto server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Killed, kill_points
from tests.integration.aws.test_ecs_actions import current_td, make_topology, seed

from rootloop.actions import ecs
from rootloop.actions.dispatch import Step
from rootloop.actions.types import (
    BaseAction,
    ForceDeployment,
    RollbackTaskDefinition,
    ScaleService,
    SetEnvVar,
    SetTaskResources,
)
from rootloop.context import ContextStore, DebugContext, HistoryEntry
from rootloop.platforms.aws.session import AwsClients


class Run:
    """One iteration of one run, persisted like the loop persists it at each checkpoint."""

    def __init__(self, tmp_path: Path, action: BaseAction) -> None:
        self.store = ContextStore(tmp_path / "state")
        self.ctx = DebugContext(service="orders")
        self.ctx.iteration = 1
        self.ctx.history.append(
            HistoryEntry(iteration=1, diagnosis="d", action_detail=action, phase="applying")  # type: ignore[arg-type]
        )
        self.store.save(self.ctx)

    def step(self, kind: str) -> Step:
        return Step(self.ctx, self.ctx.history[-1], lambda _m: self.store.save(self.ctx), kind)

    def resumed(self) -> Run:
        """What a new process sees: the context as last saved."""
        self.ctx = self.store.load(self.ctx.run_id)
        return self


def revisions(aws: AwsClients) -> list[str]:
    return aws.ecs.list_task_definitions(familyPrefix="orders-api")["taskDefinitionArns"]


def keyed(aws: AwsClients, key: str) -> list[str]:
    out = []
    for arn in revisions(aws):
        tags = aws.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])["tags"]
        if {"key": ecs.KEY_TAG, "value": key} in tags:
            out.append(arn)
    return out


def service_td(aws: AwsClients) -> str:
    svc = aws.ecs.describe_services(cluster="staging", services=["orders-api"])["services"][0]
    return svc["taskDefinition"]


ENV = SetEnvVar(
    target="orders-ecs", cluster="staging", service="orders-api", name="POOL_SIZE", value="20"
)
MEM = SetTaskResources(target="orders-ecs", cluster="staging", service="orders-api", memory=1024)
RESTART = ForceDeployment(target="orders-ecs", cluster="staging", service="orders-api")


@pytest.mark.parametrize("action", [ENV, MEM, RESTART], ids=lambda a: a.kind)
@pytest.mark.parametrize("point", ["register", "deploy"])
def test_killed_revision_change_lands_once(
    action: BaseAction, point: str, aws: AwsClients, moto_server: Any, tmp_path: Path, monkeypatch
) -> None:
    seed(aws)
    topo = make_topology(tmp_path, moto_server.endpoint_url)
    run = Run(tmp_path, action)
    before = len(revisions(aws))
    kill_points(monkeypatch, f"step:{action.kind}:{point}")
    with pytest.raises(Killed):
        ecs.apply(action, aws, topo, run.step(action.kind))
    run.resumed()
    assert not ecs.already_applied(action, aws, run.step(action.kind))

    result = ecs.apply(action, aws, topo, run.step(action.kind))
    key = run.ctx.action_key(run.ctx.history[-1])
    assert len(revisions(aws)) == before + 1  # one revision, not one per attempt
    assert keyed(aws, key) == [service_td(aws)]
    assert not result.no_op and result.details["previous_task_definition"].endswith(":2")
    assert ecs.already_applied(action, aws, run.step(action.kind))
    # a second resume after it landed changes nothing more, and still reports the change
    again = ecs.apply(action, aws, topo, run.resumed().step(action.kind))
    assert len(revisions(aws)) == before + 1 and again.changed == result.changed


def test_set_env_reports_its_real_change_after_a_resume(aws, moto_server, tmp_path, monkeypatch):
    seed(aws)
    topo = make_topology(tmp_path, moto_server.endpoint_url)
    run = Run(tmp_path, ENV)
    kill_points(monkeypatch, "step:set-env:deploy")
    with pytest.raises(Killed):
        ecs.apply(ENV, aws, topo, run.step("set-env"))
    result = ecs.apply(ENV, aws, topo, run.resumed().step("set-env"))
    assert "POOL_SIZE 5 -> 20" in result.changed  # not "20 -> 20, nothing changed"
    env = current_td(aws)["containerDefinitions"][0]["environment"]
    assert {"name": "POOL_SIZE", "value": "20"} in env


def test_set_env_to_the_value_it_has_is_a_no_op_and_registers_nothing(aws, moto_server, tmp_path):
    seed(aws)
    topo = make_topology(tmp_path, moto_server.endpoint_url)
    same = ENV.model_copy(update={"value": "5"})
    before = revisions(aws)
    result = ecs.apply(same, aws, topo, Run(tmp_path, same).step("set-env"))
    assert result.no_op and revisions(aws) == before


def test_rollback_goes_to_an_explicit_revision_never_one_more(
    aws, moto_server, tmp_path, monkeypatch
):
    seed(aws)
    topo = make_topology(tmp_path, moto_server.endpoint_url)
    back = RollbackTaskDefinition(target="orders-ecs", cluster="staging", service="orders-api")
    run = Run(tmp_path, back)
    kill_points(monkeypatch, "step:rollback-task-definition:deploy")
    with pytest.raises(Killed):
        ecs.apply(back, aws, topo, run.step(back.kind))
    assert run.resumed().ctx.history[-1].journal["rollback_target"].endswith("orders-api:1")
    ecs.apply(back, aws, topo, run.step(back.kind))
    assert service_td(aws).endswith("orders-api:1")
    # resumed once more (killed after the deploy, before the context said "applied")
    result = ecs.apply(back, aws, topo, run.resumed().step(back.kind))
    assert service_td(aws).endswith("orders-api:1")  # not :0 — there is no "one more"
    assert "orders-api:2 -> orders-api:1" in result.changed


def test_scale_resumed_reports_the_previous_count(aws, moto_server, tmp_path, monkeypatch):
    seed(aws)
    topo = make_topology(tmp_path, moto_server.endpoint_url)
    up = ScaleService(target="orders-ecs", cluster="staging", service="orders-api", desired=3)
    run = Run(tmp_path, up)
    hook = kill_points(monkeypatch)
    ecs.apply(up, aws, topo, run.step("scale"))
    assert "step:scale:scale" in hook.seen
    result = ecs.apply(up, aws, topo, run.resumed().step("scale"))
    assert "2 -> 3" in result.changed and not result.no_op
