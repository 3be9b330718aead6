"""BERT sentence encoder in NumPy: mean-pooled unit vectors from a sentence-transformers folder.

It loads in about 0.1 s, where sentence-transformers needs seconds to import torch,
transformers and scikit-learn, so a command that embeds one question stays fast. It covers
folders laid out as the default MiniLM is (a BERT `model.safetensors`, `tokenizer.json`, mean
pooling); `supports()` says whether a folder qualifies, and `agent.embed` falls back to
sentence-transformers for anything else. Outputs equal sentence-transformers' to float32
rounding (tests/test_index_embed.py compares them); bulk throughput is about half of torch's,
which only indexing notices, next to perception's far larger cost.
"""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
# Texts per forward pass: small batches keep the attention matrices in cache (measured: 16
# is ~1.6x faster than 64 on 2 cores).
BATCH = 16
# One BLAS thread for these small products. OpenBLAS's own threads spin-wait, and with
# mediapipe or another process on the other core they cost far more than they save (measured
# on 2 cores under load: one question 420-500 ms with 2 threads, 13 ms with 1; 200 phrases
# 11.5-14.2 s against 1.9-2.4 s).
_BLAS_THREADS = 1
# Abramowitz & Stegun 7.1.26: erf to 1.5e-7 absolute, below float32 resolution near 1.
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def supports(folder: Path) -> bool:
    """True when `folder` is a BERT sentence-transformers model with plain mean pooling."""
    try:
        modules = [m["type"] for m in _json(folder / "modules.json")]
        config = _json(folder / "config.json")
        pooling = _json(folder / "1_Pooling" / "config.json")
        _json(folder / "sentence_bert_config.json")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode")}
    return (
        modules in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE])
        and config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and modes.get("pooling_mode_mean_tokens") is True
        and not any(v for k, v in modes.items() if k != "pooling_mode_mean_tokens")
        and (folder / "model.safetensors").is_file()
        and (folder / "tokenizer.json").is_file()
    )


class BertMeanEncoder:
    """Encodes texts with the BERT weights of one folder; thread-safe (no mutable state)."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = _json(folder / "config.json")
        sentence = _json(folder / "sentence_bert_config.json")
        self.dim = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = np.float32(config.get("layer_norm_eps", 1e-12))
        self._lower = bool(sentence.get("do_lower_case", False))
        weights = load_file(str(folder / "model.safetensors"))
        # A BertModel saved from a task model carries a "bert." prefix.
        self._w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in weights.items()}
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # sentence-transformers truncates at max_seq_length and pads to the longest in a batch.
        max_length = int(sentence.get("max_seq_length") or config["max_position_embeddings"])
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        self._blas = ThreadpoolController()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit rows; similar lengths are batched together."""
        out = np.zeros((len(texts), self.dim), np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        # Two threads encoding at once may leave BLAS at one thread: harmless, and intended.
        with self._blas.limit(limits=_BLAS_THREADS, user_api="blas"):
            for start in range(0, len(texts), BATCH):
                rows = order[start : start + BATCH]
                out[rows] = self._forward([texts[i] for i in rows])
        return out

    def _forward(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch([t.lower() if self._lower else t for t in texts])
        ids = np.array([e.ids for e in encoded])
        mask = np.array([e.attention_mask for e in encoded], np.float32)
        batch, length = ids.shape
        w = self._w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x.reshape(batch * length, self.dim), "embeddings.LayerNorm")
        # Padded keys get the most negative float, as transformers' BERT does.
        key_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in range(self._layers):
            x = self._layer(x, f"encoder.layer.{layer}.", batch, length, key_bias)
        tokens = x.reshape(batch, length, self.dim) * mask[:, :, None]
        pooled = tokens.sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, np.float32(1e-12))

    def _layer(self, x, prefix, batch, length, key_bias) -> np.ndarray:
        head_dim = self.dim // self._heads

        def heads(name: str) -> np.ndarray:  # (batch, heads, length, head_dim)
            projected = self._linear(x, f"{prefix}attention.self.{name}")
            return projected.reshape(batch, length, self._heads, head_dim).transpose(0, 2, 1, 3)

        query = heads("query") * np.float32(1.0 / np.sqrt(head_dim))
        scores = query @ heads("key").transpose(0, 1, 3, 2) + key_bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ heads("value")).transpose(0, 2, 1, 3).reshape(batch * length, -1)
        attended = self._linear(context, f"{prefix}attention.output.dense") + x
        x = self._norm(attended, f"{prefix}attention.output.LayerNorm")
        hidden = _gelu(self._linear(x, f"{prefix}intermediate.dense"))
        return self._norm(
            self._linear(hidden, f"{prefix}output.dense") + x, f"{prefix}output.LayerNorm"
        )

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self._w[f"{name}.weight"].T + self._w[f"{name}.bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        centred = x - x.mean(axis=-1, keepdims=True)
        scale = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + self._eps)
        return centred * scale * self._w[f"{name}.weight"] + self._w[f"{name}.bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact (erf) GELU, in float32."""
    z = np.abs(x) * np.float32(1.0 / np.sqrt(2.0))
    t = 1.0 / (1.0 + np.float32(_ERF_P) * z)
    poly = np.zeros_like(t)
    for coefficient in reversed(_ERF_A):
        poly = (poly + np.float32(coefficient)) * t
    erf = np.copysign(1.0 - poly * np.exp(-z * z), x)
    return x * (np.float32(0.5) + np.float32(0.5) * erf)


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))
