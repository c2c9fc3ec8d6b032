"""Two investigations in two processes share one memory directory.

The first run records its events and archives a fix that failed; the second,
started in a fresh process, loads the first run's summary and the failed
action before it reasons, and a runbook ladder filtered by it skips that rung.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from rootloop.actions.types import ForceDeployment, SetTaskResources
from rootloop.memory import Memory, MemoryConfig, failed_fingerprints, read_transcript
from tests.unit.test_memory_helpers import oom_run

FIRST_RUN = """
import sys
from pathlib import Path
from rootloop.events import Event
from rootloop.memory import Memory, MemoryConfig
from rootloop.redact import Redactor
from tests.unit.test_memory_helpers import later, oom_run

root, run_id, minute = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx, findings, restart = oom_run(run_id, started=later(minute), fixed=False)
mem = Memory(root, MemoryConfig(embeddings="off"))
red = Redactor({"hunter2-db-pass"})
sink = mem.recorder(run_id, ctx.service, red)
sink(Event(kind="run-start", run_id=run_id, data={"service": ctx.service}))
for f in findings:
    sink(Event(kind="finding", run_id=run_id, data=f.model_dump(mode="json")))
sink(Event(kind="action", run_id=run_id, iteration=1,
           data={"action": restart.model_dump(mode="json"), "dsn": "postgres://a:hunter2-db-pass@x/y",
                 "result": "failed: tasks still OOMKilled after restart"}))
sink(Event(kind="run-end", run_id=run_id, data={"status": "escalated"}))
sink.close()
mem.archive(ctx, findings, redactor=red)
"""


def run_first(root: Path, run_id: str, minute: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(FIRST_RUN), str(root), run_id, str(minute)],
        cwd=Path(__file__).resolve().parents[2],
    )


def test_second_run_starts_from_the_first_and_skips_its_failed_fix(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    # two first runs (two services' loops) archive into one index at the same time
    procs = [
        run_first(root, "20261120-090000-aaaa", 0),
        run_first(root, "20261120-091000-bbbb", 10),
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]

    with Memory(root, MemoryConfig(embeddings="off")) as mem:
        assert {r.run_id for r in mem.recent("checkout")} == {
            "20261120-090000-aaaa",
            "20261120-091000-bbbb",
        }
        events = read_transcript(root / "runs" / "20261120-090000-aaaa" / "transcript.jsonl")
        assert [e.kind for e in events][:2] == ["run-start", "finding"]
        assert all("hunter2-db-pass" not in e.model_dump_json() for e in events)

        _, findings, _ = oom_run()
        prior = mem.prior("checkout", ["web", "orders-db"], findings)

    assert prior.last_run_id == "20261120-091000-bbbb"
    assert "force a new deployment of checkout" in prior.last_summary
    assert [p.run_id for p in prior.similar] == ["20261120-090000-aaaa"]

    # the rules reasoner's ladder for checkout:oom, filtered as it will be
    ladder = [
        ForceDeployment(target="checkout", cluster="lower", service="checkout"),
        SetTaskResources(target="checkout", cluster="lower", service="checkout", memory=2048),
    ]
    skip = failed_fingerprints(prior, "checkout:oom")
    next_rung = next(a for a in ladder if a.fingerprint() not in skip)
    assert isinstance(next_rung, SetTaskResources)
