"""The never-merge / never-default-branch guarantee, proven on the source and on the guard.

The source scan walks every module of the ``rootloop`` package: no call may use a
merge API (githubkit's pulls/repos merge endpoints), no string may name a git
merge/pull/rebase or a merge URL, no push may force, and every call that writes
a ref (git push/commit/revert/branch, the refs and contents APIs) must sit in a
function that calls the branch guard first.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

import rootloop
import rootloop_lab
from rootloop.errors import ActionRefused
from rootloop.forge.base import Forge, guard_branch
from rootloop.platforms.local.git import check_branch, run_branch

PACKAGE = Path(rootloop.__file__).parent
MERGE_CALLS = {
    "merge",
    "async_merge",
    "merge_upstream",
    "async_merge_upstream",
    "enable_pull_request_auto_merge",
    "create_merge",
    "async_create_merge",
}
GIT_FORBIDDEN = {
    "merge",
    "pull",
    "rebase",
    "cherry-pick",
    "am",
    "--force",
    "-f",
    "--force-with-lease",
    "--mirror",
    "--all",
    "update-ref",
}
MERGE_URL = re.compile(r"/pulls/[^/\s]+/merge\b|/merges\b|/merge-upstream\b|enablePullRequestAuto")
# ref-writing calls and the guard that must precede them in the same function
REF_WRITES = {
    "async_create_ref",
    "async_update_ref",
    "create_ref",
    "update_ref",
    "async_create_or_update_file_contents",
    "create_or_update_file_contents",
}
GIT_REF_WRITES = {"push", "commit", "revert", "branch", "worktree"}
GUARDS = {"check_branch", "guard_branch", "_guard"}
# The one exemption: it builds a new repository in directories it creates (it refuses
# existing ones), so its initial commit cannot land on anybody's default branch.
WRAPPER = PACKAGE / "platforms/local/git.py"
# The lab is the simulated world rootloop is tested against, not the harness: its
# "team developer" commits and pushes to the lab's own throw-away origin. It may
# push there (never merge, never force); the harness may push only through the wrapper.
LAB = Path(rootloop_lab.__file__).parent  # its own distribution, scanned with the harness
GIT_RUNNERS = {"run", "out", "git", "_git"}
SEEDERS = {(PACKAGE / "platforms/local/git.py", "seed_repository")}


@functools.cache
def modules() -> list[tuple[Path, ast.Module]]:
    """Every module of both distributions, parsed once per test process (about 1.5 s of
    CPU) for the three scans below; the scans only read the trees."""
    out = []
    for path in [*sorted(PACKAGE.rglob("*.py")), *sorted(LAB.rglob("*.py"))]:
        out.append((path, ast.parse(path.read_text(encoding="utf-8"), str(path))))
    assert len(out) > 10
    return out


def call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def git_args(node: ast.Call) -> list[str]:
    """String arguments of a call that runs git through the wrapper (``*.run("push", ...)``)."""
    return [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


Trees = list[tuple[Path, ast.Module]]


def strings(seq: list[ast.expr]) -> list[str]:
    return [a.value for a in seq if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def is_merge_call(node: ast.Call) -> bool:
    """A forge merge API call; a plain ``merge()`` of some other library is not one."""
    name = call_name(node)
    if name not in MERGE_CALLS:
        return False
    receiver = ast.unparse(node.func).lower()
    return name != "merge" or any(w in receiver for w in ("pulls", "repos", "rest", "git"))


def merge_uses(trees: Trees) -> list[str]:
    offenders = []
    for path, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and is_merge_call(node):
                offenders.append(f"{path}:{node.lineno} calls {call_name(node)}()")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and MERGE_URL.search(node.value)
            ):
                offenders.append(f"{path}:{node.lineno} names a merge endpoint")
    return offenders


def git_commands(tree: ast.Module) -> list[tuple[int, list[str]]]:
    """Every git command line in a module: ``x.run("push", ...)``, ``git("push", ...)``
    (a module's own helper), and raw ``["git", "push", ...]`` lists."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and call_name(node) in GIT_RUNNERS:
            args = git_args(node)
            if args:
                found.append((node.lineno, args))
        if isinstance(node, ast.List | ast.Tuple):
            words = strings(node.elts)
            if words[:1] == ["git"] and len(words) > 1:
                found.append((node.lineno, [w for w in words[1:] if w != "-c"]))
    return found


def bad_git_commands(trees: Trees) -> list[str]:
    """Nobody merges, pulls, rebases or force-pushes; only the guarded wrapper pushes."""
    offenders = []
    for path, tree in trees:
        for line, args in git_commands(tree):
            sub = next((a for a in args if not a.startswith("-") and "=" not in a), "")
            if sub in GIT_FORBIDDEN:
                offenders.append(f"{path}:{line} runs git {sub}")
            if sub == "push":
                bad = [a for a in args if a in GIT_FORBIDDEN or a.startswith("+")]
                if bad:
                    offenders.append(f"{path}:{line} pushes with {bad}")
                elif path != WRAPPER and not path.is_relative_to(LAB):
                    offenders.append(f"{path}:{line} pushes outside the git wrapper")
    return offenders


def unguarded_ref_writes(trees: Trees) -> tuple[int, list[str]]:
    unguarded, seen = [], 0
    for path, tree in trees:
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)]
            guarded = any(call_name(c) in GUARDS for c in calls)
            for c in calls:
                name, args = call_name(c), git_args(c)
                writes = name in REF_WRITES or (
                    name == "run"
                    and bool(args)
                    and args[0] in GIT_REF_WRITES
                    and args[:2] not in (["worktree", "remove"], ["worktree", "prune"])
                )
                if writes:
                    seen += 1
                    if not guarded and (path, fn.name) not in SEEDERS:
                        unguarded.append(f"{path}:{c.lineno} {fn.name}() writes a ref unguarded")
    return seen, unguarded


