"""The redaction boundary: nothing leaves rootloop with a secret in it.

Everything rootloop writes or sends — files in the state directory, the memory
database, transcripts, PR bodies and the files it commits, HTML reports,
prompts to a model, MCP responses, terminal and log output — passes through a
``Redactor`` on its way out. Two layers:

**Known values.** Secrets rootloop can name: the values of environment
variables whose names look sensitive (``*_PASSWORD``, ``*_TOKEN``, ``*_KEY``,
``*_DSN``…), every ``${VAR}`` a map expands to under such a name, and the
credentials inside any URL in the environment. Each is registered with its
*parts* (the password and the ``user:password`` inside a DSN) and the *forms*
the parts take on the way out (URL-encoded, base64 — including inside a longer
base64 string, as in a Basic auth header —, JSON-escaped). Registration is
process-wide: a secret one map registered is masked in every artefact the
process writes, whoever wrote it.

**Shapes.** Secrets nobody registered: passwords in URLs and conninfo strings,
``NAME=value`` / ``"name": "value"`` for names that say password, secret,
token or key, query-string tokens and signatures, ``Authorization`` headers,
GitHub, AWS, Slack, Stripe, Google and OpenAI style tokens, JWTs and private
keys.

What is deliberately *not* masked: a bare 40-hex string. It is almost always a
git commit SHA — evidence a reviewer needs in the PR (the bad commit, the fix
commit). A 40-hex GitHub token is masked when it is registered (the value of
``GITHUB_TOKEN`` and the like), and wherever it stands in a token's place
(``Authorization: token …``, ``token=…``, ``https://x-access-token:…@``).
See docs/secrets.md.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from rootloop.state import atomic_write, atomic_write_json

MASK = "***"

#: environment variable (or config key) names whose values are secrets
SENSITIVE_NAME = re.compile(
    r"(?:PASSWORD|PASSWD|PASSPHRASE|PASS|PWD|SECRET|TOKEN|KEY|KEYS|APIKEY|DSN|CREDENTIALS?"
    r"|JWT|AUTH|AUTHORIZATION|COOKIE|SIGNATURE)$"
    r"|(?:^|[_.-])(?:PASSWORD|PASSWD|SECRET|TOKEN|KEY|APIKEY|DSN|CREDENTIALS?|JWT)(?:[_.-]|$)",
    re.I,
)
#: names that match the rule but hold no secret (the shell's working directory, …)
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD", "SSH_AUTH_SOCK", "GPG_AGENT_INFO"})
#: values too common to be anyone's secret: masking them would erase ordinary words
_PLACEHOLDERS = frozenset(
    {
        "changeme",
        "example",
        "password",
        "secret",
        "testing",
        "test1234",
        "dummy",
        "default",
        "redacted",
        "none",
        "null",
        "true",
        "false",
        "localhost",
        "postgres",
    }
)
#: below this, a registered value is masked only as a whole token, not inside words
_SUBSTRING_MIN = 8
#: below this, a value is not registered at all
_REGISTER_MIN = 4
#: a base64 fragment shorter than this would match by chance
_B64_MIN = 8

# -- the shapes -------------------------------------------------------------------------

_VALUE_BARE = r"[^\s\"'&;,<>)}\]]+"
#: a name whose value is a secret, inside text (``DB_PASSWORD=…``, ``"api_key": "…"``):
#: how the name ends
_SECRET_NAME_END = re.compile(
    r"(?:password|passwd|passphrase|pwd|[_-]pass|secret|token|credentials?"
    r"|(?:api|access|secret|private|signing|encryption|master|client|auth|account|license"
    r"|app|service|webhook|shared|hmac|consumer|ssh|deploy)[_-]?key|access[_-]?key[_-]?id"
    r"|jwt|session[_-]?id|cookie)$",
    re.I,
)
#: environment style ``STRIPE_KEY=…``: an upper-case name ending in _KEY
_ENV_KEY_NAME = re.compile(r"[A-Z][A-Z0-9_]*_KEY")
#: ``name = value`` / ``"name": "value"`` / ``\"name\": \"value\"`` / ``name: 'v a l'``.
#: The name is taken whole (possessive: linear time on any input) and judged afterwards.
_KV = re.compile(
    r"(?P<pre>(?<![A-Za-z0-9_.-])(?P<nq>\\?[\"']?)(?P<name>[A-Za-z0-9_.-]++)(?P=nq)"
    r"[ \t]*[:=][ \t]*)"
    r"(?:(?P<q>\\?[\"'])(?P<qv>(?:(?!(?P=q)).)+?)(?P=q)|(?P<bv>" + _VALUE_BARE + r"))"
)
_URL_USERINFO = re.compile(
    r"(?P<pre>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*+://[^\s:@/?#\"'<>]*+:)"
    r"(?P<pw>[^\s/?#\"'<>]+)(?P<post>@)"
)
#: a URL whose user part alone is a long token (``https://<token>@github.com``)
_URL_TOKEN_USER = re.compile(
    r"(?P<pre>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*+://)"
    r"(?P<tok>(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])"
    r"[A-Za-z0-9_-]{20,})(?P<post>@)"
)
_QUERY = re.compile(
    r"(?P<pre>[?&;](?:access_token|id_token|refresh_token|token|auth|api_key|apikey|key|sig"
    r"|signature|secret|password|passwd|client_secret|code|X-Amz-Signature|X-Amz-Credential"
    r"|X-Amz-Security-Token|X-Goog-Signature|X-Goog-Credential|AWSAccessKeyId)=)"
    r"(?P<v>[^&#\s\"'<>]+)",
    re.I,
)
_AUTH_HEADER = re.compile(
    r"(?P<pre>\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?:bearer|token|basic|digest|negotiate|ntlm|aws4-hmac-sha256|apikey)\s+)?)"
    r"(?P<v>[^\s\"',;][^\"'\r\n]*)",
    re.I,
)
_BEARER = re.compile(r"(?P<pre>\b(?:bearer|token)\s+)(?P<v>[A-Za-z0-9._~+/=-]{16,})", re.I)
_GITHUB = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|v1\.[0-9a-f]{40})\b"
)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b")
_AWS_SECRET_NEAR = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_PAIR_WINDOW = 200
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_VENDOR = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35}|npm_[A-Za-z0-9]{36}"
    r"|pypi-AgE[A-Za-z0-9_-]{20,}|glpat-[A-Za-z0-9_-]{20})"
)
#: the begin line of a private key, then everything to its end line (or, truncated, the end)
_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
    re.S,
)


def _kv_sub(m: re.Match[str]) -> str:
    name = m.group("name")
    if not (_SECRET_NAME_END.search(name) or _ENV_KEY_NAME.fullmatch(name)):
        return m.group(0)
    value = m.group("qv") if m.group("q") is not None else m.group("bv")
    if value is None or value.startswith((MASK, "${")):
        return m.group(0)
    q = m.group("q") or ""
    return f"{m.group('pre')}{q}{MASK}{q}"


def _keep_pre(m: re.Match[str]) -> str:
    return m.group("pre") + MASK + (m.groupdict().get("post") or "")


def _userinfo_sub(m: re.Match[str]) -> str:
    return m.group(0) if m.group("pw") == MASK else _keep_pre(m)


def _aws_pairs(text: str) -> str:
    """A 40-character secret key near an access key id is the other half of the pair."""
    spans: list[tuple[int, int]] = []
    for key in _AWS_KEY_ID.finditer(text):
        lo = max(0, key.start() - _AWS_PAIR_WINDOW)
        hi = min(len(text), key.end() + _AWS_PAIR_WINDOW)
        for cand in _AWS_SECRET_NEAR.finditer(text, lo, hi):
            value = cand.group(0)
            if re.fullmatch(r"[0-9a-f]{40}", value):  # a commit SHA, not a key
                continue
            spans.append(cand.span())
    for start, end in sorted(set(spans), reverse=True):
        text = text[:start] + MASK + text[end:]
    return _AWS_KEY_ID.sub(MASK, text)


#: applied in order; each is tested on its own in tests/unit/test_redact_patterns.py.
#: Every pattern starts only at the start of a run of its characters and takes names and
#: schemes possessively, so the time is linear in the text (100 kB of ``a.a.a…`` or
#: ``a_a_a…``: about 0.1 s), never the quadratic blow-up a lazy prefix gives.
PATTERNS: list[tuple[str, Any]] = [
    ("private key", lambda t: _PEM.sub(MASK, t)),
    ("jwt", lambda t: _JWT.sub(MASK, t)),
    ("github token", lambda t: _GITHUB.sub(MASK, t)),
    ("vendor token", lambda t: _VENDOR.sub(MASK, t)),
    ("aws key pair", _aws_pairs),
    ("url password", lambda t: _URL_USERINFO.sub(_userinfo_sub, t)),
    ("url token user", lambda t: _URL_TOKEN_USER.sub(_keep_pre, t)),
    ("authorization header", lambda t: _AUTH_HEADER.sub(_keep_pre, t)),
    ("bearer or token word", lambda t: _BEARER.sub(_keep_pre, t)),
    ("query-string token", lambda t: _QUERY.sub(_keep_pre, t)),
    ("secret name = value", lambda t: _KV.sub(_kv_sub, t)),
]


def mask_patterns(text: str) -> str:
    """Only the shape layer: for text whose writer knows no registered secret."""
    for _, apply in PATTERNS:
        text = apply(text)
    return text


# -- the known values ---------------------------------------------------------------------


def secret_parts(value: str) -> set[str]:
    """The parts of one secret that could appear on their own: the value, and for a URL or
    conninfo string its password and ``user:password``, decoded as well as encoded."""
    parts = {value}
    for url in re.findall(r"(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*+://[^\s\"'<>]+", value):
        try:
            split = urlsplit(url)
        except ValueError:
            continue
        netloc = split.netloc
        if "@" not in netloc:
            continue
        userinfo = netloc.rsplit("@", 1)[0]
        parts.add(userinfo)
        parts.add(unquote(userinfo))
        user, _, password = userinfo.partition(":")
        if password:
            parts |= {password, unquote(password)}
            parts.add(f"{unquote(user)}:{unquote(password)}")
        elif len(user) >= 16:  # a token standing in the user's place
            parts |= {user, unquote(user)}
    for m in re.finditer(r"\bpassword\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))", value, re.I):
        parts.add(m.group(1) if m.group(1) is not None else m.group(2))
    scheme = re.fullmatch(r"\s*(bearer|token|basic)\s+(\S+)\s*", value, re.I)
    if scheme:  # an Authorization header's value: the credential is the secret
        parts.add(scheme.group(2))
        if scheme.group(1).lower() == "basic":
            try:
                userinfo = base64.b64decode(scheme.group(2), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                userinfo = ""
            parts |= {userinfo, userinfo.partition(":")[2]}
    return {p for p in parts if _worth_registering(p)}


def encoded_forms(part: str) -> set[str]:
    """How ``part`` looks once something encoded it on the way to an artefact."""
    forms = {part, quote(part, safe=""), quote_plus(part), quote(part, safe="/:@")}
    forms |= {f.replace("%", "%%") for f in list(forms) if "%" in f}  # printf-escaped
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in list(forms)}
    forms.add(json.dumps(part)[1:-1])
    forms.add(json.dumps(part, ensure_ascii=False)[1:-1])
    raw = part.encode("utf-8")
    for offset in range(3):
        forms |= _base64_cores(raw, offset)
    return {f for f in forms if f}


def _base64_cores(raw: bytes, offset: int) -> set[str]:
    """The characters of base64(``raw``) that do not depend on its neighbours when ``raw``
    starts ``offset`` bytes into a 3-byte group: found inside any longer base64 text."""
    total = offset + len(raw)
    usable = total - total % 3  # whole groups only: the tail depends on what follows
    if usable <= offset:
        return set()
    chunk = (b"\0" * offset + raw)[:usable]
    skip = {0: 0, 1: 2, 2: 3}[offset]
    out: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        core = encode(chunk).decode("ascii")[skip:]
        if len(core) >= _B64_MIN:
            out.add(core)
    if offset == 0:  # the whole value as its own base64 string, padding and all
        out.add(base64.b64encode(raw).decode("ascii"))
        out.add(base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="))
    return out


def _worth_registering(value: str | None) -> bool:
    if not value or len(value) < _REGISTER_MIN or value == MASK:
        return False
    if value.strip().lower() in _PLACEHOLDERS or value.startswith("${"):
        return False
    return len(set(value)) > 1


def is_sensitive_name(name: str) -> bool:
    return name.upper() not in _NOT_SECRET_NAMES and SENSITIVE_NAME.search(name) is not None


class _Registry:
    """The process-wide set of known secrets and one regex that finds any of their forms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._regex: re.Pattern[str] | None = None
        self._env_seen: frozenset[tuple[str, str]] = frozenset()

    def add(self, value: str) -> None:
        new: set[str] = set()
        for part in secret_parts(value):
            new |= {f for f in encoded_forms(part) if len(f) >= _REGISTER_MIN}
        with self._lock:
            if not new <= self._forms:
                self._forms |= new
                self._regex = None

    def add_environment(self, env: Mapping[str, str]) -> None:
        items = frozenset(env.items())
        with self._lock:
            if items <= self._env_seen:
                return
            fresh = items - self._env_seen
            self._env_seen = self._env_seen | items
        for name, value in fresh:
            if is_sensitive_name(name):
                self.add(value)
            elif "://" in value and "@" in value:  # credentials in any URL, whatever the name
                for part in secret_parts(value) - {value}:
                    self.add(part)

    def regex(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._regex is None and self._forms:
                self._regex = _literal_regex(self._forms)
            return self._regex

    def __contains__(self, value: str) -> bool:
        return value in self._forms


def _literal_regex(forms: Iterable[str]) -> re.Pattern[str]:
    alts = []
    for f in sorted(forms, key=len, reverse=True):
        esc = re.escape(f)
        # short values only as whole tokens: 'pw12' must not eat 'pw123abc'
        alts.append(esc if len(f) >= _SUBSTRING_MIN else rf"(?<![A-Za-z0-9]){esc}(?![A-Za-z0-9])")
    return re.compile("|".join(alts))


_PROCESS = _Registry()


class Redactor:
    """Masks registered secrets (in every encoded form) and well-known secret shapes.

    ``shared`` (the default) registers into, and masks with, the process-wide registry, so
    a secret a map registered is masked by every redactor of the process; it also reads
    the process environment for sensitive values. ``shared=False`` keeps a private registry
    (tests of one pattern, one value).
    """

    def __init__(self, secrets: Iterable[str] | None = None, *, shared: bool = True) -> None:
        self._registry = _PROCESS if shared else _Registry()
        if shared:
            self._registry.add_environment(os.environ)
        for s in secrets or ():
            self.add(s)

    def add(self, value: str | None) -> None:
        if value:
            self._registry.add(value)

    def add_env(self, name: str, value: str | None) -> None:
        """A value read through ``${name}``: a secret if the name says so, and the
        credentials inside it (a URL's password) whatever the name."""
        if not value:
            return
        if is_sensitive_name(name):
            self.add(value)
        else:
            for part in secret_parts(value) - {value}:
                self.add(part)

    def add_environment(self, env: Mapping[str, str]) -> None:
        self._registry.add_environment(env)

    def knows(self, value: str) -> bool:
        return value in self._registry

    def holds_known_secret(self, text: str) -> bool:
        """Whether ``text`` contains a registered secret in any of its forms."""
        regex = self._registry.regex()
        return bool(text) and regex is not None and regex.search(text) is not None

    def __call__(self, text: str) -> str:
        return self.text(text)

    def text(self, text: str) -> str:
        if not text or not isinstance(text, str):
            return text
        regex = self._registry.regex()
        if regex is not None:
            text = regex.sub(MASK, text)
        return mask_patterns(text)

    def data(self, obj: Any) -> Any:
        """Redact every string inside JSON-like data, dictionary keys included."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self.data(v) for k, v in obj.items()
            }
        if isinstance(obj, list | tuple):
            return [self.data(v) for v in obj]
        return obj


def carries_mask(obj: Any) -> bool:
    """Whether redaction replaced something in this data: an action read back from a saved
    context with a masked value must not be applied (it would set the mask, not the secret)."""
    if isinstance(obj, str):
        return MASK in obj
    if isinstance(obj, dict):
        return any(carries_mask(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return any(carries_mask(v) for v in obj)
    return False


# -- the boundary: the few places where data leaves the process ---------------------------


def boundary() -> Redactor:
    """The process's redactor: registered secrets of every map loaded, the environment."""
    return Redactor()


def write_text(path: Path, text: str) -> None:
    """Write an artefact (report, summary, PR body, committed file) redacted, atomically."""
    atomic_write(path, boundary().text(text))


def write_json(path: Path, data: Any) -> None:
    """Write JSON data with every string in it redacted, atomically."""
    atomic_write_json(path, boundary().data(data))


def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask a log record's message and traceback once, where it is made."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: the handler reports it as it would
        return record
    red = boundary()
    record.msg, record.args = red.text(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = red.text(record.exc_text)
    return record


def install_log_redaction() -> None:
    """Every log record made in this process, by any logger, is redacted as it is made
    (a record factory sees all of them; a handler filter would miss handlers added later)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "rootloop_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _redact_record(current(*args, **kwargs))

    factory.rootloop_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class RedactingStream:
    """A text stream that redacts what goes through it, a whole line at a time (a secret is
    never split between two writes it would slip through), the rest on ``flush``."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            cut = self._pending.rfind("\n") + 1
            if cut:
                done, self._pending = self._pending[:cut], self._pending[cut:]
                self._stream.write(boundary().text(done))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._stream.write(boundary().text(self._pending))
                self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding…
        return getattr(self._stream, name)


def install_output_redaction() -> None:
    """For a command-line process: its log records, stdout and stderr all pass the boundary."""
    import sys

    install_log_redaction()
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)  # type: ignore[assignment]
