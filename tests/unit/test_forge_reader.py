"""The code reader: frames from several languages mapped to a real repository's files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rootloop.code.reader import CodeReader, SourceRef, extract_refs

TRACEBACK = """Traceback (most recent call last):
  File "/app/src/checkout/api.py", line 3, in create_order
    return price(qty, unit)
  File "/usr/lib/python3.12/site-packages/starlette/routing.py", line 74, in app
  File "/app/src/checkout/pricing.py", line 4, in price
    raise ValueError("unit price missing")
ValueError: unit price missing password=hunter2hunter2
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "src/checkout").mkdir(parents=True)
    (tmp_path / "src/checkout/api.py").write_text(
        "from .pricing import price\n\ndef create_order(qty, unit):\n    return price(qty, unit)\n"
    )
    (tmp_path / "src/checkout/pricing.py").write_text(
        "".join(f"# line {n}\n" for n in range(1, 4))
        + "def price(qty, unit):  # DSN password=hunter2hunter2\n"
        + "".join(f"# line {n}\n" for n in range(5, 21))
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/pricing.py").write_text("# a decoy with the same file name\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def test_extracts_python_node_jvm_and_go_frames():
    text = TRACEBACK + (
        "    at handler (/srv/app/routes/orders.js:42:13)\n"
        "\tat com.acme.Checkout.total(Checkout.java:88)\n"
        "main.go:17: panic: nil map\n"
    )
    refs = extract_refs(text)
    assert refs[0] == SourceRef(path="/app/src/checkout/api.py", line=3, function="create_order")
    paths = [(r.path, r.line) for r in refs]
    assert ("/srv/app/routes/orders.js", 42) in paths
    assert ("Checkout.java", 88) in paths and ("main.go", 17) in paths
    assert len(paths) == len(set(paths))


def test_reads_snippets_around_each_frame_and_redacts(repo: Path):
    snippets = CodeReader(repo, context=2).read(TRACEBACK)
    # the starlette frame is not in this repository and is skipped
    assert [(s.path, s.ref.line) for s in snippets] == [
        ("src/checkout/api.py", 3),
        ("src/checkout/pricing.py", 4),
    ]
    pricing = snippets[1]
    assert (pricing.start, pricing.end) == (2, 6)
    assert "> 4 | def price(qty, unit):" in pricing.text
    assert "hunter2" not in pricing.text


def test_never_reads_outside_the_repository(repo: Path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.py"
    outside.write_text("TOKEN = 1\n")
    reader = CodeReader(repo)
    assert reader.snippet(SourceRef(path=str(outside), line=1)) is None
    assert reader.snippet(SourceRef(path="../../etc/passwd", line=1)) is None


def test_reads_the_deployed_commit_not_the_working_tree(repo: Path):
    env = ["-c", "user.name=d", "-c", "user.email=d@e"]
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), *env, "commit", "-qm", "i"], check=True)
    deployed = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    (repo / "src/checkout/api.py").write_text("changed since the deploy\n")
    snip = CodeReader(repo, ref=deployed, context=1).snippet(
        SourceRef(path="/app/src/checkout/api.py", line=3)
    )
    assert snip is not None and "def create_order" in snip.text
