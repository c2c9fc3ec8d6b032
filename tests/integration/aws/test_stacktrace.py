"""Stack-trace parsing (pure): Python chains, JVM 'Caused by', line-per-event assembly."""

from __future__ import annotations

from rootloop.analysis.stacktrace import Frame, assemble, parse

PY_CHAIN = """Traceback (most recent call last):
  File "/app/db.py", line 10, in connect
    sock.connect(addr)
ConnectionRefusedError: [Errno 111] Connection refused

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/worker.py", line 42, in handle
    result = process(msg)
  File "/app/db.py", line 12, in connect
    raise DatabaseError("db down")
app.errors.DatabaseError: db down"""

JVM = """2026-11-27 10:00:00 ERROR [main] c.f.App - request failed
java.lang.IllegalStateException: could not load cart
\tat com.shop.CartService.load(CartService.java:88)
\tat com.shop.CartController.get(CartController.java:31)
Caused by: java.sql.SQLTimeoutException: timeout after 30000ms
\tat org.postgresql.jdbc.PgStatement.execute(PgStatement.java:404)
\t... 12 more"""


def test_python_chain():
    t = parse(PY_CHAIN)
    assert t is not None and t.language == "python"
    assert (t.exception, t.message) == ("app.errors.DatabaseError", "db down")
    assert t.frames == [Frame("/app/worker.py", 42, "handle"), Frame("/app/db.py", 12, "connect")]
    assert t.top_frame == Frame("/app/db.py", 12, "connect")
    assert t.root.exception == "ConnectionRefusedError"


def test_jvm_caused_by():
    t = parse(JVM)
    assert t is not None and t.language == "jvm"
    assert t.exception == "java.lang.IllegalStateException"
    assert t.frames[0] == Frame("CartService.java", 88, "com.shop.CartService.load")
    assert t.root.exception == "java.sql.SQLTimeoutException"
    assert t.root.message == "timeout after 30000ms"


def test_plain_text_is_not_a_trace():
    assert parse("ERROR something failed: code 3") is None


def test_assemble_glues_lines_per_stream():
    lines = PY_CHAIN.splitlines()
    events = [(None, "a", "INFO start"), (None, "b", "INFO other stream")]
    events += [(None, "a", ln) for ln in lines]
    events += [(None, "a", "INFO after")]
    records = list(assemble(events))
    texts = [r.text for r in records]
    assert "INFO other stream" in texts and "INFO after" in texts
    glued = next(r for r in records if "Traceback" in r.text)
    assert glued.first_line.startswith("Traceback")  # an INFO line is not the trace's head
    assert "INFO start" in texts
    headed = list(assemble([(None, "a", "ERROR failed to handle"), *events[2:]]))
    assert headed[0].first_line == "ERROR failed to handle" and "Traceback" in headed[0].text
    assert parse(glued.text).exception == "app.errors.DatabaseError"
