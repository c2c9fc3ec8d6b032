"""The one way to act, for the loop and the MCP server alike: exactly once, under the lease.

Both have already asked the gatekeeper; both then come here. ``ActPath.act``
marks the entry ``applying`` and persists it before any side effect, hands the
executor a checkpoint as its progress callback (each call saves the context, so
what the executor journaled is on disk, and checks the lease), and turns a
platform failure into a failed ``ActionResult`` — except the ones that are not
failures: a lost lease stops the run with the entry still ``applying``, and a
kill (any ``BaseException``) leaves it so too. Resuming an ``applying`` entry
calls the executor again: executors are idempotent under the action's key and
finish what the killed run started instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rootloop.context import DebugContext, HistoryEntry
from rootloop.errors import ActionRefused, ApprovalRequired
from rootloop.lease import Lease, LeaseLost
from rootloop.models.actions import ActionResult, BaseAction
from rootloop.redact import Redactor, carries_mask


class Executor(Protocol):
    """Carries out allowed actions on the real world (see ``rootloop.actions.dispatch``).

    ``worktree`` is the run's checkout of the deployed code, opened (the place a code fix
    is written and committed), or None when this executor works on no repository; the
    loop hands it to a reasoner that reads code.
    """

    async def worktree(self, ctx: DebugContext) -> Path | None: ...

    async def apply(
        self,
        action: BaseAction,
        ctx: DebugContext,
        entry: HistoryEntry,
        progress: Callable[[str], None],
    ) -> ActionResult: ...

    async def already_applied(
        self, action: BaseAction, ctx: DebugContext, entry: HistoryEntry
    ) -> bool: ...


@dataclass
class ActPath:
    executor: Executor
    #: persists the debug context (the loop's ``save``, the MCP server's store)
    save: Callable[[], None]
    #: shows progress (the loop's event stream); never raises
    show: Callable[[str], None]
    redactor: Redactor
    lease: Lease | None = None

    def checkpoint(self, message: str) -> None:
        """What executors call right before each side effect: persist, check the lease."""
        self.save()
        if self.lease is not None:
            self.lease.check()
        self.show(message)

    async def act(self, action: BaseAction, ctx: DebugContext, entry: HistoryEntry) -> ActionResult:
        if entry.phase == "applying":  # a killed run's action: finish it, never repeat it
            try:
                done = await self.executor.already_applied(action, ctx, entry)
            except Exception as exc:  # the probe is advice; the executor decides by its key
                done = False
                self.show(f"resuming: could not probe the action ({type(exc).__name__})")
            self.show(
                f"resuming {ctx.action_key(entry)}: the action "
                + ("had landed; collecting its result" if done else "had not fully landed; ")
                + ("" if done else "finishing it without repeating what was done")
            )
        entry.phase = "applying"
        self.checkpoint(f"applying {action.describe()} ({ctx.action_key(entry)})")
        try:
            if carries_mask(action.model_dump(mode="json")):
                raise ValueError(
                    "the action holds a secret that was redacted when the run was saved"
                )
            return await self.executor.apply(action, ctx, entry, self.checkpoint)
        except (LeaseLost, ActionRefused, ApprovalRequired):
            raise  # not failures: a lost lease stops the run; a gate at the landing decides
        except Exception as exc:  # the platform failed: record it, try the next idea
            return ActionResult(
                ok=False,
                changed="",
                details={"error": self.redactor.text(f"{type(exc).__name__}: {exc}")},
            )
