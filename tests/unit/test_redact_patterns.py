"""The shape layer, one pattern at a time: what it masks, and what it must leave alone.

Every case runs with a private registry (``shared=False``), so only the patterns act.
"""

from __future__ import annotations

import pytest

from rootloop.redact import MASK, PATTERNS, Redactor, mask_patterns

SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def red(text: str) -> str:
    return Redactor(shared=False).text(text)


# (text, the secret that must be gone, what must remain)
MASKED = [
    # quoted JSON keys, and their Python and escaped-JSON spellings
    ('{"password": "hunter2!x"}', "hunter2!x", '"password": "***"'),
    ('{"secret":"s3cr3tvalue"}', "s3cr3tvalue", '"secret":"***"'),
    ('{"token": "abc.def-123"}', "abc.def-123", '"token"'),
    ('{"api_key": "k-998877"}', "k-998877", '"api_key"'),
    ('{"apiKey": "k-998877"}', "k-998877", '"apiKey"'),
    ('{"access_token": "at-7788"}', "at-7788", "access_token"),
    ('{"refresh_token": "rt-7788"}', "rt-7788", "refresh_token"),
    ('{"client_secret": "cs-7788"}', "cs-7788", "client_secret"),
    ('{"private_key": "pk-7788"}', "pk-7788", "private_key"),
    ('{"SecretAccessKey": "sak-778899"}', "sak-778899", "SecretAccessKey"),
    ('{"SessionToken": "st-778899"}', "st-778899", "SessionToken"),
    ("{'password': 'py repr pw'}", "py repr pw", "'password': '***'"),
    ('{\\"password\\": \\"escaped-pw\\"}', "escaped-pw", '\\"password\\"'),
    ('"db_password" : "spaced-pw"', "spaced-pw", "db_password"),
    # NAME=value / NAME: value, environment and config style
    ("DB_PASSWORD=pw-0099 next", "pw-0099", "DB_PASSWORD=*** next"),
    ("PGPASSWORD=pw-0099", "pw-0099", "PGPASSWORD="),
    ("MYSQL_ROOT_PASSWD=pw-0099", "pw-0099", "MYSQL_ROOT_PASSWD="),
    ("DB_PWD=pw-0099", "pw-0099", "DB_PWD="),
    ("JWT_SECRET=js-0099", "js-0099", "JWT_SECRET="),
    ("SLACK_TOKEN: st-0099", "st-0099", "SLACK_TOKEN: ***"),
    ("STRIPE_KEY=sk-0099x", "sk-0099x", "STRIPE_KEY="),
    ("SIGNING_KEY=sig-0099", "sig-0099", "SIGNING_KEY="),
    ("GOOGLE_CREDENTIALS=cred-0099", "cred-0099", "GOOGLE_CREDENTIALS="),
    ("password = 'quoted value'", "quoted value", "password = '***'"),
    ('passphrase="long pass phrase"', "long pass phrase", "passphrase="),
    ("X-Api-Key: hdr-0099", "hdr-0099", "X-Api-Key: ***"),
    ("DB_PASS=pw-0099", "pw-0099", "DB_PASS=***"),
    ("secret_key: yaml-0099", "yaml-0099", "secret_key: ***"),
    ("license_key = lic-0099", "lic-0099", "license_key"),
    ("AccountName=acct;AccountKey=az-0099==;EndpointSuffix=x", "az-0099", "AccountName=acct"),
    ("Cookie: session=ck-0099; theme=dark", "ck-0099", "Cookie: ***"),
    ("Set-Cookie: sid=ck-0099; Path=/", "ck-0099", "Set-Cookie"),
    ("infra fix - set DB_PASSWORD=act-0099 on payments-api", "act-0099", "on payments-api"),
    ("X-Auth-Token: hdr-0099", "hdr-0099", "X-Auth-Token"),
    ("host=db user=app password=cn-0099 dbname=p", "cn-0099", "dbname=p"),
    ("aws_secret_access_key = " + AWS_SECRET, AWS_SECRET, "aws_secret_access_key = ***"),
    ("AWS_SECRET_ACCESS_KEY=" + AWS_SECRET, AWS_SECRET, "AWS_SECRET_ACCESS_KEY="),
    ("GITHUB_TOKEN=" + SHA, SHA, "GITHUB_TOKEN="),
    # query strings
    ("GET /cb?access_token=qs-0099&page=2", "qs-0099", "&page=2"),
    ("https://h/x?a=1&token=qs-0099", "qs-0099", "?a=1&token=***"),
    ("https://h/x?sig=qs%2F0099&se=2030", "qs%2F0099", "&se=2030"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Signature=abcdef0123", "abcdef0123", "X-Amz-Signature"),
    ("?X-Amz-Credential=AKIA/20240101/us-east-1/s3", "AKIA/20240101", "X-Amz-Credential"),
    ("?X-Amz-Security-Token=FwoGZXIvYXdzEJr", "FwoGZXIvYXdzEJr", "X-Amz-Security-Token"),
    ("https://maps/api?key=AIzaKeyKey0099&q=x", "AIzaKeyKey0099", "&q=x"),
    ("?client_secret=cs-0099", "cs-0099", "client_secret="),
    # Authorization headers
    ("Authorization: Bearer abc.def.ghi-0099", "abc.def.ghi-0099", "Authorization: Bearer ***"),
    ("Authorization: token " + SHA, SHA, "Authorization: token ***"),
    ("authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "authorization: Basic"),
    ('"Authorization": "Bearer json-0099"', "json-0099", '"Authorization"'),
    ("Proxy-Authorization: Basic cHJveHk6cHc=", "cHJveHk6cHc=", "Proxy-Authorization"),
    (
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x, Signature=fe5f80f77d5fa3beca",
        "fe5f80f77d5fa3beca",
        "AWS4-HMAC-SHA256",
    ),
    ("curl -H 'Authorization: Bearer tok-0099-aa' https://x", "tok-0099-aa", "curl -H"),
    ("used bearer abcdefghijklmnop0099 to call", "abcdefghijklmnop0099", "to call"),
    # GitHub tokens, classic and fine-grained
    ("ghp_" + "a" * 10 + "B1c2D3e4F5g6H7i8J9k0L1m2n3", "ghp_", "x"),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F", "x"),
    ("token ghs_16C7e42F292c6912E7710c838347Ae178B4a!", "ghs_16C7", "!"),
    ("ghu_16C7e42F292c6912E7710c838347Ae178B4a", "ghu_16C7", "x"),
    ("ghr_16C7e42F292c6912E7710c838347Ae178B4a", "ghr_16C7", "x"),
    (
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW",
        "github_pat_11ABC",
        "x",
    ),
    ("https://x-access-token:" + SHA + "@github.com/o/r.git", SHA, "x-access-token:***@github.com"),
    ("https://ghp_abcdefghij0123456789ABCDEFGHIJ012345@github.com", "ghp_abc", "@github.com"),
    # AWS
    (AWS_ID + " " + AWS_SECRET, AWS_SECRET, "x"),
    (f"{AWS_ID},{AWS_SECRET}", AWS_ID, "x"),
    (f"access key {AWS_ID}", AWS_ID, "access key ***"),
    ("ASIAY34FZKBOKMUTVV7A is a session key", "ASIAY34FZKBOKMUTVV7A", "is a session key"),
    (f'{{"AccessKeyId": "{AWS_ID}", "SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET, "x"),
    # JWT
    (f"session {JWT} expired", JWT, "session *** expired"),
    (f"cookie id={JWT};", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "cookie"),
    # private keys, whole or cut off
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----\nafter",
        "MIIEowIBAAKCAQEA7",
        "after",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n"
        "-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjE",
        "x",
    ),
    # cut off (a log line's limit): masked to the end, fail closed
    ("-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhk\\n", "MIIEvQIBADANBgkqhk", "***"),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB (truncated log", "MHcCAQEEIB", "***"),
    (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
        "lQOYBF",
        "x",
    ),
    # DSN and URL passwords, any scheme
    ("postgresql://app:pg-pw-0099@db:5432/p", "pg-pw-0099", "postgresql://app:***@db:5432/p"),
    ("postgres://app:pg%40pw@db/p", "pg%40pw", "@db/p"),
    ("redis://:redis-pw-0099@cache:6379/0", "redis-pw-0099", "redis://:***@cache"),
    ("rediss://default:redis-pw-0099@cache:6380", "redis-pw-0099", "rediss://default:***@"),
    ("mysql://root:my-pw-0099@db/x", "my-pw-0099", "mysql://root:***@db/x"),
    ("amqp://guest:mq-pw-0099@rabbit:5672/", "mq-pw-0099", "amqp://guest:***@rabbit"),
    ("mongodb+srv://u:mongo-pw-0099@cluster0.x.net", "mongo-pw-0099", "mongodb+srv://u:***@"),
    ("https://user:web-pw-0099@example.com/path", "web-pw-0099", "https://user:***@example.com"),
    ("postgresql://app:p@ss@word@db/p", "p@ss@word", "@db/p"),
    ('dsn="postgresql://a:quoted-pw@db/p"', "quoted-pw", "postgresql://a:***@db/p"),
    # other vendors' tokens
    ("xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "xoxb-1234", "x"),
    ("sk-ant-api03-abcdefghijklmnopqrstuvwx", "sk-ant-api03", "x"),
    ("sk-proj-abcdefghijklmnopqrstuvwx", "sk-proj-abc", "x"),
    ("sk_live_abcdefghijklmnop1234", "sk_live_abc", "x"),
    ("AIzaSyD-abcdefghijklmnopqrstuvwxyz0123456", "AIzaSyD", "x"),
    ("npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_abcdef", "x"),
    ("glpat-abcdefghijklmnopqrst", "glpat-abc", "x"),
]


@pytest.mark.parametrize(("text", "secret", "kept"), MASKED, ids=[c[0][:40] for c in MASKED])
def test_masks(text: str, secret: str, kept: str) -> None:
    out = red(text + " x")
    assert secret not in out, out
    assert MASK in out
    assert kept in out, out


# text that looks close to a secret but is evidence a reviewer needs: left as it is
KEPT = [
    f"commit {SHA} fixed the pool",
    f"Revert {SHA[:12]}: reverts commit {SHA}.",
    f"deployed {SHA} to lab",
    "usage: input_tokens=1234 output_tokens=56 max_tokens=4096",
    '{"tokens": 12, "max_tokens": 4096}',
    'FATAL: password authentication failed for user "postgres"',
    "token budget exceeded",
    "password:\n  nested: 1",
    "Authorization:\n  roles: [admin]",
    "redis://127.0.0.1:6379/0",
    "http://127.0.0.1:8080/health?verbose=1",
    "ssh://git@github.com/o/r.git",
    "postgresql://app@db:5432/payments",
    "cache key: payment:42",
    "partition_key=merchant_id",
    "idempotency_key=order-42",
    "bypass=true",
    "KEYS * returned 12 keys",
    "OOMKilled: exit code 137",
    "password=${DB_PASSWORD}",
    "DB_PASSWORD=***",
    "the secret of a good batch size is 100",
    "Authentication: ok",
    "eyJhbGciOiJIUzI1NiJ9 alone is only a header",
    "AKIA is a prefix, AKIAshort is not a key",
    "arn:aws:iam::123456789012:role/payments",
    "sha256:" + "ab" * 32,
]


@pytest.mark.parametrize("text", KEPT)
def test_leaves_evidence_alone(text: str) -> None:
    assert red(text) == text


def test_every_pattern_is_named_and_idempotent() -> None:
    names = [name for name, _ in PATTERNS]
    assert len(names) == len(set(names))
    for text, _, _ in MASKED:
        once = mask_patterns(text)
        assert mask_patterns(once) == once, text


def test_a_commit_sha_next_to_an_access_key_id_is_still_a_sha() -> None:
    out = red(f"{AWS_ID} deployed in commit {SHA}")
    assert AWS_ID not in out and SHA in out


def test_data_masks_nested_values_and_keys() -> None:
    data = {"cfg": [{"DB_PASSWORD=pw-0099": "postgresql://a:b-pw-0099@h/d"}], "n": 3}
    out = Redactor(shared=False).data(data)
    assert "pw-0099" not in str(out)
    assert out["n"] == 3
