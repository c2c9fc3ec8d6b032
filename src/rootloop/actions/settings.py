"""A landing node's settings, read by name.

An action acts through its target's own check (the gates pick it): the DSN of its
PostgreSQL check, the cluster and service of its ECS check. Each skill types its own
settings; this reads one text field from whichever skill the node has, and says plainly
when the map does not give it, instead of an ``AttributeError`` mid-action.
"""

from __future__ import annotations

from rootloop.errors import UserError
from rootloop.models.nodes import Node


def text_setting(node: Node, name: str) -> str:
    value = getattr(node.settings, name, None)
    if not isinstance(value, str) or not value:
        raise UserError(
            f"node '{node.name}' (skill {node.skill}) gives no '{name}' to act with; "
            "set it in the map"
        )
    return value
