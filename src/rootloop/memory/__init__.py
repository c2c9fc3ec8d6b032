"""rootloop.memory: every investigation archived, summarised, searchable, recalled.

The loop uses three calls::

    mem = Memory()                                   # <state dir>/memory
    prior = mem.prior(service, nodes, findings)      # before reasoning
    sink = mem.recorder(run_id, service, redactor)   # an EventSink: the transcript
    mem.archive(ctx, findings, redactor)             # at the end, or at a pause

``failed_fingerprints(prior, diagnosis.key)`` is the set of actions not to try again.
"""

from rootloop.memory.config import MemoryConfig, default_root
from rootloop.memory.recorder import Recorder, read_transcript
from rootloop.memory.records import ArchivedRun, RunDetail, RunRecord, SearchHit
from rootloop.memory.retention import PruneItem, PruneReport
from rootloop.memory.store import Memory, failed_fingerprints
from rootloop.memory.summary import (
    SECTIONS,
    AsyncSummarizer,
    Summaries,
    Summarizer,
    SummaryInput,
    TemplateSummarizer,
)

__all__ = [
    "SECTIONS",
    "ArchivedRun",
    "AsyncSummarizer",
    "Memory",
    "MemoryConfig",
    "PruneItem",
    "PruneReport",
    "Recorder",
    "RunDetail",
    "RunRecord",
    "SearchHit",
    "Summaries",
    "Summarizer",
    "SummaryInput",
    "TemplateSummarizer",
    "default_root",
    "failed_fingerprints",
    "read_transcript",
]
