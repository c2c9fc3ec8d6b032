"""A node's check memory belongs to the node as loaded: never shared between maps."""

from __future__ import annotations

from rootloop.models.nodes import Node


def node() -> Node:
    return Node(
        name="redis",
        type="cache",
        skill="redis",
        role="downstream",
        component="redis",
        service="svc",
        timeout=5.0,
    )


def test_two_nodes_of_the_same_name_have_their_own_memory():
    a, b = node(), node()
    a.memory("redis")["previous"] = 1
    assert b.memory("redis") == {}
    assert a.memory("redis") == {"previous": 1}
    assert a.memory("other-skill") == {}


def test_memory_is_not_part_of_the_nodes_identity():
    a, b = node(), node()
    a.memory("redis")["previous"] = 1
    assert a == b
    assert "memory" not in a.model_dump() and "_memory" not in a.model_dump()
