"""The gates as an attacker tries them: every case asserts refuse, pause or (for the few
controls) allow. Fast: maps on disk, the gatekeeper in-process, nothing contacted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.gate_support import (
    LAMBDA,
    MIGRATION,
    REDIS,
    RESTART,
    TERMINATE,
    base_map,
    decide,
    load,
    write_map,
)

import rootloop
from rootloop.actions.gates import approval_key, land, refuse_live
from rootloop.actions.types import parse_action
from rootloop.context import DebugContext
from rootloop.errors import ActionRefused, ApprovalRequired, TopologyError

ALL_ACTIONS = [RESTART, REDIS, LAMBDA, TERMINATE]

# -- the environment: an allow-list, whatever production is called ---------------------------

NOT_LOWER = [
    "production",
    "prod",
    "prod-eu",
    "eu-prod",
    "production-us",
    "prod_eu",
    "staging-prod",
    "prd1",
    "live",
    "Prod ",
    " PRODUCTION",
    "Production",
    "ｐｒｏｄ",  # full-width
    "ＰＲＯＤＵＣＴＩＯＮ",
    "prod.eu",
    "eu/prod",
    "pr0d",  # not on the allow-list, whatever it means
    "preprod",
    "pre-production",
    "uat",
    "stg",
    "staging2",
    "stagіng",  # Cyrillic i: not the word 'staging'
    "live-eu",
    "dr",
    "main",
    "",  # written but empty
]


@pytest.mark.parametrize("env", NOT_LOWER)
@pytest.mark.parametrize("action", [RESTART, REDIS], ids=["ecs", "redis"])
def test_an_environment_not_declared_lower_is_refused(tmp_path, env, action):
    if env == "":
        with pytest.raises(TopologyError):
            load(tmp_path, base_map(environment=env))
        return
    d = decide(load(tmp_path, base_map(environment=env)), action)
    assert (d.decision, d.gate, d.level) == ("refuse", "production", "observe"), d.reason


def test_a_map_that_declares_no_environment_is_only_diagnosed(tmp_path):
    d = decide(load(tmp_path, base_map(environment=None)), RESTART)
    assert (d.decision, d.gate) == ("refuse", "production")
    assert "declares no environment" in d.reason


@pytest.mark.parametrize(
    "env", ["staging", "Staging", " staging ", "STAGING", "dev", "lab", "lower", "ｓｔａｇｉｎｇ"]
)
def test_lower_environments_act_however_they_are_written(tmp_path, env):
    d = decide(load(tmp_path, base_map(environment=env)), RESTART)
    assert (d.decision, d.level) == ("allow", "act"), d.reason


@pytest.mark.parametrize(
    ("act_in", "env", "allowed"),
    [
        (["qa-eu"], "QA_EU", True),
        (["qa-eu"], "qa eu", True),
        (["qa-eu"], "staging", False),
        (["production"], "production", False),  # production cannot be declared lower
        (["prod-mirror"], "prod-mirror", False),
        (["nonprod"], "NonProd", True),
        ([], "staging", False),
    ],
)
def test_the_allow_list_is_the_policy_and_never_admits_production(tmp_path, act_in, env, allowed):
    d = decide(load(tmp_path, base_map(environment=env, policy={"act_in": act_in})), RESTART)
    assert d.allowed is allowed, d.reason


def test_the_environment_from_an_env_var_is_judged_after_expansion(tmp_path):
    data = base_map(environment="${DEPLOY_ENV}")
    assert decide(load(tmp_path, data, env={"DEPLOY_ENV": "staging"}), RESTART).allowed
    d = decide(load(tmp_path, data, env={"DEPLOY_ENV": "Prod-EU"}), RESTART)
    assert d.decision == "refuse" and "Prod-EU" in d.reason


# -- names: clusters, services, nodes ------------------------------------------------------------

PRODUCTION_NAMES = [
    "prodcluster",
    "production1",
    "paymentsprod",
    "payments-prod",
    "paymentsProd",
    "payments_prd",
    "prod-main",
    "main-prd",
    "eu1-prod",
    "ProdCluster",
    "PRODUCTION",
    "live",
    "live-payments",
    "productionpayments",
    "payments.production",
    "ｐｒｏｄcluster",  # full-width
    "рrod-main",  # a Cyrillic 'р': cannot be told apart, so it counts as production
    "pro\u200bd-main",  # a zero-width space inside the word
    "nonprod-prod",  # a negation does not cover the next word
]


@pytest.mark.parametrize("name", PRODUCTION_NAMES)
def test_a_production_cluster_name_is_refused_even_in_staging(tmp_path, name):
    topo = load(tmp_path, base_map(cluster=name))
    d = decide(topo, {**RESTART, "cluster": name})
    assert (d.decision, d.gate) == ("refuse", "production"), d.reason


@pytest.mark.parametrize("name", ["paymentsprod", "payments-prod", "prodpayments", "payments_PRD"])
def test_a_production_service_name_is_refused(tmp_path, name):
    topo = load(tmp_path, base_map(service=name))
    d = decide(topo, {**RESTART, "service": name})
    assert (d.decision, d.gate) == ("refuse", "production"), d.reason


@pytest.mark.parametrize(
    "name",
    [
        "staging-cluster",
        "product-catalog",
        "producer",
        "products",
        "lab",
        "reproduce",
        "nonprod-cluster",  # the usual name of a lower AWS account's cluster
        "payments-non-prod",
    ],
)
def test_ordinary_names_are_not_production(tmp_path, name):
    topo = load(tmp_path, base_map(cluster=name))
    assert decide(topo, {**RESTART, "cluster": name}).allowed


@pytest.mark.parametrize("node", ["redis-prod", "prodredis", "cacheprod", "redis-live"])
def test_a_node_named_as_production_in_a_staging_map_is_refused(tmp_path, node):
    data = base_map()
    data["downstream"][1]["name"] = node
    d = decide(load(tmp_path, data), {**REDIS, "target": node})
    assert (d.decision, d.gate) == ("refuse", "production")


def test_a_node_marked_production_is_refused(tmp_path):
    data = base_map()
    data["downstream"][1]["production"] = True
    d = decide(load(tmp_path, data), REDIS)
    assert (d.decision, d.gate) == ("refuse", "production")


def test_the_policy_can_add_a_production_pattern_and_a_bad_one_is_a_map_error(tmp_path):
    data = base_map(cluster="blue-main", policy={"production_name_pattern": r"blue"})
    assert decide(load(tmp_path, data), {**RESTART, "cluster": "blue-main"}).decision == "refuse"
    with pytest.raises(TopologyError, match="production_name_pattern"):
        load(tmp_path, base_map(policy={"production_name_pattern": "(unclosed"}))


# -- tags: any casing of the usual keys -----------------------------------------------------------

PRODUCTION_TAGS = [
    {"Environment": "Production"},
    {"ENVIRONMENT": "PRODUCTION"},
    {"environment": "prod"},
    {"env": "prod"},
    {"Env": "PROD"},
    {"stage": "prod"},
    {"Stage": "production"},
    {"tier": "production"},
    {"Tier": "Prod"},
    {"environment": "live"},
    {"environment": "prod-eu"},
    {"environment": "uat"},  # an environment key must name a lower environment
    {"Name": "payments-prod"},
    {"production": "true"},
    {"IsProd": "yes"},
    {"deployment-environment": "production"},
    {"aws:environment": "prod"},
    {"deployment_stage": "production"},
    {"EnvType": "prod"},
    {"Environment ": "Prod"},
]


@pytest.mark.parametrize(
    "tags", PRODUCTION_TAGS, ids=lambda t: ",".join(f"{k}={v}" for k, v in t.items())
)
def test_production_tags_on_the_node_are_refused(tmp_path, tags):
    data = base_map()
    data["downstream"][1]["tags"] = tags
    d = decide(load(tmp_path, data), REDIS)
    assert (d.decision, d.gate) == ("refuse", "production"), d.reason


@pytest.mark.parametrize(
    "tags", PRODUCTION_TAGS, ids=lambda t: ",".join(f"{k}={v}" for k, v in t.items())
)
def test_production_tags_on_the_live_resource_are_refused(tmp_path, tags):
    topo = load(tmp_path, base_map())
    with pytest.raises(ActionRefused) as err:
        refuse_live(topo, parse_action(RESTART), [("ECS service", "payments-api", tags)])
    assert err.value.gate == "production"


@pytest.mark.parametrize(
    "tags",
    [
        {"Environment": "staging"},
        {"env": "Dev"},
        {"team": "product"},
        {"tier": "web"},
        {"NonProd": "true"},
    ],
)
def test_lower_tags_pass(tmp_path, tags):
    topo = load(tmp_path, base_map())
    refuse_live(topo, parse_action(RESTART), [("ECS service", "payments-api", tags)])


# -- child maps: a node keeps its own map's environment and policy; stricter wins ------------


def child_maps(tmp_path: Path, child_env: str, parent_env: str = "staging", **child_policy: Any):
    child = base_map(environment=child_env, policy=child_policy or None)
    child["service"] = "ledger"
    child["self"]["compute"]["service"] = "ledger"
    child["downstream"] = [
        {"name": "ledger-cache", "type": "cache", "skill": "redis", "url": "redis://127.0.0.1:9/1"}
    ]
    write_map(tmp_path, child, "ledger.yaml")
    parent = base_map(environment=parent_env)
    parent["downstream"].append(
        {
            "name": "ledger",
            "type": "http",
            "skill": "http-health",
            "url": "http://127.0.0.1:9/ledger",
            "map": "ledger.yaml",
        }
    )
    return load(tmp_path, parent)


CHILD_CACHE = {**REDIS, "target": "ledger-cache"}
CHILD_RESTART = {**RESTART, "target": "ledger", "service": "ledger"}


@pytest.mark.parametrize("child_env", ["production", "prod-eu", "live", "undeclared-x"])
@pytest.mark.parametrize("action", [CHILD_CACHE, CHILD_RESTART], ids=["cache", "restart"])
def test_a_production_child_map_is_refused_from_a_staging_parent(tmp_path, child_env, action):
    topo = child_maps(tmp_path, child_env)
    d = decide(topo, action)
    assert (d.decision, d.gate) == ("refuse", "production"), d.reason
    assert decide(topo, REDIS).allowed  # the parent's own nodes still act


def test_a_lower_child_under_a_production_parent_is_refused(tmp_path):
    d = decide(child_maps(tmp_path, "staging", parent_env="production"), CHILD_CACHE)
    assert (d.decision, d.gate) == ("refuse", "production")


def test_the_stricter_allow_list_wins(tmp_path):
    topo = child_maps(tmp_path, "staging", act_in=["dev"])
    assert decide(topo, CHILD_CACHE).decision == "refuse"
    assert decide(topo, REDIS).allowed


@pytest.mark.parametrize(("level", "decision"), [("observe", "refuse"), ("propose", "approval")])
def test_a_child_maps_autonomy_holds_for_its_nodes(tmp_path, level, decision):
    topo = child_maps(tmp_path, "staging", autonomy=level)
    d = decide(topo, CHILD_CACHE)
    assert (d.decision, d.gate, d.level) == (decision, "autonomy", level)
    assert decide(topo, REDIS).allowed


# -- the target: an action acts on its own node's resources, nothing else ---------------------

MISMATCHES = [
    {**REDIS, "target": "payments-api"},  # the case: no redis on the service
    {**REDIS, "target": "postgresql"},
    {**RESTART, "cluster": "other"},
    {**RESTART, "service": "notification-svc"},
    {**RESTART, "target": "redis"},
    {**LAMBDA, "function_name": "another-function"},
    {**LAMBDA, "target": "payments-api"},
    {**TERMINATE, "target": "redis"},
    {**MIGRATION, "target": "redis"},
    {**REDIS, "target": "no-such-node"},
    {"kind": "revert-commit", "target": "redis", "commit": "abc1234"},
    {
        "kind": "apply-patch",
        "target": "postgresql",
        "title": "t",
        "edits": [{"path": "a.py", "search": "a", "replace": "b"}],
    },
]


@pytest.mark.parametrize("action", MISMATCHES, ids=lambda a: f"{a['kind']}->{a['target']}")
def test_an_action_on_another_nodes_resource_is_refused(tmp_path, action):
    d = decide(load(tmp_path, base_map()), action)
    assert (d.decision, d.gate) == ("refuse", "target"), d.reason


def test_the_target_is_never_replaced_by_a_production_node_with_the_skill(tmp_path):
    data = base_map()
    data["downstream"][1]["production"] = True  # the only redis is production
    topo = load(tmp_path, data)
    d = decide(topo, {**REDIS, "target": "payments-api"})
    assert d.decision == "refuse"
    with pytest.raises(ActionRefused):
        land(topo, parse_action({**REDIS, "target": "payments-api"}), DebugContext(service="p"))


@pytest.mark.parametrize("action", ALL_ACTIONS, ids=lambda a: a["kind"])
def test_each_action_kind_is_allowed_on_its_own_node_in_staging(tmp_path, action):
    assert decide(load(tmp_path, base_map()), action).allowed


def test_arns_compare_with_names(tmp_path):
    topo = load(tmp_path, base_map())
    arn = "arn:aws:ecs:us-east-1:123456789012:cluster/staging"
    assert decide(topo, {**RESTART, "cluster": arn}).allowed
    fn = "arn:aws:lambda:us-east-1:123456789012:function:payments-worker"
    assert decide(topo, {**LAMBDA, "function_name": fn}).allowed


# -- autonomy levels -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("autonomy", "action", "expected"),
    [
        ("observe", RESTART, ("refuse", "autonomy", "observe")),
        ("propose", RESTART, ("approval", "autonomy", "propose")),
        ("act", RESTART, ("allow", "", "act")),
        (
            {"rules": [{"action": "restart", "level": "observe"}]},
            RESTART,
            ("refuse", "autonomy", "observe"),
        ),
        ({"rules": [{"action": "restart", "level": "observe"}]}, REDIS, ("allow", "", "act")),
        (
            {"rules": [{"action": "infra", "level": "propose"}]},
            REDIS,
            ("approval", "autonomy", "propose"),
        ),
        (
            {"rules": [{"environment": "Staging", "level": "propose"}]},
            REDIS,
            ("approval", "autonomy", "propose"),
        ),
        ({"rules": [{"environment": "dev", "level": "observe"}]}, REDIS, ("allow", "", "act")),
        (
            {
                "default": "observe",
                "rules": [{"environment": "staging", "action": "set-redis-policy", "level": "act"}],
            },
            REDIS,
            ("allow", "", "act"),
        ),
        (
            {
                "rules": [
                    {"action": "set-redis-policy", "level": "act"},
                    {"action": "set-redis-policy", "level": "propose"},
                ]
            },
            REDIS,
            ("approval", "autonomy", "propose"),  # equally specific: the stricter wins
        ),
    ],
)
def test_autonomy_levels_per_environment_and_action(tmp_path, autonomy, action, expected):
    d = decide(load(tmp_path, base_map(policy={"autonomy": autonomy})), action)
    assert (d.decision, d.gate, d.level) == expected, d.reason


def test_propose_waits_for_an_approval_of_that_action_then_allows(tmp_path):
    topo = load(tmp_path, base_map(policy={"autonomy": "propose"}))
    ctx = DebugContext(service="payments-api")
    assert decide(topo, REDIS, ctx).decision == "approval"
    ctx.approvals.append(approval_key("autonomy", parse_action(REDIS)))
    assert decide(topo, REDIS, ctx).allowed
    assert decide(topo, {**REDIS, "policy": "volatile-lru"}, ctx).decision == "approval"


def test_act_is_never_granted_outside_a_lower_environment(tmp_path):
    data = base_map(environment="production", policy={"autonomy": "act"})
    assert decide(load(tmp_path, data), REDIS).level == "observe"


@pytest.mark.parametrize("bad", [{"rules": [{"action": "restrat", "level": "act"}]}, "yolo"])
def test_a_bad_autonomy_policy_is_a_map_error(tmp_path, bad):
    with pytest.raises(TopologyError) as err:
        load(tmp_path, base_map(policy={"autonomy": bad}))
    assert "autonomy" in str(err.value)


# -- approvals do not outlive the map ------------------------------------------------------------


def test_an_approved_schema_change_is_refused_when_the_environment_became_production(tmp_path):
    data = base_map(environment="${DEPLOY_ENV}")
    migration = parse_action(MIGRATION)
    ctx = DebugContext(service="payments-api")
    staging = load(tmp_path, data, env={"DEPLOY_ENV": "staging"})
    with pytest.raises(ApprovalRequired):
        land(staging, migration, ctx)
    ctx.approvals.append(approval_key("schema", migration))
    assert land(staging, migration, ctx) is not None
    production = load(tmp_path, data, env={"DEPLOY_ENV": "production"})
    with pytest.raises(ActionRefused) as err:
        land(production, migration, ctx)
    assert err.value.gate == "production"


def test_an_approval_of_one_action_does_not_cover_another(tmp_path):
    topo = load(tmp_path, base_map())
    ctx = DebugContext(service="payments-api")
    ctx.approvals.append(approval_key("schema", parse_action(MIGRATION)))
    other = {**MIGRATION, "sql": "DROP TABLE payments"}
    with pytest.raises(ApprovalRequired):
        land(topo, parse_action(other), ctx)


# -- AWS accounts --------------------------------------------------------------------------------


def test_accounts_must_be_account_ids(tmp_path):
    with pytest.raises(TopologyError, match="aws_accounts"):
        load(tmp_path, base_map(policy={"aws_accounts": ["prod"]}))


def test_the_stricter_account_list_wins(tmp_path):
    parent = load(tmp_path, base_map(policy={"aws_accounts": ["111111111111", "222222222222"]}))
    assert parent.aws_accounts_for("payments-api") == ["111111111111", "222222222222"]
    assert load(tmp_path, base_map()).aws_accounts_for("payments-api") is None


def test_aws_actions_say_the_account_is_checked_when_acting(tmp_path):
    topo = load(tmp_path, base_map(policy={"aws_accounts": ["111111111111"]}))
    d = decide(topo, RESTART)
    assert d.allowed and any("111111111111" in x for x in d.deferred)


def test_an_arn_in_another_account_is_refused_when_accounts_are_listed(tmp_path):
    topo = load(tmp_path, base_map(policy={"aws_accounts": ["111111111111"]}))
    other = "arn:aws:ecs:us-east-1:999999999999:cluster/staging"
    d = decide(topo, {**RESTART, "cluster": other})
    assert (d.decision, d.gate) == ("refuse", "production") and "999999999999" in d.reason
    own = "arn:aws:ecs:us-east-1:111111111111:cluster/staging"
    assert decide(topo, {**RESTART, "cluster": own}).allowed


@pytest.mark.parametrize("child_first", [True, False])
def test_a_child_map_cannot_unmark_its_parents_production_node(tmp_path, child_first):
    (tmp_path / "ledger.yaml").write_text(
        "service: ledger\nenvironment: staging\ndownstream:\n"
        "  - {name: redis, type: cache, skill: redis, url: 'redis://127.0.0.1:9/0'}\n",
        encoding="utf-8",
    )
    data = base_map()
    data["downstream"][1]["production"] = True  # the parent's redis is production
    child = {
        "name": "ledger",
        "type": "http",
        "skill": "http-health",
        "url": "http://127.0.0.1:9/",
        "map": "ledger.yaml",
    }
    data["downstream"].insert(0 if child_first else len(data["downstream"]), child)
    d = decide(load(tmp_path, data), REDIS)
    assert (d.decision, d.gate) == ("refuse", "production"), d.reason


def test_a_compute_check_without_a_service_names_the_services_own(tmp_path):
    data = base_map()
    del data["self"]["compute"]["service"]  # the seed's style: the node's name is the service
    topo = load(tmp_path, data)
    assert decide(topo, RESTART).allowed
    assert decide(topo, {**RESTART, "service": "payments-api-compute"}).gate == "target"


@pytest.mark.parametrize(
    "self_mark",
    [{"production": True}, {"tags": {"Environment": "Production"}}, {"tags": {"env": "prd"}}],
)
def test_the_service_itself_marked_production_refuses_its_own_actions(tmp_path, self_mark):
    data = base_map()
    data["self"].update(self_mark)
    d = decide(load(tmp_path, data), RESTART)
    assert (d.decision, d.gate) == ("refuse", "production"), d.reason
    assert decide(load(tmp_path, data), REDIS).allowed  # its dependencies are not


def test_unquoted_account_ids_load_and_lost_leading_zeros_are_an_error(tmp_path):
    path = write_map(tmp_path, base_map())
    text = path.read_text()
    path.write_text(text + "policy: {aws_accounts: [111111111111]}\n")
    assert rootloop.load_map(path).aws_accounts_for("payments-api") == ["111111111111"]
    path.write_text(text + "policy: {aws_accounts: [011111111111]}\n")  # YAML: octal
    with pytest.raises(TopologyError, match="quotes"):
        rootloop.load_map(path)
