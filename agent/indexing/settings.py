"""The settings fingerprint of an indexed video: what it was built with, and whether a new
request can reuse it (a change to any of these re-indexes the video, saying which changed)."""

import hashlib
import importlib.metadata
from pathlib import Path
from typing import Any

from agent.context import Context
from agent.index import VideoRecord
from agent.provenance import (
    PERCEPTION_BACKEND,
    installed_model_records,
    vlm_backend,
    vlm_label,
    vlm_model_id,
)

INDEX_FORMAT = 3  # bump when the clip text or stored layout changes (forces re-indexing)
# Settings that change what indexing produces; a change to any of these re-indexes a video.
PERCEPTION_SETTINGS = (
    "sample_fps",
    "clip_length_s",
    "clip_overlap_s",
    "min_clip_s",
    "shot_threshold",
    "decode_max_side",
    "learned_models",
    "object_fps",
    "min_object_score",
    "calibrate_confidence",
    "stretch_s",
)
VLM_SETTINGS = (
    "model_id",
    "quantization",
    "describe_fps",
    "max_frames_per_call",
    "max_visual_tokens",
    "max_new_tokens",
)


def index_settings(ctx: Context, embedder, visual_embedder, vlm, kb) -> dict[str, Any]:
    """What a stored index was built with: settings and model versions (JSON-ready)."""
    settings: dict[str, Any] = {k: getattr(ctx, k) for k in PERCEPTION_SETTINGS}
    settings["format"] = INDEX_FORMAT
    # What the VLM object says it is (agent.provenance), not what the settings asked for.
    settings["backend"] = vlm_backend(vlm) if vlm is not None else PERCEPTION_BACKEND
    settings["perception"] = _perception_version()
    settings["learned"] = _learned_models(ctx)
    settings["knowledge"] = _knowledge_version(kb)
    settings["embed_model"] = f"{embedder.name} [{embedder.version}]"
    settings["visual_embed_model"] = (
        f"{visual_embedder.name} [{visual_embedder.version}]" if visual_embedder else ""
    )
    if vlm is not None:
        settings.update({k: getattr(ctx, k) for k in VLM_SETTINGS})
        settings["model_id"] = vlm_model_id(vlm)
        version = getattr(vlm, "version", None)
        settings["vlm"] = vlm_label(vlm) + (f" [{version}]" if version else "")
    return settings


def reuse_reason(existing: VideoRecord | None, settings: dict[str, Any]) -> str | None:
    """None when `existing` can be reused as it is; otherwise why it must be (re)built.

    An index made with VLM captions also serves a perception-only request (it is a superset).
    """
    if existing is None:
        return "not indexed yet"
    if existing.status != "complete":
        return "the previous indexing run did not finish"
    stored = existing.settings
    keys = set(stored) | set(settings)
    if settings.get("backend") == PERCEPTION_BACKEND and stored.get("backend") not in (
        None,
        PERCEPTION_BACKEND,
    ):
        keys -= {*VLM_SETTINGS, "vlm", "backend"}
    changes = [
        f"{k} changed from {stored.get(k)!r} to {settings.get(k)!r}"
        for k in sorted(keys)
        if stored.get(k) != settings.get(k)
    ]
    return "; ".join(changes) or None


def caption_cache_key(settings: dict[str, Any]) -> str:
    """The key of a video's cached VLM captions: the settings that change what the model says."""
    return _settings_key({k: settings.get(k) for k in (*VLM_SETTINGS, "vlm", "knowledge")})


def _settings_key(values: dict[str, Any]) -> str:
    return hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()[:16]


def _perception_version() -> str:
    """mediapipe's version plus a hash of the perception code and its YAML thresholds."""
    try:
        mediapipe = importlib.metadata.version("mediapipe")
    except importlib.metadata.PackageNotFoundError:
        mediapipe = "absent"
    folder = Path(__file__).resolve().parents[1] / "perception"
    digest = hashlib.sha256()
    for source in sorted([*folder.rglob("*.py"), *folder.rglob("*.yaml")]):
        digest.update(str(source.relative_to(folder)).encode() + source.read_bytes())
    return f"mediapipe=={mediapipe} rules:{digest.hexdigest()[:12]}"


def _learned_models(ctx: Context) -> str:
    """The learned models installed for perception (id and sha256 from each model's
    provenance.json), read without importing perception: installing or updating a model
    re-indexes, as its detections change."""
    if not ctx.learned_models:
        return "off"
    installed = []
    for folder, record in installed_model_records(Path(ctx.models_dir)):
        try:
            installed.append(f"{record['id']}:{record['sha256'][:12]}")
        except (KeyError, TypeError):
            installed.append(f"{folder.name}:unreadable")
    return ", ".join(installed) or "none installed"


def _knowledge_version(kb) -> str:
    """Hash of the knowledge-base files (detector thresholds live there as data)."""
    folder = getattr(kb, "folder", None)
    if folder is None:
        return "none" if kb is None else f"classes:{len(kb)}"
    digest = hashlib.sha256()
    for item in sorted(Path(folder).rglob("*.yaml")):
        digest.update(str(item.relative_to(folder)).encode() + item.read_bytes())
    return digest.hexdigest()[:12]
