"""What produced a result: settings, the models that really ran, software and the git commit."""

import platform
import subprocess
import time
from functools import cache
from pathlib import Path

from agent.context import Context
from agent.provenance import ModelProvenance, software_versions

PACKAGES = (
    "behavior-agent",
    "torch",
    "torchvision",
    "transformers",
    "bitsandbytes",
    "mediapipe",
    "decord",
    "numpy",
    "opencv-python-headless",
    "faiss-cpu",
    "sentence-transformers",
    "langgraph",
    "pydantic",
)
_REPO = Path(__file__).resolve().parents[2]


def provenance(
    task,
    models: ModelProvenance,
    ctx: Context,
    *,
    workers: int,
    limit: int | None,
) -> dict:
    """run.json contents (without timings, which the runner adds).

    `models` is the record of the predictor that ran the items (`predictor_provenance`).
    """
    commit, dirty = git_state()
    return {
        "task": task.name,
        "task_file": str(task.path),
        "annotations": str(task.annotations_path),
        "media_root": str(task.media_root),
        "task_spec": task.spec.model_dump(mode="json"),
        "labels": task.scored_labels,
        "backend": models.backend,
        "model_id": models.model_id,
        "quantization": models.quantization,
        "models": [m.model_dump() for m in models.models],
        "settings": ctx.as_dict(),
        "workers": workers,
        "limit": limit,
        "versions": versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "host": platform.node(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@cache
def versions() -> dict[str, str]:
    return software_versions(PACKAGES)


@cache
def git_state() -> tuple[str, bool | None]:
    """(commit, has uncommitted changes to tracked files) of the checkout the code runs from;
    ("unknown", None) for an installed package or without git."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, dirty


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=20, check=True
    )
    return result.stdout.strip()
