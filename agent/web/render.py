"""HTML pieces of the web app: evidence cards with seek links, library and event tables.

Every time link is an `<a class="ba-seek" href="#t=SECONDS">` — the page script
(`assets/seek.js`) turns a click on one into a seek of the video player, so the links work in
the chat, the timeline and anywhere else they appear. All text from users or models is escaped.
"""

import html
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from agent.state import Answer, Evidence
from agent.timefmt import format_clock, format_span
from agent.web.records import LibraryVideo, TimelineEvent


def file_url(path: Path) -> str:
    """The URL Gradio serves a file under (relative, so it also works behind a root path)."""
    return "gradio_api/file=" + quote(str(Path(path).resolve()))


def seek_link(start_s: float, end_s: float | None = None, css: str = "ba-seek") -> str:
    """A clickable `mm:ss–mm:ss` (or `mm:ss`) that seeks the player to `start_s`."""
    text = format_clock(start_s) if end_s is None else format_span(start_s, end_s)
    title = f"Play from {format_clock(start_s, 1)}"
    return f'<a class="{css}" href="#t={start_s:.3f}" title="{title}">{text}</a>'


def answer_html(answer: Answer, thumbnails: dict[int, Path | None]) -> str:
    """The assistant's reply: the answer text, one card per piece of evidence, then other
    observations (what was seen instead) under their own heading, never as the answer."""
    text = "".join(f"<p>{html.escape(p)}</p>" for p in answer.answer.split("\n") if p.strip())
    cards = "".join(
        evidence_card(item, thumbnails.get(i)) for i, item in enumerate(answer.evidence)
    )
    evidence = f'<div class="ba-evidence">{cards}</div>' if cards else ""
    note = "" if answer.evidence else '<p class="ba-muted">No moment in the video supports it.</p>'
    others = "".join(evidence_card(item, None) for item in answer.other_evidence)
    if others:
        others = (
            '<p class="ba-muted ba-other-title">Other observations (not the answer):</p>'
            f'<div class="ba-evidence ba-other">{others}</div>'
        )
    found = "true" if answer.found else "false"
    return f'<div class="ba-answer" data-found="{found}">{text}{note}{evidence}{others}</div>'


def evidence_card(item: Evidence, thumbnail: Path | None) -> str:
    """Thumbnail (with the overlay), time link, label, kind, confidence and rationale."""
    label = html.escape(item.label.replace("_", " "))
    image = (
        f'<a class="ba-thumb" href="#t={item.start_s:.3f}" title="Play this moment">'
        f'<img src="{file_url(thumbnail)}" alt="{label} at {format_clock(item.start_s)}"></a>'
        if thumbnail is not None
        else ""
    )
    # Evidence only a VLM named has no measured confidence, so the card shows none.
    confidence = (
        f'<span class="ba-conf" title="confidence">{round(100 * item.confidence)}%</span>'
        if item.confidence is not None
        else '<span class="ba-conf" title="named by a VLM: no measured confidence">VLM</span>'
    )
    return (
        f'<div class="ba-card">{image}<div class="ba-card-body">'
        f'<div class="ba-card-head">{seek_link(item.start_s, item.end_s)}'
        f'<span class="ba-label">{label}</span>'
        f'<span class="ba-chip ba-kind-{html.escape(item.kind)}">{html.escape(item.kind)}</span>'
        f"{confidence}</div>"
        f'<div class="ba-why">{html.escape(item.rationale)}</div></div></div>'
    )


def search_html(found) -> str:
    """Search hits (an `agent.index.Retrieval`) as rows whose time link plays the span of the
    evidence; "no matching moment" with the closest labels seen when there is none."""
    if not found.hits:
        near = ", ".join(f"{html.escape(c.replace('_', ' '))}" for c, _ in found.closest)
        seen = f" Closest seen: {near}." if near else ""
        return f'<p class="ba-muted ba-no-match">No matching moment for this query.{seen}</p>'
    rows = "".join(
        f"<tr><td>{seek_link(h.span_start_s, h.span_end_s)}</td>"
        f"<td>{html.escape((h.label or 'clip').replace('_', ' '))}</td>"
        f"<td>{format_span(h.start_s, h.end_s)}</td><td>{html.escape(', '.join(h.why))}</td></tr>"
        for h in found.hits
    )
    head = "<tr><th>Moment</th><th>Label</th><th>Clip</th><th>Found by</th></tr>"
    return f'<table class="ba-table ba-hits"><thead>{head}</thead><tbody>{rows}</tbody></table>'


def library_html(videos: Iterable[LibraryVideo]) -> str:
    """The indexed videos as a table (name, duration, clips, detections, backend)."""
    rows = "".join(
        f'<tr><td class="ba-name" title="{v.sha256}">{html.escape(v.name)}</td>'
        f"<td>{format_clock(v.duration_s, 1)}</td><td>{v.clips}</td><td>{v.detections}</td>"
        f"<td>{html.escape(v.backend)}</td></tr>"
        for v in videos
    )
    if not rows:
        return '<p class="ba-muted">The library is empty: upload a video above to index it.</p>'
    head = "<tr><th>Video</th><th>Length</th><th>Clips</th><th>Detections</th><th>Backend</th></tr>"
    return f'<table class="ba-table"><thead>{head}</thead><tbody>{rows}</tbody></table>'


def events_html(events: Iterable[TimelineEvent]) -> str:
    """The merged events of a video as rows with seek links, in time order."""
    rows = "".join(
        f"<tr><td>{seek_link(e.start_s, e.end_s)}</td>"
        f'<td><span class="ba-chip ba-kind-{html.escape(e.kind)}">{html.escape(e.kind)}</span></td>'
        f'<td><span class="ba-swatch" style="background:{html.escape(e.color)}"></span>'
        f"{html.escape(e.name)}</td><td>{round(100 * e.confidence)}%</td>"
        f"<td>{html.escape(', '.join(e.cues[:2]))}</td></tr>"
        for e in events
    )
    if not rows:
        return '<p class="ba-muted">No emotion, gesture or action was detected in this video.</p>'
    head = "<tr><th>When</th><th>Kind</th><th>Label</th><th>Conf.</th><th>Cues</th></tr>"
    return f'<table class="ba-table"><thead>{head}</thead><tbody>{rows}</tbody></table>'


def video_facts(video: LibraryVideo | None) -> str:
    """One line under the player: name, length, clips, detections."""
    if video is None:
        return "No video selected: upload one in **Library** or pick an indexed one above."
    return (
        f"**{video.name}** · {format_clock(video.duration_s, 1)} · {video.clips} clips · "
        f"{video.detections} detections · {video.backend}"
    )


def escape_text(text: str) -> str:
    """User text shown in the chat as typed (no HTML or Markdown from users)."""
    return html.escape(text).replace("*", "&#42;").replace("_", "&#95;")
