"""`behavior-agent probe` and `segment`: what is in a video file, and how it is cut into clips."""

from pathlib import Path

import typer

from agent.cli.app import app, print_json
from agent.context import Context
from agent.timefmt import format_clock
from agent.video import probe, segment


@app.command("probe")
def probe_command(
    video: Path = typer.Argument(..., help="Video file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Duration, frame rate, frame count, size and content hash of a video."""
    info = probe(video, Context.from_env())
    if as_json:
        print_json(info.model_dump())
        return
    typer.echo(f"path        {info.path}")
    typer.echo(f"duration    {format_clock(info.duration_s, 1)} ({info.duration_s:.3f} s)")
    typer.echo(f"fps         {info.fps:.3f}")
    typer.echo(f"frames      {info.frame_count}")
    typer.echo(f"size        {info.width}x{info.height}")
    typer.echo(f"sha256      {info.sha256}")


@app.command("segment")
def segment_command(
    video: Path = typer.Argument(..., help="Video file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The clips a video is indexed as: fixed windows, split at shot cuts."""
    clips = segment(video, Context.from_env())
    if as_json:
        print_json(
            {
                "video": str(video),
                "clips": [c.model_dump(include={"clip_id", "start_s", "end_s"}) for c in clips],
            }
        )
        return
    typer.echo(f"{'clip':>5}  {'start':>8}  {'end':>8}  {'length':>7}  shot")
    for clip in clips:
        typer.echo(
            f"{clip.clip_id:>5}  {format_clock(clip.start_s, 1):>8}  "
            f"{format_clock(clip.end_s, 1):>8}  {clip.end_s - clip.start_s:>6.1f}s  "
            f"{clip.shot_index}"
        )
