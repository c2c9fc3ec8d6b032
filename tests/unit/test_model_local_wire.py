"""What goes over the wire to a local OpenAI-compatible server, and what comes back.

Over real HTTP to a recorded-reply server on 127.0.0.1 (no model): the request names
the output tool (servers that ignore ``tool_choice="required"``, such as llama.cpp's
Python server, then constrain the answer to the schema); a weak model's answers —
a wordless summary, a "healthy" claim during an outage, a confident unbacked
diagnosis — are sent back with the reason and end in the fallback; the tokens in
the ledger are the server's own usage numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.test_model_wire import PROPOSAL, chat_server, ok, reasoner, tool_call
from tests.unit.test_model_support import TERMINATE, make_input

__all__ = ["chat_server"]


def answer(**diagnosis: Any) -> dict[str, Any]:
    return ok(
        tool_call(json.dumps({**PROPOSAL, "diagnosis": {**PROPOSAL["diagnosis"], **diagnosis}}))
    )


async def test_the_request_names_the_output_tool(chat_server: Any, tmp_path: Path) -> None:
    server = chat_server(ok(tool_call(json.dumps(PROPOSAL))))
    r, _ = reasoner(server.url, max_output_tokens=300, temperature=0)
    await r.propose(make_input(tmp_path))
    req = server.requests[0]
    assert req["tool_choice"] == {"type": "function", "function": {"name": "final_result"}}
    assert 300 in (req.get("max_tokens"), req.get("max_completion_tokens"))
    assert req["temperature"] == 0


async def test_weak_answers_are_refused_with_reasons_then_fall_back(
    chat_server: Any, tmp_path: Path
) -> None:
    server = chat_server(
        answer(summary="0 " * 200),  # a run of zeros
        answer(category="healthy", summary="all systems are fine"),  # during an outage
        answer(category="cache-full", evidence=["redis is full of keys"]),  # unbacked
    )
    r, fallback = reasoner(server.url, max_retries=2)
    p = await r.propose(make_input(tmp_path))

    assert fallback.calls == 1 and p.action is None and len(server.requests) == 3
    sent = [json.dumps(req["messages"][-1]) for req in server.requests[1:]]
    assert "short sentence in words" in sent[0]
    assert "contradicts this run's findings" in sent[1]
    assert "not backed by this run's findings" in p.rationale
    call = r.ledger.calls[0]
    # the server's own usage numbers, summed over the three requests
    assert (call.input_tokens, call.output_tokens, call.requests) == (3 * 1843, 3 * 97, 3)
    assert call.seconds > 0 and not call.ok


async def test_a_backed_answer_is_taken(chat_server: Any, tmp_path: Path) -> None:
    server = chat_server(ok(tool_call(json.dumps({**PROPOSAL, "action": TERMINATE}))))
    r, fallback = reasoner(server.url)
    p = await r.propose(make_input(tmp_path))
    assert p.action is not None and p.action.kind == "terminate-backend"
    assert fallback.calls == 0 and r.ledger.calls[0].ok


async def test_the_history_says_what_was_wrong_with_the_last_answer(
    chat_server: Any, tmp_path: Path
) -> None:
    """With no retries left, pydantic-ai only says "exceeded retries"; rootloop says why."""
    cut = ok(tool_call('{"diagnosis": {"root_cause": "payments-db", "summary": "0 0 0'))
    incomplete = ok(tool_call(json.dumps({"diagnosis": {"root_cause": "payments-db"}})))
    for reply, reason in (
        (cut, "its arguments are not JSON"),
        (incomplete, "diagnosis.category: Field required"),
    ):
        r, fallback = reasoner(chat_server(reply).url, max_retries=0)
        p = await r.propose(make_input(tmp_path))
        assert fallback.calls == 1 and p.action is None
        assert f"last answer rejected: {reason}" in (r.ledger.calls[0].error or "")
        assert reason in p.rationale
