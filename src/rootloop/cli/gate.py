"""``rootloop gate``: what the gates would decide for one action, without acting.

For people ("would rootloop touch this?") and for tests and outside catalogues of
cases: the map is loaded and validated, the action parsed as rootloop's action types
serialise it, and the gatekeeper asked. Nothing is contacted: what only the live
resource can tell (its AWS account, its own tags) is listed under ``deferred`` and is
checked again by the executor at the moment of acting.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from rootloop import topology
from rootloop.actions.gates import Gatekeeper
from rootloop.context import DebugContext
from rootloop.errors import UserError
from rootloop.models.actions import parse_action
from rootloop.policy import known_kinds
from rootloop.skills import registry

#: the word the gatekeeper uses -> the word people and catalogues read
SHOWN = {"allow": "allow", "approval": "pause", "refuse": "refuse"}


def read_action(text: str) -> dict[str, Any]:
    """The action JSON (inline, ``@file`` or ``-`` for stdin), as a mapping; a UserError
    says what is wrong."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--action {text}: cannot read the file ({exc}).") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise UserError(
            f"--action is not valid JSON{where}: {getattr(exc, 'msg', 'nested too deeply')}. "
            'Write an action such as {"kind": "restart", "target": "payments-api", '
            '"cluster": "staging", "service": "payments-api"}.'
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"--action must be a JSON object, got {type(data).__name__}.")
    return data


def parse(data: dict[str, Any]) -> Any:
    kind = data.get("kind")
    kinds = known_kinds()
    if kind not in kinds:
        raise UserError(f"--action: unknown kind {kind!r}. Known kinds: {', '.join(kinds)}.")
    try:
        return parse_action(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "(action)"
        raise UserError(
            f"--action ({kind}): field '{where}': {first['msg']}"
            + (f" ({len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else "")
            + "."
        ) from None


def gate(
    topology_file: Annotated[
        Path, typer.Option("--topology", "-t", help="The service map (YAML or JSON).")
    ] = Path("rootloop.yaml"),
    action: Annotated[
        str,
        typer.Option(
            "--action",
            help='The action as JSON, e.g. {"kind": "restart", "target": "payments-api", '
            '"cluster": "staging", "service": "payments-api"}; or @file.json, or - for stdin.',
        ),
    ] = "",
) -> None:
    """Ask the gates about one action and print their decision as JSON; nothing is acted on.

    decision is allow, pause (a human must approve first) or refuse; gate names the gate
    that decided; level is the autonomy level (observe / propose / act) that applied.
    """
    if not action:
        raise UserError("--action is required: the action to ask the gates about, as JSON.")
    parsed = parse(read_action(action))
    topo = topology.load(topology_file, skills=registry)
    ctx = DebugContext(service=topo.service, environment=topo.environment, run_id="dry-run")
    decision = Gatekeeper(topo).policy_check(parsed, ctx)
    component = topo.nodes[parsed.target].component if parsed.target in topo.nodes else None
    out = {
        "decision": SHOWN[decision.decision],
        "gate": decision.gate or None,
        "reason": topo.redactor.text(decision.reason) if decision.reason else "allowed",
        "level": decision.level or None,
        "action": parsed.kind,
        "target": parsed.target,
        "environment": topo.environment,
        "environments": sorted({s.environment for s in topo.scopes_of(component or parsed.target)}),
        "deferred": list(decision.deferred),
    }
    print(json.dumps(out, ensure_ascii=False))
