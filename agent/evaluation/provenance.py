"""What produced a result: settings, model ids, software versions and the git commit."""

import platform
import subprocess
import sys
import time
from functools import cache
from importlib import metadata
from pathlib import Path

from agent.context import Context

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


def provenance(task, backend: str, ctx: Context, *, workers: int, limit: int | None) -> dict:
    """run.json contents (without timings, which the runner adds)."""
    commit, dirty = git_state()
    return {
        "task": task.name,
        "task_file": str(task.path),
        "annotations": str(task.annotations_path),
        "media_root": str(task.media_root),
        "task_spec": task.spec.model_dump(mode="json"),
        "labels": task.scored_labels,
        "backend": backend,
        "model_id": model_id(backend, ctx),
        "settings": ctx.as_dict(),
        "workers": workers,
        "limit": limit,
        "versions": versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "host": platform.node(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def model_id(backend: str, ctx: Context) -> str:
    """The model a backend runs: mediapipe's bundled holistic models, or the VLM checkpoint."""
    if backend == "perception":
        return f"mediapipe-holistic=={_version('mediapipe')}"
    return f"{ctx.model_id} (quantization={ctx.quantization})"


@cache
def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    found.update({name: _version(name) for name in PACKAGES})
    return found


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


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
