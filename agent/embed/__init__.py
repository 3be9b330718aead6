"""Embedders of clip texts and key frames (`agent.embed.embedders`), and the NumPy MiniLM encoder
the default text model runs on (`agent.embed.text_encoder`).

The names below are the package's face; the model code lives in `embedders.py`.
"""

from agent.embed.embedders import (
    DEFAULT_TEXT_MODEL,
    LazyEmbedder,
    SentenceEmbedder,
    TextEmbedder,
    VisualEmbedder,
    build_tiny_clip,
    ensure_loaded,
    l2_normalise,
    load_text_embedder,
    load_visual_embedder,
    pick_device,
    resolve_text_model,
)

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "LazyEmbedder",
    "SentenceEmbedder",
    "TextEmbedder",
    "VisualEmbedder",
    "build_tiny_clip",
    "ensure_loaded",
    "l2_normalise",
    "load_text_embedder",
    "load_visual_embedder",
    "pick_device",
    "resolve_text_model",
]
