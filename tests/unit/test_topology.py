import json
from pathlib import Path

import pytest

import rootloop
from rootloop.errors import TopologyError

EXAMPLES = Path(__file__).parents[2] / "examples"
ENV = {"PG_DSN": "postgresql://app:s3cretpw@127.0.0.1:5432/app", "REDIS_URL": "redis://x:1/0"}


def write(tmp_path: Path, text: str, name: str = "map.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def error_of(path: Path, env: dict[str, str] | None = None) -> TopologyError:
    with pytest.raises(TopologyError) as info:
        rootloop.load_map(path, env=env if env is not None else ENV)
    return info.value


def test_the_seed_json_loads_as_it_is():
    topo = rootloop.load_map(EXAMPLES / "seed-topology.json", env={})
    assert topo.service == "payments-api"
    assert set(topo.graph.successors("payments-api")) == {
        "postgresql",
        "redis",
        "sqs-payments",
        "lambda-worker",
        "notification-svc",
    }
    assert set(topo.graph.predecessors("payments-api")) == {"api-gateway", "frontend-app"}
    gw = topo.nodes["api-gateway"]
    assert (gw.role, gw.skill) == ("upstream", "http-health")
    assert gw.settings.target == "http://api-gateway/health"


def test_the_example_map_resolves_env_vars_and_registers_secrets():
    topo = rootloop.load_map(EXAMPLES / "payments-api" / "rootloop.yaml", env=ENV)
    assert topo.nodes["postgresql"].settings.dsn == ENV["PG_DSN"]
    assert topo.nodes["payments-api/health"].role == "self"
    assert topo.nodes["payments-api/health"].component == "payments-api"
    assert topo.redactor.text(f"dsn is {ENV['PG_DSN']}") == "dsn is ***"


def test_missing_env_var_names_the_variable_and_the_field(tmp_path):
    err = error_of(EXAMPLES / "payments-api" / "rootloop.yaml", env={"REDIS_URL": "r"})
    assert "PG_DSN" in str(err)
    assert err.field == "downstream[0].dsn"
    assert "export PG_DSN" in str(err)


def test_yaml_syntax_error_gives_line(tmp_path):
    err = error_of(write(tmp_path, "service: a\nupstream: [\n  - name: x\n"))
    assert "line" in err.field and "invalid YAML" in str(err)


def test_json_syntax_error_gives_line_and_column(tmp_path):
    err = error_of(write(tmp_path, '{"service": "a",}', "m.json"))
    assert err.field.startswith("line 1 column")


def test_missing_service(tmp_path):
    err = error_of(write(tmp_path, "upstream: []\n"))
    assert err.field == "service" and "required" in str(err)


def test_unknown_skill_suggests_the_closest(tmp_path):
    err = error_of(
        write(tmp_path, "service: a\ndownstream:\n  - {name: db, type: db, skill: postgress}\n")
    )
    assert err.field == "downstream[0] (db).skill"
    assert "did you mean 'postgres'" in str(err)


def test_typo_in_node_setting_is_named_with_a_suggestion(tmp_path):
    err = error_of(
        write(
            tmp_path,
            "service: a\ndownstream:\n"
            "  - {name: n, type: http, skill: http-health,\n"
            "     url: 'http://127.0.0.1:1', pathh: /h}\n",
        )
    )
    assert err.field == "downstream[0] (n).pathh"
    assert "did you mean 'path'" in str(err)


def test_typo_in_top_level_field(tmp_path):
    err = error_of(write(tmp_path, "service: a\ndownstreams: []\n"))
    assert err.field == "downstreams"
    assert "did you mean 'downstream'" in str(err)


def test_wrong_type_says_what_was_expected(tmp_path):
    err = error_of(write(tmp_path, "service: a\npolicy: {max_iterations: lots}\n"))
    assert err.field == "policy.max_iterations"
    assert "integer" in str(err) and "'lots'" in str(err)


def test_literal_password_in_url_is_refused(tmp_path):
    err = error_of(
        write(
            tmp_path,
            "service: a\ndownstream:\n"
            "  - {name: db, type: db, skill: postgres,\n"
            "     dsn: 'postgresql://u:hunter2@h/db'}\n",
        )
    )
    assert err.field == "downstream[0].dsn"
    assert "literal password" in str(err)
    assert "hunter2" not in str(err)


def test_literal_secret_key_is_refused(tmp_path):
    err = error_of(
        write(
            tmp_path,
            "service: a\ndownstream:\n"
            "  - {name: n, type: http, skill: http-health,\n"
            "     url: 'http://127.0.0.1:1', token: abc123}\n",
        )
    )
    assert "token" in err.field and "secrets must not be written" in str(err)


def test_bad_node_name(tmp_path):
    err = error_of(
        write(
            tmp_path,
            "service: a\nupstream:\n  - {name: 'bad name!', type: http, skill: http-health}\n",
        )
    )
    assert err.field.startswith("upstream[0]") and "valid name" in str(err)


def test_maps_that_include_each_other_are_a_cycle(tmp_path):
    write(
        tmp_path,
        "service: a\ndownstream:\n  - {name: b, type: svc, skill: http-health,"
        " url: 'http://127.0.0.1:1', map: b.yaml}\n",
        "a.yaml",
    )
    write(
        tmp_path,
        "service: b\ndownstream:\n  - {name: a, type: svc, skill: http-health,"
        " url: 'http://127.0.0.1:1', map: a.yaml}\n",
        "b.yaml",
    )
    err = error_of(tmp_path / "a.yaml")
    assert "cycle" in str(err)


def test_call_graph_cycle_without_map_recursion(tmp_path):
    write(
        tmp_path,
        "service: a\ndownstream:\n  - {name: b, type: svc, skill: http-health,"
        " url: 'http://127.0.0.1:1', map: b.yaml}\n",
        "a.yaml",
    )
    write(
        tmp_path,
        "service: b\ndownstream:\n  - {name: c, type: svc, skill: http-health,"
        " url: 'http://127.0.0.1:1'}\n"
        "upstream: []\n",
        "b.yaml",
    )
    write(tmp_path, "service: c\n", "c.yaml")
    topo = rootloop.load_map(tmp_path / "a.yaml", env={})
    assert list(topo.graph.edges) == [("a", "b"), ("b", "c")]
    write(
        tmp_path,
        "service: b\ndownstream:\n  - {name: a, type: svc, skill: http-health,"
        " url: 'http://127.0.0.1:1'}\n",
        "b.yaml",
    )
    err = error_of(tmp_path / "a.yaml", env={})
    assert "has a cycle: a -> b -> a" in str(err)


def test_multi_hop_map_spans_services(tmp_path):
    write(
        tmp_path,
        "service: api\ndownstream:\n"
        "  - {name: worker, type: compute, skill: http-health,"
        " url: 'http://127.0.0.1:1', map: worker.yaml}\n",
        "api.yaml",
    )
    write(
        tmp_path,
        "service: worker\ndownstream:\n"
        "  - {name: db, type: db, skill: postgres, dsn: '${PG_DSN}'}\n"
        "self:\n  health: {skill: http-health, url: 'http://127.0.0.1:2'}\n",
        "worker.yaml",
    )
    topo = rootloop.load_map(tmp_path / "api.yaml", env=ENV)
    assert topo.graph.has_edge("api", "worker") and topo.graph.has_edge("worker", "db")
    assert topo.nodes["db"].service == "worker"
    assert topo.nodes["worker/health"].component == "worker"
    assert set(topo.files) == {"api", "worker"}


def test_map_pointing_at_another_service_is_an_error(tmp_path):
    write(
        tmp_path,
        "service: api\ndownstream:\n"
        "  - {name: worker, type: compute, skill: http-health,"
        " url: 'http://127.0.0.1:1', map: other.yaml}\n",
        "api.yaml",
    )
    write(tmp_path, "service: other\n", "other.yaml")
    err = error_of(tmp_path / "api.yaml")
    assert err.field == "downstream[0].map" and "'other'" in str(err)


def test_missing_map_file(tmp_path):
    err = error_of(tmp_path / "nope.yaml")
    assert "does not exist" in str(err)


def test_production_by_environment_tag_or_name(tmp_path):
    p = write(tmp_path, "service: a\nenvironment: lower\n")
    topo = rootloop.load_map(p, env={})
    assert not topo.is_production_env
    assert topo.is_production_resource("payments-api-prod")
    assert topo.is_production_resource("prod.payments")
    assert not topo.is_production_resource("product-catalog")
    assert topo.is_production_resource("x", {"environment": "Production"})
    assert not topo.is_production_resource("x", {"environment": "staging"})
    p = write(tmp_path, json.dumps({"service": "a", "environment": "production"}), "p.json")
    assert rootloop.load_map(p, env={}).is_production_resource("anything")
