"""Secret redaction applied to everything rootloop writes or sends to a model.

Two layers: exact values known to be secret (resolved from ``${ENV_VAR}``
references whose names look sensitive, registered while loading the map) and
patterns for secrets nobody registered (passwords in URLs and conninfo strings,
bearer tokens, AWS access keys, GitHub tokens, private keys).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

SENSITIVE_NAME = re.compile(
    r"(PASS(WORD)?|PWD|SECRET|TOKEN|KEY|DSN|CREDENTIAL|AUTH|PRIVATE|SESSION)", re.I
)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host
    (
        re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?P<post>@)"),
        rf"\g<pre>{MASK}\g<post>",
    ),
    # password=... in conninfo strings, query strings, env dumps
    (
        re.compile(
            r"(?P<pre>\b(?:password|passwd|pwd|secret|token|api[_-]?key)\s*[=:]\s*)"
            r"(?P<q>['\"]?)[^\s'\"&;,]+(?P=q)",
            re.I,
        ),
        rf"\g<pre>\g<q>{MASK}\g<q>",
    ),
    (re.compile(r"(?P<pre>\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.I), rf"\g<pre>{MASK}"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), MASK),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"), MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}\b"), MASK),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        MASK,
    ),
]


class Redactor:
    """Masks registered secret values and well-known secret shapes."""

    def __init__(self, secrets: set[str] | None = None) -> None:
        self._secrets: set[str] = set()
        for s in secrets or ():
            self.add(s)

    def add(self, value: str | None) -> None:
        # Very short values would mask innocent text everywhere; they are not secrets
        # worth the name, and the pattern layer still catches them in URLs.
        if value and len(value) >= 4:
            self._secrets.add(value)

    def add_env(self, name: str, value: str | None) -> None:
        if value and SENSITIVE_NAME.search(name):
            self.add(value)

    def __call__(self, text: str) -> str:
        return self.text(text)

    def text(self, text: str) -> str:
        if not text:
            return text
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text

    def data(self, obj: Any) -> Any:
        """Redact every string inside JSON-like data."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: self.data(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.data(v) for v in obj]
        return obj
