"""Publishing a run: the HTML report, the PR body, and the pull request itself.

Every run that reaches an end (healthy, paused at a gate, escalated, refused)
publishes: the run's branch always carries a commit — the fix, or at least the
incident record — so the PR is a reviewable change with the whole debug
history in its body. Nothing here merges.

Publishing is a step like an action, exactly once per ending: the record commit
carries ``Rootloop-Step: publish <status>@<iterations>`` and is not made again
when the branch has it; pushing a pushed branch and opening the run's PR again
update the one PR. Kill points: ``step:publish:<commit|push|pr>``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rootloop import killpoints
from rootloop.actions.code import find_keyed_commit, make_forge
from rootloop.loop import RunState
from rootloop.redact import write_text
from rootloop.report import RunReport, build_report, pr_title, render_pr_body, write_html

LABELS = ["rootloop", "needs-review"]


class Publisher:
    def __init__(self, state_root: Path, run_dir: Path) -> None:
        self.state_root = state_root
        self.run_dir = run_dir
        self.html_path = run_dir / "report.html"
        self.body_path = run_dir / "pr.md"

    def report(self, run: RunState) -> RunReport:
        return build_report(
            run.context,
            run.topology,
            run.report_findings(),
            diagnosis=run.diagnosis,
            verify=run.verification,
            load_test=run.load_test,
            ui_test=run.ui_test,
            prior=run.prior,
            redactor=run.topology.redactor,
        )

    async def publish(self, run: RunState) -> str | None:
        """Write the PR body and the HTML report; open or update the pull request when the
        map has a repository and the run tried something. Returns where the result is."""
        report = self.report(run)
        redactor = run.topology.redactor
        body = render_pr_body(report, redactor)
        write_text(self.body_path, body)
        write_html(report, self.html_path, redactor)
        if run.topology.repo is None or not run.context.history:
            return str(self.body_path)  # nothing was tried: a report, no pull request
        return await self._open_pr(run, pr_title(report), body)

    async def _open_pr(self, run: RunState, title: str, body: str) -> str:
        from rootloop.actions.code import CodeFix  # the run's worktree, shared with fixes

        ctx = run.context
        ws = CodeFix.workspace_for(run.topology, ctx, self.state_root)
        await asyncio.to_thread(ws.open)
        ctx.branch = ws.branch
        step = f"publish {ctx.ending()}"
        recorded = await asyncio.to_thread(
            find_keyed_commit, ws.git, "HEAD", ctx.run_id, f"Rootloop-Step: {step}", ws.path
        )
        if recorded is None:
            record = f"incidents/{ctx.run_id}.md"
            # committed and pushed: through the boundary like any artefact
            write_text(ws.path / record, body)
            dirty = await asyncio.to_thread(
                ws.git.out, "status", "--porcelain", "--", record, cwd=ws.path
            )
            if dirty.strip():
                killpoints.hit("step:publish:commit")
                await asyncio.to_thread(
                    ws.commit,
                    f"Incident record {ctx.run_id}",
                    f"rootloop's debug history for {ctx.service}: {ctx.status}",
                    paths=[record],
                    step=step,
                    # it changes no code: its push must start no CI, and so no deploy of
                    # the branch after the run verified what runs
                    skip_ci=True,
                )
        forge = make_forge(run.topology, self.state_root)
        killpoints.hit("step:publish:push")
        await forge.push(ws.branch)
        killpoints.hit("step:publish:pr")
        pr = await forge.open_or_update_pr(ws.branch, title, body, LABELS)
        return pr.url
