"""Forges: where rootloop pushes its branches and opens its pull requests (never merges)."""

from rootloop.forge.base import CiRun, Forge, PullRequest, fit_body, guard_branch

__all__ = ["CiRun", "Forge", "PullRequest", "fit_body", "guard_branch"]
