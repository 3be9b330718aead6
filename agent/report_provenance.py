"""Provenance of a report: video, backend and model, sampling settings, versions, time, limits."""

import importlib.metadata
import platform
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from agent.context import Context
from agent.indexing import PERCEPTION_SETTINGS
from agent.report_model import Provenance
from agent.state import VideoInfo

TEMPLATES = Path(__file__).resolve().parent / "templates"
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
# What shaped the detections (the indexing settings) plus how the report merged them.
_SAMPLING_FIELDS = (*PERCEPTION_SETTINGS, "report_merge_gap_s", "report_strong_confidence")
_VLM_SAMPLING_FIELDS = ("describe_fps", "max_frames_per_call", "max_visual_tokens")


def provenance(info: VideoInfo, ctx: Context, vlm: Any = None) -> Provenance:
    """What made this report and what it cannot tell (the video itself is in `ReportVideo`)."""
    uses_vlm = vlm is not None
    fields = _SAMPLING_FIELDS + (_VLM_SAMPLING_FIELDS if uses_vlm else ())
    limits = load_limits()
    return Provenance(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        backend="videollama3" if uses_vlm else "perception",
        model_id=_vlm_model_id(vlm, ctx) if uses_vlm else "none (no VLM loaded)",
        quantization=_vlm_quantization(vlm, ctx) if uses_vlm else "n/a",
        perception_model=f"mediapipe {_version('mediapipe')} holistic (pose, hands, face mesh)",
        sampling={name: getattr(ctx, name) for name in fields},
        software=software_versions(),
        limits=limits["always"] + limits["vlm" if uses_vlm else "perception"],
    )


def _vlm_model_id(vlm: Any, ctx: Context) -> str:
    """The checkpoint the VLM was loaded from (`videollama3:<ref>` names it), else the setting."""
    explicit = getattr(vlm, "model_id", None)
    if explicit:
        return str(explicit)
    name = str(getattr(vlm, "name", "") or "")
    return name.split(":", 1)[1] if name.startswith("videollama3:") else ctx.model_id


def _vlm_quantization(vlm: Any, ctx: Context) -> str:
    """What the loaded model really runs as ("4bit (cuda 4-bit nf4 …)"), else the setting."""
    explicit = getattr(vlm, "quantization", None)
    if explicit:
        return str(explicit)
    plan = getattr(vlm, "plan", None)
    if plan is not None and hasattr(plan, "describe"):
        return f"{plan.quantization} ({plan.describe()})"
    return ctx.quantization


@cache
def software_versions() -> dict[str, str]:
    """Python and the versions of the packages a report depends on."""
    versions = {"python": platform.python_version()}
    for name in _DISTRIBUTIONS:
        versions[name] = _version(name)
    return versions


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@cache
def load_limits() -> dict[str, list[str]]:
    """The method's limits from `templates/report_limits.yaml` (keys always/perception/vlm)."""
    with open(TEMPLATES / "report_limits.yaml", encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    return {
        key: [" ".join(str(t).split()) for t in raw.get(key, [])]
        for key in ("always", "perception", "vlm")
    }
