"""Known secrets: their parts, their encoded forms, and the boundary they cannot cross."""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

import rootloop
from rootloop.actions.types import SetEnvVar
from rootloop.code.editor import EditError, RunWorkspace
from rootloop.context import ContextStore, DebugContext, HistoryEntry
from rootloop.events import Event, Fanout
from rootloop.platforms.local.git import seed_repository
from rootloop.redact import (
    MASK,
    RedactingStream,
    Redactor,
    boundary,
    carries_mask,
    install_log_redaction,
    is_sensitive_name,
    secret_parts,
    write_json,
    write_text,
)


def fresh(prefix: str = "") -> str:
    """A value no other test (and no text) contains: the shared registry stays honest."""
    return prefix + secrets.token_hex(6)


def private() -> Redactor:
    return Redactor(shared=False)


# -- parts --------------------------------------------------------------------------------


def test_the_password_inside_a_dsn_is_masked_on_its_own() -> None:
    pw = f"pa:ss/w@rd+{fresh()}!"
    r = private()
    r.add_env("PG_DSN", f"postgresql://app:{quote(pw, safe='')}@db:5432/payments")
    assert r.text(f"auth failed for {pw} today") == f"auth failed for {MASK} today"
    assert pw not in r.text(f"app:{pw}")


def test_url_credentials_are_registered_whatever_the_variable_is_called() -> None:
    pw = fresh("pw-")
    r = private()
    r.add_env("DATABASE_URL", f"mysql://root:{pw}@db/x")  # the name says nothing secret
    assert pw not in r.text(f"logged in with {pw}")
    assert "db/x" in r.text("mysql://root@db/x")  # the rest of the URL is not a secret


def test_a_token_in_the_user_place_of_a_url_is_a_part() -> None:
    token = fresh("t") * 3
    assert token in secret_parts(f"https://{token}@github.com/o/r.git")


def test_the_conninfo_password_is_a_part() -> None:
    pw = fresh()
    assert pw in secret_parts(f"host=db user=app password={pw} dbname=p")
    assert pw in secret_parts(f"host=db password='{pw}'")


# -- encoded forms ------------------------------------------------------------------------


SPECIALS = 'q"u\\o/t:e@d+ &x'


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s,
        lambda s: quote(s, safe=""),
        lambda s: quote_plus(s),
        lambda s: quote(s, safe="").lower(),
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
        lambda s: json.dumps(s)[1:-1],
        lambda s: json.dumps({"v": s}),
    ],
    ids=["raw", "url", "url-plus", "url-lower", "b64", "b64url", "json-escaped", "json"],
)
def test_every_form_of_a_registered_secret_is_masked(encode) -> None:
    value = SPECIALS + fresh()
    r = private()
    r.add(value)
    out = r.text(f"before {encode(value)} after")
    assert encode(value) not in out
    assert out.startswith("before ") and out.endswith(" after")


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"user:", b"Authorization-ish "])
def test_a_secret_inside_a_longer_base64_string_is_masked_at_any_alignment(prefix: bytes) -> None:
    value = fresh("b64-secret-")
    r = private()
    r.add(value)
    blob = base64.b64encode(prefix + value.encode() + b"/tail").decode()
    out = r.text(f"Authorization: Custom {blob}")
    # the secret can no longer be decoded from what is left
    leftover = out.split()[-1].replace(MASK, "")
    assert value not in base64.b64decode(leftover + "===", validate=False).decode("latin-1")
    assert MASK in out


def test_basic_auth_of_a_dsn_user_and_password_is_masked_without_the_header() -> None:
    pw = fresh("Zq9!")
    r = private()
    r.add_env("REDIS_URL", f"redis://default:{pw}@cache:6379")
    basic = base64.b64encode(f"default:{pw}".encode()).decode()
    assert basic not in r.text(f"upstream said {basic}")


# -- what gets registered -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("DB_PASSWORD", True),
        ("PGPASSWORD", True),
        ("MYSQL_PWD", True),
        ("API_TOKEN", True),
        ("GITHUB_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AWS_ACCESS_KEY_ID", True),
        ("STRIPE_KEY", True),
        ("PG_DSN", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("PAYMENTS_API_JWT", True),
        ("PWD", False),
        ("OLDPWD", False),
        ("SSH_AUTH_SOCK", False),
        ("HOME", False),
        ("KEYBOARD", False),
        ("MONKEY_COUNT", False),  # KEY inside a word is not a word of the name
        ("PATH", False),
    ],
)
def test_sensitive_names(name: str, sensitive: bool) -> None:
    assert is_sensitive_name(name) is sensitive


def test_the_environment_is_read_for_sensitive_values(monkeypatch: pytest.MonkeyPatch) -> None:
    token, plain = fresh("tok-"), fresh("plain-")
    monkeypatch.setenv("SOME_SERVICE_TOKEN", token)
    monkeypatch.setenv("SOME_SERVICE_NAME", plain)
    out = boundary().text(f"{token} {plain}")
    assert token not in out and plain in out


def test_placeholders_and_very_short_values_are_not_registered() -> None:
    r = private()
    for value in ("testing", "changeme", "abc", "aaaaaaaa"):
        r.add(value)
    text = "load testing: changeme abc aaaaaaaa"
    assert r.text(text) == text


