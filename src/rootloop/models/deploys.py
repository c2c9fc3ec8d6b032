"""What a deploy changed, as evidence a skill collects and a signature reads.

Reasoning does no I/O: the files a deploy changed come from git, so a skill (the ECS
check, through ``rootloop.skills.deploys``) runs git and writes them into its finding
as one ``diff`` evidence; the bad-deploy signature reads that evidence back. This
module is the one place that knows the evidence's shape, so writer and reader agree.

The shape is readable as it is (a person or a model sees it in the finding)::

    files changed by the deploy
    <previous commit>..<deployed commit>
    app/receipts.py
    ...

A diff is only ever written for a forward deploy: the previous commit is a strict
ancestor of the deployed one, so the list is exactly what that deploy changed — never a
root commit's whole tree, never commits deployed earlier.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from rootloop.models import Evidence, Finding

TITLE = "files changed by the deploy"
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


class DeployDiff(BaseModel):
    """The files changed from the previously deployed commit to the running one."""

    model_config = ConfigDict(frozen=True)

    previous: str = Field(pattern=_SHA.pattern)
    commit: str = Field(pattern=_SHA.pattern)
    files: tuple[str, ...]

    def to_evidence(self) -> Evidence:
        body = "\n".join([f"{self.previous}..{self.commit}", *self.files])
        return Evidence(kind="diff", title=TITLE, text=body)

    @classmethod
    def from_evidence(cls, evidence: Evidence) -> DeployDiff | None:
        """The diff an evidence carries, or None when it is not one (or is malformed)."""
        if evidence.kind != "diff" or evidence.title != TITLE:
            return None
        head, *files = evidence.text.splitlines()
        previous, sep, commit = head.strip().partition("..")
        if not sep or not (_SHA.match(previous) and _SHA.match(commit)):
            return None
        return cls(previous=previous, commit=commit, files=tuple(f for f in files if f.strip()))

    @classmethod
    def in_findings(cls, findings: list[Finding], previous: str, commit: str) -> DeployDiff | None:
        """The diff of exactly ``previous..commit`` that any of ``findings`` carries."""
        for f in findings:
            for e in f.evidence:
                d = cls.from_evidence(e)
                if d is not None and (d.previous, d.commit) == (previous, commit):
                    return d
        return None
