"""The code-fix path: worktree → edit → repo tests → commit → push → CI → deploy.

Everything happens on the run's branch ``rootloop/<service>/<run>`` in its own
worktree; the git layer refuses any write to the default branch, so this
module cannot merge or push there even by mistake.

Exactly once: each iteration's commit (a fix or a revert) carries the trailers
``Rootloop-Run: <run>`` and ``Rootloop-Iteration: <n>``. A resumed run looks for
that commit on the REMOTE run branch first, then on the local one; a commit that
exists is never made again, a commit that is not on the remote is pushed, and CI
and the deploy are then picked up where they were (the CI run of that sha, the
task definition naming it). A local commit alone never means "done".
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rootloop.actions.gates import approval_key, refuse_unless_lower
from rootloop.actions.settings import text_setting
from rootloop.analysis.schema import diff_changes_schema
from rootloop.context import DebugContext, HistoryEntry
from rootloop.errors import ApprovalRequired, PlatformError, UserError
from rootloop.forge.base import Forge
from rootloop.models import utcnow
from rootloop.models.actions import ActionResult, ApplyPatch, RevertCommit
from rootloop.platforms.local.git import Git
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.actions.dispatch import Dispatcher, Progress, Step
    from rootloop.code.editor import CommitResult, RunWorkspace


def make_forge(topology: Topology, state_root: Path) -> Forge:
    repo = topology.repo
    if repo is None or (repo.forge == "local" and not repo.path):
        raise UserError(
            "the map has no 'self.repo' with a path: code fixes and pull requests "
            "need the service's repository (self.repo.path / self.repo.github_repo)"
        )
    if repo.forge == "github":
        from rootloop.forge.github import GitHubForge
        from rootloop.platforms.local.git import Git

        if not repo.github_repo:
            raise UserError("self.repo.forge is 'github' but self.repo.github_repo is not set")
        git = Git(Path(repo.path)) if repo.path else None
        return GitHubForge(repo.github_repo, git=git)
    from rootloop.forge.local import LocalForge

    if not repo.path:
        raise UserError("self.repo.forge is 'local' but self.repo.path is not set")
    return LocalForge(Path(repo.path), state_root)


def base_ref(topology: Topology) -> str:
    """What a run branch starts from: the remote's default branch, freshly fetched (the
    local clone's own ``main`` may be days behind what is deployed)."""
    from rootloop.platforms.local.git import Git

    repo = topology.repo
    assert repo is not None and repo.path
    remote = repo.remote or "origin"
    if Git(Path(repo.path)).fetch(remote):
        return f"{remote}/{repo.default_branch}"
    return repo.default_branch


def find_keyed_commit(git: Git, ref: str, run_id: str, trailer: str, cwd: Path) -> str | None:
    """The newest commit reachable from ``ref`` whose trailers name this run and carry
    ``trailer`` (``Rootloop-Iteration: 2``, ``Rootloop-Step: publish healthy@2``)."""
    if not git.run("rev-parse", "--verify", "--quiet", ref, cwd=cwd, check=False).stdout.strip():
        return None
    out = git.run(
        "log", ref, "-F", f"--grep=Rootloop-Run: {run_id}", "--format=%H%x1f%B%x1e", cwd=cwd
    ).stdout
    want_run, want_iter = f"Rootloop-Run: {run_id}", trailer
    for record in out.split("\x1e"):
        sha, _, body = record.strip().partition("\x1f")
        lines = {line.strip() for line in body.splitlines()}
        if sha and want_run in lines and want_iter in lines:
            return sha
    return None