def test_short_secrets_are_masked_as_whole_tokens_only() -> None:
    r = private()
    r.add("pw12x")
    assert r.text("pw12x and pw12xyz") == f"{MASK} and pw12xyz"


def test_a_secret_one_redactor_registered_is_masked_by_every_other() -> None:
    value = fresh("shared-")
    Redactor().add(value)  # e.g. the map's redactor, while loading
    assert value not in boundary().text(f"x {value} y")
    assert value not in Redactor().text(value)


def test_a_map_key_that_names_a_secret_registers_its_expansion(tmp_path: Path) -> None:
    token = fresh("cfg-")
    (tmp_path / "m.yaml").write_text(
        "service: s\nupstream:\n  - name: api\n    type: http\n    skill: http-health\n"
        "    url: http://127.0.0.1:1/health\n"
        "    headers: {Authorization: 'Bearer ${CI_READ}', X-Api-Token: '${CI_KEY}'}\n"
    )
    key = fresh("key-")
    topo = rootloop.load_map(tmp_path / "m.yaml", env={"CI_READ": token, "CI_KEY": key})
    assert topo.redactor.text(f"sent {token} and {key}") == f"sent {MASK} and {MASK}"


def test_an_authorization_value_registers_its_credential() -> None:
    user_pw = f"bot:{fresh()}"
    parts = secret_parts("Basic " + base64.b64encode(user_pw.encode()).decode())
    assert user_pw in parts and user_pw.split(":")[1] in parts
    assert "abcdef123456" in secret_parts("Bearer abcdef123456")


# -- the boundary's sinks -----------------------------------------------------------------


def test_artefact_writers_redact(tmp_path: Path) -> None:
    value = fresh("file-")
    Redactor().add(value)
    write_text(tmp_path / "a.md", f"body {value}")
    write_json(tmp_path / "a.json", {"k": [value]})
    assert value not in (tmp_path / "a.md").read_text()
    assert value not in (tmp_path / "a.json").read_text()


def test_the_saved_debug_context_is_redacted_and_its_masked_action_is_recognised(
    tmp_path: Path,
) -> None:
    value = fresh("ctx-")
    Redactor().add(value)
    action = SetEnvVar(target="api", cluster="c", service="api", name="DB_PASSWORD", value=value)
    ctx = DebugContext(service="api")
    ctx.history.append(
        HistoryEntry(iteration=1, diagnosis="d", action=action.describe(), action_detail=action)
    )
    store = ContextStore(tmp_path)
    path = store.save(ctx)
    assert value not in path.read_text()
    loaded = store.load(ctx.run_id)
    assert loaded.history[0].action_detail is not None
    assert carries_mask(loaded.history[0].action_detail.model_dump(mode="json"))
    assert not carries_mask(action.model_dump(mode="json"))


def test_every_event_is_redacted_before_any_sink() -> None:
    value = fresh("evt-")
    Redactor().add(value)
    seen: list[Event] = []
    Fanout(seen.append)(Event(kind="note", run_id="r", message=value, data={"x": [value]}))
    assert value not in seen[0].model_dump_json()


def test_log_records_are_redacted_as_they_are_made() -> None:
    value = fresh("log-")
    Redactor().add(value)
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("rootloop.test.redact")
    logger.addHandler(handler)
    try:
        logger.warning("connecting with %s", value)
        try:
            raise RuntimeError(f"refused: {value}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert value not in out and "connecting with ***" in out and "RuntimeError" in out


def test_the_output_stream_redacts_a_secret_split_across_writes() -> None:
    value = fresh("out-")
    Redactor().add(value)
    sink = io.StringIO()
    stream = RedactingStream(sink)
    stream.write(f"token {value[:5]}")
    stream.write(f"{value[5:]} done\npartial {value}")
    stream.flush()
    assert value not in sink.getvalue()
    assert sink.getvalue().endswith(f"partial {MASK}")


def test_a_commit_that_would_add_a_known_secret_is_undone(tmp_path: Path) -> None:
    value = fresh("commit-secret-")
    Redactor().add(value)
    git = seed_repository(tmp_path / "work", tmp_path / "origin.git", {"app.py": "X = 1\n"})
    ws = RunWorkspace(
        git.repo, service="s", run_id="20260101-000000-ab12", base_ref="main", root=tmp_path / "w"
    )
    before = ws.open()
    (ws.path / "app.py").write_text(f"X = 1\nPASSWORD = '{value}'\n")
    with pytest.raises(EditError, match="secret"):
        ws.commit("hard-code it", "why", paths=["app.py"])
    assert ws.head() == before
    assert value not in (ws.path / "app.py").read_text()


def test_commit_messages_are_redacted(tmp_path: Path) -> None:
    value = fresh("msg-")
    Redactor().add(value)
    git = seed_repository(tmp_path / "work", tmp_path / "origin.git", {"app.py": "X = 1\n"})
    ws = RunWorkspace(
        git.repo, service="s", run_id="20260101-000000-cd34", base_ref="main", root=tmp_path / "w"
    )
    ws.open()
    (ws.path / "app.py").write_text("X = 2\n")
    result = ws.commit(f"set DB_PASSWORD={value}", f"because {value} was wrong", paths=["app.py"])
    assert value not in result.message
    assert value not in git.out("log", "-1", "--format=%B", result.sha, cwd=ws.path)
