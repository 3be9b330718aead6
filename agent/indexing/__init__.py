"""Indexing a video into the clip library: the pipeline (`pipeline`), a long video's stretches
(`stretches`), the words that get embedded (`texts`), and the settings fingerprint that
decides whether an index is reused (`settings`)."""

from agent.indexing.pipeline import LazyPerceiver, index_video
from agent.indexing.settings import (
    INDEX_FORMAT,
    PERCEPTION_SETTINGS,
    VLM_SETTINGS,
    index_settings,
    reuse_reason,
)
from agent.indexing.stretches import (
    StretchResult,
    merge_stretches,
    perceive_stretch,
    plan_key,
    plan_stretches,
)
from agent.indexing.texts import caption_of, clip_text, vlm_detections

__all__ = [
    "INDEX_FORMAT",
    "PERCEPTION_SETTINGS",
    "VLM_SETTINGS",
    "LazyPerceiver",
    "StretchResult",
    "caption_of",
    "clip_text",
    "index_settings",
    "index_video",
    "merge_stretches",
    "perceive_stretch",
    "plan_key",
    "plan_stretches",
    "reuse_reason",
    "vlm_detections",
]
