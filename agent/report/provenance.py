"""Provenance of a report: video, backend and model, sampling settings, versions, time, limits."""

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from agent.context import Context
from agent.indexing.settings import PERCEPTION_SETTINGS
from agent.provenance import model_provenance, software_versions
from agent.report.model import Provenance
from agent.state import VideoInfo

# The report templates sit at agent/templates/, beside this package.
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
# Software whose version changes what a report says.
_DISTRIBUTIONS = (
    "behavior-agent",
    "mediapipe",
    "decord",
    "opencv-python-headless",
    "numpy",
    "torch",
    "transformers",
    "bitsandbytes",
    "sentence-transformers",
    "faiss-cpu",
    "matplotlib",
)
# What shaped the detections (the indexing settings) plus how events were merged.
_SAMPLING_FIELDS = (
    *PERCEPTION_SETTINGS,
    "event_merge_gap_s",
    "event_min_confidence",
    "report_strong_confidence",
)
_VLM_SAMPLING_FIELDS = ("describe_fps", "max_frames_per_call", "max_visual_tokens")


def provenance(info: VideoInfo, ctx: Context, vlm: Any = None) -> Provenance:
    """What made this report and what it cannot tell (the video itself is in `ReportVideo`)."""
    models = model_provenance(vlm, ctx)
    uses_vlm = vlm is not None
    fields = _SAMPLING_FIELDS + (_VLM_SAMPLING_FIELDS if uses_vlm else ())
    limits = load_limits()
    landmarks = models.model("landmarks")
    return Provenance(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        backend=models.backend,
        model_id=models.model_id if uses_vlm else "none (no VLM loaded)",
        quantization=models.quantization,
        perception_model=(
            f"{landmarks.name} holistic (pose, hands, face mesh)" if landmarks else "none"
        ),
        models=models.models,
        sampling={name: getattr(ctx, name) for name in fields},
        software=software_versions(_DISTRIBUTIONS),
        limits=limits["always"] + limits["vlm" if uses_vlm else "perception"],
    )


@cache
def load_limits() -> dict[str, list[str]]:
    """The method's limits from `templates/report_limits.yaml` (keys always/perception/vlm)."""
    with open(TEMPLATES / "report_limits.yaml", encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    return {
        key: [" ".join(str(t).split()) for t in raw.get(key, [])]
        for key in ("always", "perception", "vlm")
    }
