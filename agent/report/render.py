"""Writes report data as self-contained HTML, Markdown with images beside it, or JSON."""

import base64
import json
import re
from functools import cache
from pathlib import Path
from typing import Literal

import jinja2

from agent.errors import BehaviorAgentError
from agent.report.model import KINDS, ReportData, ReportEvent
from agent.timefmt import format_clock, format_span

Format = Literal["html", "md", "json"]
FORMATS: tuple[Format, ...] = ("html", "md", "json")
SUFFIXES = {"html": ".html", "md": ".md", "json": ".json"}
# The report templates sit at agent/templates/, beside this package.
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
KIND_TITLES = {"emotion": "Emotion episodes", "gesture": "Gestures", "action": "Actions"}
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def default_report_path(data: ReportData, fmt: Format, folder: Path) -> Path:
    """`<folder>/<video stem>_report.<ext>`."""
    return folder / f"{Path(data.video.name).stem}_report{SUFFIXES[fmt]}"


def write_report(data: ReportData, fmt: Format, out: Path) -> Path:
    """Write the report as `fmt` to `out` (a file, or a folder to put the default name in).

    HTML embeds every image as a data URI (one file, opens offline); Markdown and JSON write
    the images into `<name>_files/` beside the file and refer to them by relative path.
    """
    if fmt not in FORMATS:
        raise BehaviorAgentError(f"Unknown report format {fmt!r}; use one of {list(FORMATS)}.")
    out = Path(out).expanduser()
    if out.is_dir():
        out = default_report_path(data, fmt, out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "html":
            text = render_html(data)
        else:
            images = _write_images(data, out)
            text = render_markdown(data, images) if fmt == "md" else render_json(data, images)
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise BehaviorAgentError(
            f"Cannot write the report to '{out}' ({error.strerror or error}). Choose a writable "
            "place with --out."
        ) from None
    return out


def render_html(data: ReportData) -> str:
    """The whole report as one HTML page with embedded images."""
    images = {key: _data_uri(key, blob) for key, blob in data.images.items()}
    return _environment(autoescape=True).get_template("report.html").render(**_view(data, images))


def render_markdown(data: ReportData, images: dict[str, str]) -> str:
    """The report as Markdown; `images` maps image keys to relative file paths."""
    return _environment(autoescape=False).get_template("report.md").render(**_view(data, images))


def render_json(data: ReportData, images: dict[str, str]) -> str:
    """The report data as JSON; image keys replaced by relative file paths."""
    payload = data.model_dump(mode="json")
    for event in payload["events"]:
        event["key_frame"] = images.get(event["key_frame"]) if event["key_frame"] else None
    payload["charts"] = {name: images.get(key, key) for name, key in payload["charts"].items()}
    payload["video"]["url"] = video_url(data)
    return json.dumps(payload, ensure_ascii=False, indent=2)


def video_url(data: ReportData, time_s: float | None = None, end_s: float | None = None) -> str:
    """`file:///…/video.mp4#t=12.3` (a media-fragment link the browser opens at that time)."""
    url = Path(data.video.path).resolve().as_uri()
    if time_s is None or data.video.is_image:
        return url
    fragment = f"#t={time_s:.1f}"
    if end_s is not None and end_s > time_s:
        fragment += f",{end_s:.1f}"
    return url + fragment


def _write_images(data: ReportData, out: Path) -> dict[str, str]:
    folder = out.with_name(f"{out.stem}_files")
    folder.mkdir(exist_ok=True)
    relative = {}
    for key, blob in data.images.items():
        (folder / key).write_bytes(blob)
        relative[key] = f"{folder.name}/{key}"
    return relative


def _data_uri(key: str, blob: bytes) -> str:
    mime = _MIME.get(Path(key).suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(blob).decode('ascii')}"


def _view(data: ReportData, images: dict[str, str]) -> dict:
    """What the templates see: the data plus lookups and links already worked out."""
    events = {e.event_id: e for e in data.events}
    return {
        "data": data,
        "images": images,
        "kinds": KINDS,
        "kind_titles": KIND_TITLES,
        "rows": {kind: [events[i] for i in data.timelines.get(kind, [])] for kind in KINDS},
        "events": events,
        "totals": {kind: [t for t in data.totals if t.kind == kind] for kind in KINDS},
        "video_url": video_url(data),
        "time_url": lambda e: video_url(data, e.start_s, e.end_s),
        "model_written": [s for s in data.segments if s.narrative],
        "captions": [s for s in data.segments if s.caption],
        "kb_colors": {e.kb_id: data.colors.get(e.label, "#777777") for e in data.events},
    }


@cache
def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly, not blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["clock"] = lambda s, d=1: format_clock(s, d)
    env.filters["span"] = _span
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.1f} %"
    env.filters["seconds"] = lambda v: f"{v:.1f} s"
    env.filters["md"] = _markdown_cell
    env.filters["lead"] = lead_sentence
    return env


def _span(event: ReportEvent) -> str:
    if event.end_s - event.start_s < 0.05:
        return format_clock(event.start_s, 1)
    return format_span(event.start_s, event.end_s, 1)


def _markdown_cell(text: str) -> str:
    """Text safe inside a Markdown table cell or list item (no pipes, no line breaks)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def lead_sentence(text: str, min_chars: int = 40) -> str:
    """The first sentence of a definition (event cards quote it; the appendix has it all)."""
    match = re.match(rf"(.{{{min_chars},}}?[.!?])\s+[A-Z(\"]", text.strip(), flags=re.DOTALL)
    return match.group(1) if match else text.strip()
