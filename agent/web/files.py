"""Files of the web app: upload checks, where uploads and served files live, playable copies.

The app serves only the folders returned by `served_dirs` (uploads and the app's own
thumbnails, charts, reports and media links), all inside the data directory `ctx.home`.
"""

import logging
import os
import re
import shutil
from pathlib import Path

from agent.context import Context
from agent.errors import VideoError
from agent.video import is_image, probe, sha256_file

log = logging.getLogger(__name__)

# Containers every browser plays; anything else is shown through a converted copy.
BROWSER_CONTAINERS = {".mp4", ".webm", ".m4v", ".ogg", ".ogv", ".mov"}
# The browser preview of a video in another container: long side and frame rate caps.
PREVIEW_MAX_SIDE = 480
PREVIEW_MAX_FPS = 15
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def uploads_dir(ctx: Context) -> Path:
    """Uploaded recordings, one folder per content hash."""
    return ctx.home / "uploads"


def web_dir(ctx: Context, name: str) -> Path:
    """A folder of files the app makes (`thumbs`, `charts`, `reports`, `media`)."""
    folder = ctx.home / "web" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def served_dirs(ctx: Context) -> list[Path]:
    """The only folders the server may hand out (Gradio's `allowed_paths`)."""
    folders = [uploads_dir(ctx), ctx.home / "web"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return [f.resolve() for f in folders]


def check_upload_size(path: Path, ctx: Context) -> None:
    """Refuse a file above `ctx.max_upload_mb` with a message that says how to raise the cap."""
    size_mb = path.stat().st_size / 2**20
    if size_mb > ctx.max_upload_mb:
        raise VideoError(
            f"{path.name} is {size_mb:,.0f} MB, above the upload limit of {ctx.max_upload_mb} MB. "
            "Cut the recording into parts, or start the app with a higher limit, e.g. "
            f"BEHAVIOR_AGENT_MAX_UPLOAD_MB={max(2 * ctx.max_upload_mb, round(size_mb) + 1)}."
        )


def store_upload(path: Path, ctx: Context, name: str | None = None) -> Path:
    """Check an uploaded file and keep it in the library as `uploads/<hash>/<name>`.

    Raises VideoError (a readable message) for a file that is too large or not a video.
    """
    path = Path(path)
    check_upload_size(path, ctx)
    name = _safe_name(name or path.name)
    try:
        digest = sha256_file(path) if is_image(path) else probe(path, ctx).sha256
    except VideoError as error:  # name the file as the user knows it, not its temp path
        raise VideoError(str(error).replace(str(path), name)) from None
    target = uploads_dir(ctx) / digest[:16] / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return target


def playable(path: Path, sha256: str, ctx: Context) -> Path:
    """A file the page's player can show: the video itself when it is served and playable,
    else a hard link (or copy) in the served media folder, converted to WebM when needed."""
    path = Path(path)
    if path.suffix.lower() not in BROWSER_CONTAINERS and not is_image(path):
        converted = _webm_copy(path, sha256, ctx)
        if converted is not None:
            return converted
    if any(_inside(path, folder) for folder in served_dirs(ctx)):
        return path
    target = web_dir(ctx, "media") / f"{sha256[:16]}{path.suffix.lower()}"
    if not target.exists():
        try:
            os.link(path, target)
        except OSError:  # another file system: a copy is the only way to serve it
            shutil.copyfile(path, target)
    return target


def _webm_copy(path: Path, sha256: str, ctx: Context) -> Path | None:
    """A small VP8 WebM preview for the browser (AVI, MKV, ... do not play in <video>).

    Only the player uses it (analysis reads the original), so it is scaled down and thinned
    to keep the one-time conversion quick.
    """
    import cv2

    target = web_dir(ctx, "media") / f"{sha256[:16]}.webm"
    if target.exists():
        return target
    reader = cv2.VideoCapture(str(path))
    fps = reader.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(fps / PREVIEW_MAX_FPS))
    width, height = reader.get(cv2.CAP_PROP_FRAME_WIDTH), reader.get(cv2.CAP_PROP_FRAME_HEIGHT)
    scale = min(1.0, PREVIEW_MAX_SIDE / max(width, height, 1))
    size = (int(width * scale) // 2 * 2, int(height * scale) // 2 * 2)
    partial = target.with_suffix(".part.webm")
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"VP80"), fps / step, size)
    if not writer.isOpened():
        reader.release()
        log.warning("no VP8 encoder: %s is served as it is and may not play", path.name)
        return None
    frame_idx, (ok, frame) = 0, reader.read()
    while ok:
        if frame_idx % step == 0:
            writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        frame_idx, (ok, frame) = frame_idx + 1, reader.read()
    writer.release()
    reader.release()
    partial.replace(target)
    return target


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _safe_name(name: str) -> str:
    cleaned = _UNSAFE.sub("_", Path(name).name).strip("._")
    return cleaned or "video"
