"""The ``Reasoner`` interface shared by the rules and the model reasoners."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from rootloop.context import DebugContext
from rootloop.models import Diagnosis, Finding, PriorContext
from rootloop.models.actions import Action, ActionScreen
from rootloop.topology import Topology

if TYPE_CHECKING:  # pydantic-ai's messages: imported only by the reasoners that call a model
    from rootloop.reasoning.usage import UsageLedger


@dataclass
class ReasoningInput:
    topology: Topology
    findings: list[Finding]
    context: DebugContext
    prior: PriorContext = field(default_factory=PriorContext)
    extra: dict[str, Any] = field(default_factory=dict)
    #: the gates' verdict on a proposal, handed in by the loop (reasoning never imports
    #: the gates); None: nothing to screen with, the loop's gate check still decides
    screen: ActionScreen | None = None


class Proposal(BaseModel):
    """A diagnosis and what to do about it. ``action`` None means: hand over to a human."""

    diagnosis: Diagnosis
    action: Action | None = None
    rationale: str = ""
    escalate_reason: str | None = None
    rung: str | None = None  # the runbook rung it comes from, e.g. "payments-api#oom[0]"


class Reasoner(Protocol):
    """What the loop asks of a reasoner: a proposal, and two facts about itself.

    ``ledger`` is the model usage (tokens, cost) so far, recorded into the debug context
    after each proposal; None for a reasoner that calls no model. ``reads_code`` says the
    reasoner may write a code fix, so the loop opens the run's worktree (the deployed
    code) and hands its path over in ``ReasoningInput.extra`` before asking.
    """

    name: str

    @property
    def ledger(self) -> UsageLedger | None: ...

    @property
    def reads_code(self) -> bool: ...

    async def propose(self, inp: ReasoningInput) -> Proposal: ...
