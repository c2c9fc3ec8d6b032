"""Is a model's proposal backed by this run's findings? If not, it is never acted on.

Why a check of its own, beyond the gates: the gates say whether an action is
*allowed* (environment, approvals, budget); they cannot say whether it is *right*.
A model — a weak local one above all — answers in valid JSON with a confident,
wrong diagnosis, or repeats an instruction it read in a log line. So a model's
action is taken only when the proposal stands on what this run observed:

- it names the map's components (the root cause, and the action aimed at it);
- its evidence is quoted from this run's unhealthy findings, not invented;
- where a rules signature covers its category, that signature matches at that
  component in the same findings (the rules' definition of the category is the
  precondition the model must meet too);
- it never calls the service healthy while a finding says otherwise.

The checks read only the proposal and the findings (no I/O). Each returns the
reason in words, which the model gets back as a retry and the report keeps.
"""

from __future__ import annotations

import re

from rootloop.models import Finding, Status
from rootloop.reasoning import categories as cat
from rootloop.reasoning.base import Proposal, ReasoningInput
from rootloop.reasoning.signatures import match, text_of

UNHEALTHY = (Status.DEGRADED, Status.CRITICAL, Status.UNREACHABLE)
# The categories a rules signature defines (UNKNOWN is the absence of one).
SIGNATURE_CATEGORIES = frozenset(c for c in cat.ALL if c != cat.UNKNOWN)
# A citation is a fragment of an observation, not a lone word that occurs anywhere.
MIN_CITATION_WORDS = 2
_WORD = re.compile(r"\w+")


def known_components(inp: ReasoningInput) -> set[str]:
    topo = inp.topology
    return set(topo.graph.nodes) | set(topo.nodes) | {topo.service}


def component_of(name: str, inp: ReasoningInput) -> str:
    """The map component a name stands for: check ``payments-api/health`` → ``payments-api``."""
    node = inp.topology.nodes.get(name)
    return node.component if node else name


def false_health_reason(p: Proposal, inp: ReasoningInput) -> str | None:
    """A 'healthy' diagnosis while a finding is unhealthy would end the run as fixed."""
    if p.diagnosis.category != "healthy":
        return None
    bad = sorted({f.node for f in inp.findings if f.status in UNHEALTHY})
    if not bad:
        return None
    return f"category 'healthy' contradicts this run's findings: unhealthy {', '.join(bad[:5])}"


def unbacked_reason(p: Proposal, inp: ReasoningInput) -> str | None:
    """Why the proposal's action must not be taken, or None when the findings back it."""
    action, d = p.action, p.diagnosis
    if action is None:
        return None
    unhealthy = [f for f in inp.findings if f.status in UNHEALTHY]
    if not unhealthy:
        return "no finding of this run is unhealthy: there is nothing to act on"
    known = known_components(inp)
    if d.root_cause not in known:
        return f"root cause '{d.root_cause}' is not a node of the map"
    if d.category in (cat.UNKNOWN, "healthy") or not d.category.strip():
        return f"category '{d.category}' names no fault to act on"
    if component_of(action.target, inp) != component_of(d.root_cause, inp):
        return (
            f"the action targets '{action.target}' but the diagnosis names "
            f"'{d.root_cause}': an action must act on the root cause it claims"
        )
    reason = citation_reason(d.evidence, unhealthy)
    if reason:
        return reason
    return signature_reason(d.root_cause, d.category, inp)


def citation_reason(cited: list[str], unhealthy: list[Finding]) -> str | None:
    """Every citation must be quoted from an unhealthy finding of this run."""
    quotes = [c for c in cited if c.strip()]
    if not quotes:
        return "the diagnosis cites no evidence: quote lines from this run's findings"
    corpus = _norm("\n".join(text_of(f) + "\n" + (f.error or "") for f in unhealthy))
    for quote in quotes:
        if len(_WORD.findall(quote)) < MIN_CITATION_WORDS:
            return f"evidence {quote[:80]!r} is too short to identify an observation"
        if _norm(quote) not in corpus:
            return f"evidence {quote[:120]!r} does not occur in this run's unhealthy findings"
    return None


def signature_reason(root_cause: str, category: str, inp: ReasoningInput) -> str | None:
    """Where a rules signature defines ``category``, it must match at ``root_cause``.

    The one place the model's diagnosis meets the rules' definitions: signature
    preconditions (when signatures carry them) belong here.
    """
    if category not in SIGNATURE_CATEGORIES:
        return None
    component = component_of(root_cause, inp)
    hits = match(inp.findings, inp.topology)
    if any(h.category == category and h.component == component for h in hits):
        return None
    seen = sorted({f"{h.component}:{h.category}" for h in hits})
    return (
        f"the {category} signature does not match at {component} in this run's findings"
        f" (signatures that match: {', '.join(seen) or 'none'})"
    )


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def refuse_unbacked(p: Proposal, inp: ReasoningInput) -> Proposal:
    """The proposal, or its refusal: no action and the reason, when the findings do not back it.

    The last line of defence for any model-made proposal (whatever reasoner made it): a
    false "healthy" becomes "unknown" (the loop would end the run as fixed), and an
    unbacked action is dropped, so the loop escalates and says why.
    """
    healthy = false_health_reason(p, inp)
    if healthy:
        diag = p.diagnosis.model_copy(
            update={"category": cat.UNKNOWN, "summary": "the model's 'healthy' is contradicted"}
        )
        reason = f"not acting on the model's proposal: {healthy}"
        return p.model_copy(update={"diagnosis": diag, "action": None, "escalate_reason": reason})
    why = unbacked_reason(p, inp)
    if why is None:
        return p
    return without_action(p, f"not acting on the model's proposal: {why}", f"refused: {why}")


def without_action(p: Proposal, reason: str, note: str) -> Proposal:
    """``p`` with its action dropped: the loop escalates with ``reason``; ``note`` goes on
    the rationale, so the reader sees what was dropped and why."""
    return p.model_copy(
        update={
            "action": None,
            "escalate_reason": reason,
            "rationale": f"{p.rationale} [{note}]".strip(),
        }
    )
