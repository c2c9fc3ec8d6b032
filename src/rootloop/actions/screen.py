"""The gates as a screen a reasoner may consult (``rootloop.models.actions.ActionScreen``).

Reasoning sits beside the actions and never imports them; the loop builds this screen
and passes it on ``ReasoningInput.screen``, so the model reasoner can send a refused
proposal back to the model instead of ending the iteration with it. A budget refusal is
not the model's to fix, so it passes the screen (the loop's gate still stops it).
"""

from __future__ import annotations

from rootloop.actions.gates import Gatekeeper
from rootloop.context import DebugContext
from rootloop.models import PriorContext
from rootloop.models.actions import ActionScreen, BaseAction, Refusal
from rootloop.topology import Topology


def gate_screen(topology: Topology, context: DebugContext, prior: PriorContext) -> ActionScreen:
    """Would the gates refuse ``action`` for ``diagnosis_key`` in this run, and why."""
    gatekeeper = Gatekeeper(topology)

    def screen(action: BaseAction, diagnosis_key: str, /) -> Refusal | None:
        decision = gatekeeper.check(action, context, diagnosis_key, prior)
        if decision.decision == "refuse" and decision.gate != "budget":
            return Refusal(gate=decision.gate, reason=decision.reason)
        return None

    return screen
