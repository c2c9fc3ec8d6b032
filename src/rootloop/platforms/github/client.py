"""Building the githubkit client and calling it with errors translated.

The token comes from the environment (the variable a map names, else
``GITHUB_TOKEN``, else ``GH_TOKEN``); the base URL may point at GitHub
Enterprise (``https://ghe.example.com/api/v3``) or at a GitHub-shaped server on
loopback (the lab). Automatic retries and the HTTP cache are off: a rate limit
must surface as a finding now, not as a sleeping sweep.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlparse

from githubkit import GitHub

from rootloop.platforms.github.errors import translate

DEFAULT_API_URL = "https://api.github.com"
TOKEN_ENVS = ("GITHUB_TOKEN", "GH_TOKEN")
USER_AGENT = "rootloop (+https://github.com/rootloop)"

T = TypeVar("T")


def resolve_token(
    token_env: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The first non-empty of ``$token_env``, ``$GITHUB_TOKEN``, ``$GH_TOKEN``."""
    env = os.environ if environ is None else environ
    for name in (token_env, *TOKEN_ENVS):
        if name and env.get(name):
            return env[name]
    return None


def _loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def make_client(
    api_url: str = DEFAULT_API_URL, token: str | None = None, *, timeout: float = 10.0
) -> GitHub[Any]:
    """A githubkit client; unauthenticated when there is no token (public repos only)."""
    return GitHub(
        token,
        base_url=api_url.rstrip("/") + "/",
        user_agent=USER_AGENT,
        timeout=timeout,
        auto_retry=False,
        http_cache=False,
        trust_env=not _loopback(api_url),  # never send loopback traffic through a proxy
        follow_redirects=True,  # log downloads answer 302 to a storage URL
    )


def split_repo(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"'{repo}' is not a repository: write 'owner/name'")
    return owner, name


async def call(what: str, awaitable: Awaitable[T], token_env: str = "GITHUB_TOKEN") -> T:
    """Await a githubkit call; any failure becomes a typed ``GitHubError``."""
    try:
        return await awaitable
    except Exception as exc:
        raise translate(exc, what, token_env) from exc