class CodeFix:
    def __init__(
        self,
        dispatcher: Dispatcher,
        ctx: DebugContext,
        entry: HistoryEntry,
        progress: Progress,
        step: Step | None = None,
    ) -> None:
        from rootloop.actions.dispatch import Step

        self.d = dispatcher
        self.topology = dispatcher.topology
        self.ctx, self.entry, self.progress = ctx, entry, progress
        kind = entry.action_detail.kind if entry.action_detail else "code"
        self.step = step or Step(ctx, entry, progress, kind)

    @property
    def remote(self) -> str:
        repo = self.topology.repo
        return (repo.remote if repo else None) or "origin"

    def remote_ref(self, ws: RunWorkspace) -> str | None:
        """Fetch the run branch from the remote (read-only); its remote-tracking ref."""
        if (
            ws.git.run(
                "ls-remote", "--exit-code", self.remote, f"refs/heads/{ws.branch}", check=False
            ).returncode
            != 0
        ):
            return None
        tracking = f"refs/remotes/{self.remote}/{ws.branch}"
        ws.git.run("fetch", "--quiet", self.remote, f"+refs/heads/{ws.branch}:{tracking}")
        return tracking

    def find_commit(self, ws: RunWorkspace) -> tuple[str | None, bool]:
        """(the iteration's commit, is it on the remote run branch?)"""
        it = f"Rootloop-Iteration: {self.entry.iteration}"
        remote = self.remote_ref(ws)
        if remote is not None:
            sha = find_keyed_commit(ws.git, remote, self.ctx.run_id, it, ws.path)
            if sha is not None:
                return sha, True
        return find_keyed_commit(ws.git, "HEAD", self.ctx.run_id, it, ws.path), False

    def reset_leftovers(self, ws: RunWorkspace) -> None:
        """A run killed mid-edit or mid-revert left the worktree dirty: start clean from
        the branch's last commit (the worktree is rootloop's own, under the state dir)."""
        for args in (("revert", "--abort"), ("reset", "--hard", "HEAD"), ("clean", "-fd")):
            ws.git.run(*args, cwd=ws.path, check=False)

    def adopt(self, ws: RunWorkspace, sha: str) -> None:
        """The remote has the commit but this worktree does not (it was recreated): move the
        run branch forward to it, never backwards."""
        ancestor = (
            ws.git.run(
                "merge-base", "--is-ancestor", "HEAD", sha, cwd=ws.path, check=False
            ).returncode
            == 0
        )
        if not ancestor:
            raise PlatformError(
                f"the run branch {ws.branch} diverged from its remote",
                "inspect the worktree and the remote branch by hand",
            )
        ws.git.run("reset", "--hard", sha, cwd=ws.path)

    def contains(self, ws: RunWorkspace, sha: str) -> bool:
        """The worktree's branch already has ``sha``."""
        return (
            ws.git.run(
                "merge-base", "--is-ancestor", sha, "HEAD", cwd=ws.path, check=False
            ).returncode
            == 0
        )

    async def landed(self) -> bool:
        """Is this iteration's commit on the remote run branch? (CI and deploy follow it.)"""
        ws = self.workspace()
        if not (ws.path / ".git").exists():
            return False
        _sha, on_remote = await asyncio.to_thread(self.find_commit, ws)
        return on_remote

    def workspace(self) -> RunWorkspace:
        return self.workspace_for(self.topology, self.ctx, self.d.state_root)

    @staticmethod
    def workspace_for(topology: Topology, ctx: DebugContext, state_root: Path) -> RunWorkspace:
        from rootloop.code.editor import RunWorkspace

        repo = topology.repo
        if repo is None or not repo.path:
            raise UserError("code fixes need self.repo.path in the map (a local clone)")
        return RunWorkspace(
            Path(repo.path),
            service=topology.service,
            run_id=ctx.run_id,
            base_ref=base_ref(topology),
            root=state_root / "worktrees",
        )

    async def apply(self, action: ApplyPatch | RevertCommit) -> ActionResult:
        refuse_unless_lower(self.topology, action)
        repo = self.topology.repo
        assert repo is not None
        ws = self.workspace()
        await asyncio.to_thread(ws.open)
        self.ctx.branch = ws.branch
        found, on_remote = await asyncio.to_thread(self.find_commit, ws)
        if found is not None:
            self.progress(
                f"found this iteration's commit {found[:7]} "
                + ("on the remote" if on_remote else "in the worktree, not pushed yet")
            )
            if on_remote and not await asyncio.to_thread(self.contains, ws, found):
                await asyncio.to_thread(self.adopt, ws, found)
            commit = await asyncio.to_thread(self.described, ws, found)
            return await self.ship(action, ws, commit, pushed=on_remote)
        await asyncio.to_thread(self.reset_leftovers, ws)
        if isinstance(action, ApplyPatch):
            files = await asyncio.to_thread(ws.apply_edits, action.edits)
            self.progress(f"edited {', '.join(files)} in {ws.path}")
            if repo.test_command:
                run = await asyncio.to_thread(ws.run_tests, repo.test_command)
                self.progress(f"repository tests: exit {run.exit_code} in {run.duration_s:.1f}s")
                if not run.passed:
                    await asyncio.to_thread(ws.git.run, "checkout", "--", ".", cwd=ws.path)
                    return ActionResult(
                        ok=False,
                        changed="",
                        details={
                            "error": f"the repository's tests fail with this change:\n"
                            f"{run.output_tail[-1500:]}"
                        },
                    )
            self.step.before("commit", f"committing on {ws.branch} ({self.step.key})")
            commit = await asyncio.to_thread(
                ws.commit,
                action.title,
                action.reason,
                paths=files,
                iteration=self.entry.iteration,
            )
        else:
            self.step.before("commit", f"reverting {action.commit[:7]} on {ws.branch}")
            commit = await asyncio.to_thread(
                ws.revert, action.commit, iteration=self.entry.iteration
            )
        self.progress(f"committed {commit.sha[:7]} on {ws.branch}")
        return await self.ship(action, ws, commit, pushed=False)

    def described(self, ws: RunWorkspace, sha: str) -> CommitResult:
        """A commit found after a restart, described as if it had just been made."""
        from rootloop.code.editor import CommitResult

        files = ws.git.out("diff-tree", "--no-commit-id", "--name-only", "-r", sha, cwd=ws.path)
        return CommitResult(
            sha=sha,
            branch=ws.branch,
            message=ws.git.out("log", "-1", "--format=%B", sha, cwd=ws.path),
            diff=ws.git.diff(f"{sha}^", sha, cwd=ws.path),
            files=[f for f in files.splitlines() if f],
        )

    async def ship(
        self,
        action: ApplyPatch | RevertCommit,
        ws: RunWorkspace,
        commit: CommitResult,
        *,
        pushed: bool,
    ) -> ActionResult:
        """Push (unless the remote has it), then CI and the deploy of that commit."""
        sha = commit.sha
        self.entry.commit = sha[:7]
        if not pushed:
            if diff_changes_schema(commit.diff) and approval_key("schema", action) not in (
                self.ctx.approvals
            ):  # a revert (or an edit) whose real diff touches schema: undo the commit, pause
                await asyncio.to_thread(ws.git.run, "reset", "--hard", "HEAD~1", cwd=ws.path)
                raise ApprovalRequired(
                    "schema",
                    f"'{action.describe()}' changes the database schema (its diff does); "
                    f"approve with: rootloop approve {self.ctx.run_id} --gate schema",
                )
            refuse_unless_lower(self.topology, action)  # the push is what others see
            self.step.before("push", f"pushing {sha[:7]} to {ws.branch}", commit=sha)
            forge = make_forge(self.topology, self.d.state_root)
            await forge.push(ws.branch)
            self.step.inside("pushed")
            self.progress(f"pushed {ws.branch}")
        gha = await self.watch_ci(ws.branch, sha)
        self.entry.gha = gha
        if gha not in ("pass", "skipped"):  # skipped: the map declares no CI to wait for
            return ActionResult(
                ok=False,
                changed=f"committed {sha[:7]} on {ws.branch}",
                commit=sha[:7],
                undo=f"git revert {sha[:7]} on {ws.branch}",
                details={
                    "gha": gha,
                    "error": f"CI {gha} on {sha[:7]}",
                    "diff": commit.diff[-4000:],
                },
            )
        deployed = await self.wait_deploy(sha)
        return ActionResult(
            ok=deployed,
            changed=f"committed {sha[:7]} on {ws.branch}, "
            + ("CI passed, " if gha == "pass" else "no CI in the map, ")
            + ("deployed to the lower environment" if deployed else "deploy not seen"),
            commit=sha[:7],
            undo=f"git revert {sha[:7]} on {ws.branch}",
            details={
                "gha": gha,
                "diff": commit.diff[-4000:],
                "files": commit.files,
                **({} if deployed else {"error": "the deploy of the commit was not seen"}),
            },
        )

    # -- CI -----------------------------------------------------------------------------------
    def ci_node(self) -> Any:
        return next(
            (
                n
                for n in self.topology.checks_of(self.topology.service)
                if n.skill == "github-actions"
            ),
            None,
        )

    async def watch_ci(self, branch: str, sha: str) -> str:
        """Poll the CI runs of the commit until one completes: 'pass', 'fail' or 'timeout'."""
        node = self.ci_node()
        if node is None:
            self.progress("no CI configured in the map (self.ci): not waiting for CI")
            return "skipped"
        from rootloop.platforms.github.actions import ActionsClient
        from rootloop.platforms.github.client import make_client, resolve_token

        s = node.settings
        deadline = time.monotonic() + self.topology.policy.ci_timeout
        gh = make_client(s.api_url, resolve_token(s.token_env), timeout=15.0)
        last = ""
        async with gh:
            api = ActionsClient(gh, s.repo, s.token_env)
            while time.monotonic() < deadline:
                try:
                    runs = await api.runs(s.workflow, branch=branch, head_sha=sha)
                except PlatformError as exc:
                    self.progress(f"CI: {exc}")
                    runs = []
                mine = [r for r in runs if r.head_sha == sha]
                if mine:
                    run = mine[0]
                    state = f"{run.status}/{run.conclusion or '-'}"
                    if state != last:
                        self.progress(f"CI run {run.id} on {sha[:7]}: {state}")
                        last = state
                    if run.completed:
                        return "pass" if run.passed else "fail"
                await asyncio.sleep(1.0)
        return "timeout"

    # -- deploy --------------------------------------------------------------------------------
    async def wait_deploy(self, sha: str) -> bool:
        """Wait until the service runs the commit: the primary deployment's task definition
        names it (image tag or an env value), then the rollout is stable."""
        node = next(
            (n for n in self.topology.checks_of(self.topology.service) if n.skill == "aws-ecs"),
            None,
        )
        if node is None:
            self.progress("no compute in the map (self.compute): not waiting for a deploy")
            return True
        clients = self.d.aws_clients(node)
        cluster, service = text_setting(node, "cluster"), text_setting(node, "service")
        deadline = time.monotonic() + self.topology.policy.deploy_timeout
        since = utcnow()
        short = sha[:7]

        def running_commit() -> bool:
            """The service's task definition names the commit, and every running task
            runs that task definition (the old tasks are gone)."""
            svc = clients.ecs.describe_services(cluster=cluster, services=[service])
            arn = svc["services"][0]["taskDefinition"]
            td = clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            named = any(
                short in v
                for c in td.get("containerDefinitions", [])
                for v in [
                    c.get("image", ""),
                    *(e.get("value", "") for e in c.get("environment", [])),
                ]
            )
            if not named:
                return False
            tasks = clients.ecs.list_tasks(
                cluster=cluster, serviceName=service, desiredStatus="RUNNING"
            ).get("taskArns", [])
            if not tasks:
                return False
            described = clients.ecs.describe_tasks(cluster=cluster, tasks=tasks)["tasks"]
            mine = [
                t
                for t in described
                if t.get("group", f"service:{service}") == f"service:{service}"
                and t.get("desiredStatus") == "RUNNING"  # lastStatus: emulators cycle it
            ]
            return bool(mine) and all(t.get("taskDefinitionArn") == arn for t in mine)

        self.progress(f"waiting for the deploy of {short}")
        while time.monotonic() < deadline:
            if await asyncio.to_thread(running_commit):
                # the commit is what runs now; whether it runs *well* is verify's question
                result = await self.d.wait_stable(
                    clients, cluster, service, self.progress, since=since
                )
                self.progress(f"deploy of {short}: {result.reason}")
                return True
            await asyncio.sleep(1.0)
        return False
