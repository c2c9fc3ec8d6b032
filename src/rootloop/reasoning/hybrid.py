"""Hybrid reasoning: the rules first, the model where the rules run out.

Why: the rules are deterministic, free and offline, and right for every fault a
signature describes. The model is asked only when they have nothing: no signature
matched, the runbook ladder is exhausted, the fix is code that has to be written,
or the rules' own proposal repeats an action that already failed. The model's own
answer is acted on only when this run's findings back it (``backing``). Whatever comes
out, from either reasoner, passes ``reject_repeats`` before the gate: an action
that already failed for the same diagnosis (in this run or, from memory, an
earlier one) is never proposed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from rootloop.context import DebugContext
from rootloop.errors import PlatformError, UserError
from rootloop.models import PriorContext
from rootloop.models.actions import ApplyPatch
from rootloop.reasoning.backing import refuse_unbacked, without_action
from rootloop.reasoning.base import Proposal, Reasoner, ReasoningInput
from rootloop.reasoning.codefix import CodeFixAgent, CodeFixResult
from rootloop.reasoning.model import ModelConfig, ModelReasoner
from rootloop.reasoning.usage import UsageLedger

ReasonerKind = Literal["rules", "model", "hybrid"]


def reject_repeats(
    proposal: Proposal, context: DebugContext, prior: PriorContext
) -> Proposal | None:
    """The rejection of ``proposal`` if its action already failed for its diagnosis, else None.

    The rejection keeps the diagnosis, drops the action and says which attempt it
    repeats, so the loop escalates (or asks another reasoner) instead of acting.
    """
    action = proposal.action
    if action is None:
        return None
    key, fp = proposal.diagnosis.key, action.fingerprint()
    where = None
    if fp in context.failed_fingerprints(key):
        entry = context.failed_before(action)
        where = f"iteration {entry.iteration} of this run" if entry else "this run"
    else:
        past = next(
            (f for f in prior.failed_actions if f.diagnosis_key == key and f.fingerprint == fp),
            None,
        )
        if past is not None:
            where = f"run {past.run_id}"
    if where is None:
        return None
    reason = f"'{action.describe()}' already failed for {key} ({where}); not repeating it"
    return without_action(proposal, reason, f"rejected: {reason}")


def needs_model(p: Proposal) -> str | None:
    """Why the rules' proposal should go to the model, or None when it stands."""
    reason = (p.escalate_reason or "").lower()
    if p.diagnosis.category == "unknown" or (p.action is None and "no signature" in reason):
        return "no signature matched"
    if "exhausted" in reason:
        return "the runbook ladder is exhausted"
    if isinstance(p.action, ApplyPatch) and not p.action.edits:
        return "the fix is a code change to write"
    return None


class HybridReasoner:
    """Rules first; the model (and the code-fix agent) where the rules run out.

    ``always_model=True`` is the ``model`` reasoner of the CLI: the model answers
    every time (the rules still answer when it fails), with the same code-fix agent
    and the same repeat guard.
    """

    def __init__(
        self,
        rules: Reasoner,
        model: ModelReasoner | Reasoner,
        codefix: CodeFixAgent | None = None,
        *,
        always_model: bool = False,
    ) -> None:
        self.rules = rules
        self.model = model
        self.codefix = codefix
        self.always_model = always_model
        self.name = "model" if always_model else "hybrid"
        self.reads_code = True  # a code fix reads the run's worktree
        self.last_route: str = ""
        self.last_code_fix: CodeFixResult | None = None  # the diff, for the PR body

    @property
    def ledger(self) -> UsageLedger:
        return getattr(self.model, "ledger", None) or UsageLedger()

    async def propose(self, inp: ReasoningInput) -> Proposal:
        self.last_code_fix = None
        if self.always_model:
            why = "the model reasoner is selected"
            first, rejected = None, None
        else:
            first = await self.rules.propose(inp)
            rejected = reject_repeats(first, inp.context, inp.prior)
            reason = needs_model(first) or ("its proposal already failed" if rejected else None)
            if reason is None:
                self.last_route = "rules"
                return first
            why = reason
        self.last_route = f"model ({why})"
        if first is not None and _wants_code(first) and self.codefix is not None:
            self.last_route = "code-fix agent (the rules chose a code change)"
            p = await self._write_code(inp, first)
        elif isinstance(self.model, ModelReasoner):
            p = await self.model.propose(inp, task=_task(why, first))
        else:
            p = await self.model.propose(inp)
        if p.diagnosis.reasoner != self.rules.name:  # the model's own answer: backed or not
            p = refuse_unbacked(p, inp)
        if self.codefix is not None and _wants_code(p):
            p = await self._write_code(inp, p)
        again = reject_repeats(p, inp.context, inp.prior)
        if again is not None:
            return again
        if p.action is None and rejected is not None and not p.escalate_reason:
            return rejected
        note = f"hybrid: model asked because {why}."
        return p.model_copy(update={"rationale": f"{note} {p.rationale}".strip()})

    async def _write_code(self, inp: ReasoningInput, p: Proposal) -> Proposal:
        worktree = inp.extra.get("worktree") or (
            inp.topology.repo.path if inp.topology.repo else None
        )
        if not worktree or self.codefix is None:
            return p.model_copy(
                update={
                    "action": None,
                    "escalate_reason": "a code fix is needed but no worktree is available",
                }
            )
        test_cmd = inp.extra.get("test_command") or (
            inp.topology.repo.test_command if inp.topology.repo else None
        )
        target = p.action.target if p.action is not None else inp.topology.service
        try:
            result = await self.codefix.fix(
                Path(worktree),
                p.diagnosis,
                inp.findings,
                test_command=test_cmd,
                target=target,
                redactor=inp.topology.redactor,
                iteration=inp.context.iteration,
            )
        except PlatformError as exc:
            return p.model_copy(update={"action": None, "escalate_reason": f"code fix: {exc}"})
        if not result.action.edits:
            return p.model_copy(
                update={
                    "action": None,
                    "escalate_reason": f"the code-fix agent produced no edit: {result.summary}",
                }
            )
        self.last_code_fix = result
        return p.model_copy(
            update={"action": result.action, "rationale": f"{p.rationale}\n{result.note()}".strip()}
        )


def _wants_code(p: Proposal) -> bool:
    return isinstance(p.action, ApplyPatch) and not p.action.edits


def _task(why: str, rules: Proposal | None) -> str:
    text = "Name the root cause and propose one action (or none, escalating)."
    if rules is not None:
        text += (
            f" The deterministic rules could not settle this ({why}); their best guess "
            f"was {rules.diagnosis.key}: {rules.diagnosis.summary}."
        )
    return text + (
        " For a code fix, propose an apply-patch with a title and no edits: "
        "a code agent reads the repository and writes the edits."
    )


def build_reasoner(
    kind: ReasonerKind,
    rules: Reasoner,
    config: ModelConfig | None,
    *,
    env: Mapping[str, str] | None = None,
    ledger: UsageLedger | None = None,
) -> Reasoner:
    """What ``--reasoner rules|model|hybrid`` means; ``model``/``hybrid`` need a model."""
    if kind == "rules":
        return rules
    if config is None:
        raise UserError(
            f"--reasoner {kind} needs a model: export ROOTLOOP_MODEL=provider:model "
            "(e.g. anthropic:claude-sonnet-4-5) or add a 'model:' block."
        )
    model = ModelReasoner.from_config(config, fallback=rules, ledger=ledger, env=env)
    codefix = CodeFixAgent(model.model, config=config, ledger=model.ledger)
    return HybridReasoner(rules, model, codefix, always_model=kind == "model")
