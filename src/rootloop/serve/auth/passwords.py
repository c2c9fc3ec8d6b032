"""Password hashes with the standard library's scrypt.

Why scrypt from ``hashlib`` rather than argon2/bcrypt: it is memory-hard (the
property that makes GPU guessing expensive), it ships with CPython's OpenSSL, so
an embedded default needs no compiled extra, and the parameters travel inside
the hash, so they can be raised later without invalidating stored hashes.
Parameters: N=2^15, r=8, p=1 (32 MiB per hash), between OWASP's minimum and
its recommendation, chosen so a login costs well under a second on a small box.

    python -m rootloop.serve.auth.passwords      # prompts, prints a hash for the config
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import secrets

N, R, P = 2**15, 8, 1
_PREFIX = "scrypt"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=32
    )


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("an empty password cannot be hashed")
    salt = secrets.token_bytes(16)
    return f"{_PREFIX}${N}${R}${P}${_b64(salt)}${_b64(_derive(password, salt, N, R, P))}"


def is_hash(text: str) -> bool:
    parts = text.split("$")
    return len(parts) == 6 and parts[0] == _PREFIX and all(x.isdigit() for x in parts[1:4])


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check; a malformed stored hash verifies nothing."""
    if not is_hash(stored):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    n_, r_, p_ = int(n), int(r), int(p)
    if n_ > 2**20 or r_ > 32 or p_ > 16:  # a hostile config must not exhaust memory
        return False
    try:
        got = _derive(password, _unb64(salt), n_, r_, p_)
        want = _unb64(digest)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, want)


# A hash of a random password: verifying against it for unknown users keeps the
# time of a failed login the same whether or not the user exists.
DUMMY = hash_password(secrets.token_urlsafe(16))


def main() -> None:  # pragma: no cover - interactive
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    print(hash_password(first))


if __name__ == "__main__":  # pragma: no cover
    main()
