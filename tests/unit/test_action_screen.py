"""The gate screen the loop hands to reasoning: the gates' refusal, as data."""

from __future__ import annotations

from tests.unit.gate_support import RESTART, base_map, load

from rootloop.actions.screen import gate_screen
from rootloop.context import DebugContext
from rootloop.models import PriorContext
from rootloop.models.actions import Refusal, parse_action


def test_the_screen_passes_what_the_gates_allow_and_names_the_gate_that_refuses(tmp_path):
    staging = load(tmp_path, base_map())
    ctx = DebugContext(service="payments-api")
    assert gate_screen(staging, ctx, PriorContext())(parse_action(RESTART), "x:oom") is None

    production = load(tmp_path, base_map(environment="production"))
    refusal = gate_screen(production, ctx, PriorContext())(parse_action(RESTART), "x:oom")
    assert isinstance(refusal, Refusal) and refusal.gate == "production" and refusal.reason
