"""GitHub failures as typed ``PlatformError``s, translated at one boundary.

PlatformError
└── GitHubError                 any failed call; ``status`` is the HTTP status or None
    ├── GitHubAuthError         401 bad/missing token, 403 missing scope or permission
    ├── GitHubRateLimited       primary or secondary rate limit; ``reset_at`` when known
    ├── GitHubNotFound          404: no such repo/ref/run, or the token cannot see it
    └── GitHubUnreachable       connection refused, DNS, timeout
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)

from rootloop.errors import PlatformError

SCOPES_HINT = (
    "the token needs actions:read, contents:write and pull-requests:write "
    "(classic tokens: the 'repo' and 'workflow' scopes)"
)


class GitHubError(PlatformError):
    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        self.status = status
        super().__init__(message, hint)


class GitHubAuthError(GitHubError):
    pass


class GitHubRateLimited(GitHubError):
    def __init__(
        self,
        message: str,
        hint: str = "",
        status: int | None = None,
        reset_at: datetime | None = None,
    ) -> None:
        self.reset_at = reset_at
        super().__init__(message, hint, status)


class GitHubNotFound(GitHubError):
    pass


class GitHubUnreachable(GitHubError):
    pass


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200]
    if isinstance(data, dict):
        msg = str(data.get("message", ""))
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            details = [e.get("message") or e.get("code") for e in errors if isinstance(e, dict)]
            msg += ": " + "; ".join(str(d) for d in details if d)
        return msg
    return ""


def _reset_at(response: httpx.Response, retry_after: timedelta | None) -> datetime | None:
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.isdigit():
        return datetime.fromtimestamp(int(reset), UTC)
    if retry_after is not None:
        return datetime.now(UTC) + retry_after
    return None


def translate(exc: BaseException, what: str, token_env: str = "GITHUB_TOKEN") -> GitHubError:
    """The one place githubkit/httpx exceptions become rootloop errors. ``what`` names the call."""
    if isinstance(exc, GitHubError):
        return exc
    if isinstance(exc, RateLimitExceeded):
        raw = exc.response.raw_response
        reset = _reset_at(raw, exc.retry_after)
        when = reset.strftime("%Y-%m-%d %H:%M:%S UTC") if reset else "an unknown time"
        used = raw.headers.get("x-ratelimit-used")
        limit = raw.headers.get("x-ratelimit-limit")
        quota = f" ({used}/{limit} requests used)" if used and limit else ""
        return GitHubRateLimited(
            f"GitHub rate limit exceeded while {what}{quota}; it resets at {when}",
            "wait for the reset, or use a token with a higher limit (an app installation)",
            raw.status_code,
            reset,
        )
    if isinstance(exc, RequestFailed):
        raw = exc.response.raw_response
        status, msg = raw.status_code, _message(raw)
        said = f": GitHub said '{msg}'" if msg else ""
        if status == 401:
            return GitHubAuthError(
                f"GitHub rejected the credentials while {what}{said}",
                f"set ${token_env} to a valid, unexpired token",
                status,
            )
        if status == 403:
            need = raw.headers.get("x-accepted-github-permissions") or raw.headers.get(
                "x-accepted-oauth-scopes"
            )
            hint = f"the token lacks a permission ({need})" if need else SCOPES_HINT
            return GitHubAuthError(f"GitHub refused {what}{said}", hint, status)
        if status == 404:
            return GitHubNotFound(
                f"GitHub found nothing while {what}{said}",
                "check the repository, ref or id; a private repository "
                f"also answers 404 when ${token_env} cannot read it",
                status,
            )
        return GitHubError(f"GitHub answered {status} while {what}{said}", "", status)
    if isinstance(exc, RequestTimeout):
        return GitHubUnreachable(f"GitHub timed out while {what}")
    if isinstance(exc, RequestError):
        inner = exc.exc
        return GitHubUnreachable(
            f"cannot reach GitHub while {what}: {type(inner).__name__}: {inner}"
        )
    if isinstance(exc, httpx.HTTPError | GitHubException | OSError):
        return GitHubUnreachable(f"cannot reach GitHub while {what}: {type(exc).__name__}: {exc}")
    return GitHubError(f"unexpected error while {what}: {type(exc).__name__}: {exc}")
