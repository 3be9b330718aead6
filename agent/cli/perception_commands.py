"""`behavior-agent perceive`: offline landmark-based detections for a video or a still image."""

from pathlib import Path

import typer
from PIL import Image

from agent.cli.app import app, print_json, progress_line
from agent.context import Context
from agent.timefmt import format_span
from agent.video import is_image


@app.command("perceive")
def perceive_command(
    media: Path = typer.Argument(..., help="Video file or still image."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    overlay: Path | None = typer.Option(
        None, "--overlay", help="Folder for key frames with landmarks, boxes and labels drawn."
    ),
) -> None:
    """Emotions, gestures and actions seen by the offline perception (mediapipe, CPU)."""
    from agent.perception import Perceiver, perceive_image, perceive_video
    from agent.perception.overlay import render_overlay

    ctx = Context.from_env()
    with Perceiver(ctx) as perceiver:
        if is_image(media):
            detections = perceive_image(media, ctx, perceiver=perceiver)
        else:

            def report(event: dict) -> None:
                if not as_json and event["done"] % 20 == 0:
                    progress_line(f"perceive {event['done']}/{event['total']} frames")

            detections = perceive_video(media, ctx, progress=report, perceiver=perceiver)
        written = []
        if overlay is not None:
            overlay.mkdir(parents=True, exist_ok=True)
            for index, det in enumerate(detections):
                middle_s = (det.start_s + det.end_s) / 2
                image = render_overlay(media, middle_s, ctx, detections, perceiver=perceiver)
                out = overlay / f"{index:03d}_{det.label}_{middle_s:07.2f}s.jpg"
                Image.fromarray(image).save(out, quality=90)
                written.append(str(out))
    fields = ("kind", "label", "start_s", "end_s", "confidence", "bbox", "cues", "person_id")
    if as_json:
        payload = {
            "media": str(media),
            "detections": [d.model_dump(include=set(fields)) for d in detections],
        }
        if overlay is not None:
            payload["overlays"] = written
        print_json(payload)
        return
    if not detections:
        typer.echo("nothing detected")
    for det in detections:
        span = "still" if is_image(media) else format_span(det.start_s, det.end_s, 1)
        typer.echo(f"{span:>17}  {det.kind:<8} {det.label:<16} {det.confidence:.2f}  {det.cues}")
    for path in written:
        typer.echo(f"overlay  {path}")