def test_no_code_path_uses_a_merge_api():
    assert merge_uses(modules()) == []


def test_no_git_command_merges_pulls_rebases_or_force_pushes():
    assert bad_git_commands(modules()) == []


def test_every_ref_write_is_guarded_in_its_function():
    seen, unguarded = unguarded_ref_writes(modules())
    assert seen >= 6, "the scan found no ref writes: it is not looking at the right code"
    assert unguarded == []


BAD_CODE = """
async def sneaky(gh, git):
    await gh.rest.pulls.async_merge("o", "r", 1)
    gh.rest.repos.merge("o", "r", data={})
    findings.merge(other)
    await gh.arequest("PUT", "/repos/o/r/pulls/1/merge")
    git.run("merge", "rootloop/x")
    git.run("push", "--force", "origin", "main")
    subprocess.run(["git", "push", "origin", "main"])
    subprocess.run(["git", "-c", "x=y", "pull", "origin"])
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    await gh.rest.git.async_update_ref("o", "r", "heads/main", sha="x")
"""


def test_the_scanners_catch_violations():
    trees = [(Path("bad.py"), ast.parse(BAD_CODE))]
    assert len(merge_uses(trees)) == 3  # findings.merge() is no forge call
    assert len(bad_git_commands(trees)) == 5
    assert unguarded_ref_writes(trees) == (
        2,
        ["bad.py:8 sneaky() writes a ref unguarded", "bad.py:12 sneaky() writes a ref unguarded"],
    )


def test_forge_protocol_has_no_merge():
    assert not [m for m in dir(Forge) if "merge" in m.lower()]


@pytest.mark.parametrize(
    "branch",
    [
        "main",
        "master",
        "refs/heads/main",
        "HEAD",
        "develop",
        "feature/x",
        "rootloop",
        "rootloop/../main",
        "rootloop/a//b",
        "rootloop/x.lock",
        "rootloop/a b",
    ],
)
def test_guard_refuses(branch: str):
    with pytest.raises(ActionRefused) as err:
        check_branch(branch)
    assert err.value.gate == "default-branch"


def test_guard_refuses_the_repos_own_default_even_if_prefixed():
    with pytest.raises(ActionRefused):
        guard_branch("rootloop/trunk", default_branch="rootloop/trunk")


def test_guard_allows_run_branches():
    branch = run_branch("checkout api", "20261127-101500-ab12")
    assert branch == "rootloop/checkout-api/20261127-101500-ab12"
    assert guard_branch(f"refs/heads/{branch}", "main") == branch
