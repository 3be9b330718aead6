"""`behavior-agent index`, `search` and `library`: build, query and manage the clip library."""

import sys
import time
from dataclasses import asdict
from pathlib import Path

import typer
from rich.markup import escape

from agent.cli.app import app, print_json, progress_line
from agent.cluster import INSTALL_HINT
from agent.context import Backend, Context
from agent.errors import BehaviorAgentError
from agent.timefmt import format_clock, format_span
from agent.video import IMAGE_SUFFIXES

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"}
_BAR_WIDTH = 24

library_app = typer.Typer(
    help="List the indexed videos, show the objects seen in one, or remove one.",
    invoke_without_command=True,
)
app.add_typer(library_app, name="library")


class ProgressBar:
    """Progress events drawn as one updating bar on a terminal, as plain lines otherwise."""

    def __init__(self, name: str, stream=None) -> None:
        self.name = name
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_stage = ""
        self.last_percent = -1

    def __call__(self, event: dict) -> None:
        total = max(1, int(event["total"]))
        percent = int(100 * min(event["done"], total) / total)
        line = (
            f"{self.name[:28]:<28} {event['stage']:<8} "
            f"[{'#' * (percent * _BAR_WIDTH // 100):<{_BAR_WIDTH}}] {percent:>3}% "
            f"{event['elapsed_s']:>6.1f}s  {event['message']}"
        )
        if self.tty:
            print(f"\r\033[K{line}", end="", file=self.stream, flush=True)
        elif event["stage"] != self.last_stage or percent >= self.last_percent + 25:
            progress_line(line)
            self.last_percent = percent
        self.last_stage = event["stage"]

    def close(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given; folders become the videos and images directly inside them."""
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            media = VIDEO_SUFFIXES | IMAGE_SUFFIXES
            found.extend(sorted(p for p in item.iterdir() if p.suffix.lower() in media))
        else:
            found.append(item)
    return found


@app.command("index")
def index_command(
    videos: list[Path] = typer.Argument(..., help="Video or image files, or folders of them."),
    backend: Backend = typer.Option(
        None, "--backend", help="perception (offline, CPU) or videollama3 (adds VLM captions)."
    ),
    force: bool = typer.Option(False, "--force", help="Re-index even if nothing changed."),
    use_ray: bool = typer.Option(
        False,
        "--ray",
        help="Perceive and embed each video as a Ray task (RAY_ADDRESS names a cluster; else a "
        f"local Ray); this machine writes the library. Needs `{escape(INSTALL_HINT)}`.",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="With --ray: tasks at a time (default: the cluster's CPUs)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object at the end."),
) -> None:
    """Index videos into the clip library (a no-op for videos indexed with the same settings)."""
    ctx = Context.from_env(backend=backend)
    if use_ray:
        _index_on_ray(expand_inputs(videos), ctx, workers, force, as_json)
        return
    from agent.index import ClipIndex
    from agent.indexing import LazyPerceiver, index_video
    from agent.vlm import LazyVLM

    vlm = LazyVLM(ctx) if ctx.backend == "videollama3" else None
    results, failures = [], []
    with ClipIndex(ctx) as library, LazyPerceiver(ctx) as perceiver:
        for path in expand_inputs(videos):
            bar = ProgressBar(path.name)
            started = time.perf_counter()
            try:
                record = index_video(
                    path,
                    ctx,
                    vlm=vlm,
                    perceiver=perceiver,
                    progress=bar,
                    index=library,
                    force=force,
                )
            except BehaviorAgentError as error:
                bar.close()
                failures.append({"video": str(path), "error": str(error)})
                progress_line(f"error: {path}: {error}")
                continue
            bar.close()
            wall_s = time.perf_counter() - started
            results.append(_summary(record, wall_s))
            if not as_json:
                typer.echo(_summary_line(path, record, wall_s))
    if as_json:
        print_json({"indexed": results, "failed": failures, "home": str(ctx.home)})
    if failures:
        raise typer.Exit(2)


def _index_on_ray(paths: list[Path], ctx: Context, workers, force: bool, as_json: bool) -> None:
    """`index --ray`: tasks on the cluster, the library written here (agent.indexing.ray_index)."""
    from agent.index import ClipIndex
    from agent.indexing.ray_index import index_with_ray

    results, failures = [], []
    with ClipIndex(ctx) as library:
        for done in index_with_ray(
            paths, ctx, library, workers=workers, force=force, progress=progress_line
        ):
            if done.error is not None:
                failures.append({"video": str(done.path), "error": done.error})
                progress_line(f"error: {done.path}: {done.error}")
                continue
            wall_s = 0.0 if done.record.reused else done.record.index_wall_s or 0.0
            summary = _summary(done.record, wall_s)
            if done.worker is not None:
                summary["worker"] = asdict(done.worker)
            if done.stretch_tasks:
                summary["stretch_tasks"] = done.stretch_tasks
            results.append(summary)
            if not as_json:
                typer.echo(_summary_line(done.path, done.record, wall_s))
    if as_json:
        print_json({"indexed": results, "failed": failures, "home": str(ctx.home)})
    if failures:
        raise typer.Exit(2)


def _summary(record, wall_s: float) -> dict:
    return {
        "video": record.path,
        "sha256": record.sha256,
        "reused": record.reused,
        "clips": record.clip_count,
        "detections": record.detection_count,
        "duration_s": record.duration_s,
        "wall_s": round(wall_s, 3),
        "backend": record.settings.get("backend"),
    }


def _summary_line(path: Path, record, wall_s: float) -> str:
    if record.reused:
        return f"{path.name}: already indexed ({record.clip_count} clips) — nothing to do"
    speed = f", {wall_s / record.duration_s:.2f}× real time" if record.duration_s > 0 else ""
    return (
        f"{path.name}: {record.clip_count} clips, {record.detection_count} detections "
        f"in {wall_s:.1f} s{speed}"
    )


@app.command("search")
def search_command(
    text: str = typer.Argument(..., help="What to look for, in plain words."),
    video: str = typer.Option(None, "--video", help="Only this video (path or sha256)."),
    k: int = typer.Option(5, "--k", min=1, help="How many moments to return."),
    start: str = typer.Option(None, "--start", help="Only moments after this time (s or mm:ss)."),
    end: str = typer.Option(None, "--end", help="Only moments before this time (s or mm:ss)."),
    label: list[str] = typer.Option(
        None, "--label", help="Only moments of this label (repeatable); the query's classes else."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Find the moments that match a query: best first, each with its clip and the span of the
    detections that made it; "no matching moment" when nothing seen matches."""
    from agent.index import ClipIndex
    from agent.knowledge import load_knowledge_base

    ctx = Context.from_env()
    with ClipIndex(ctx) as library:
        found = library.retrieve(
            text,
            k,
            kb=load_knowledge_base(ctx),
            video=video,
            start_s=_time_option(start, "--start"),
            end_s=_time_option(end, "--end"),
            labels=label or None,
        )
    if as_json:
        print_json({**found.model_dump(), "no_match": found.no_match})
        return
    if found.no_match:
        typer.echo(_no_match_line(found))
    for rank, hit in enumerate(found.hits, start=1):
        what = hit.label.replace("_", " ") if hit.label else "clip"
        typer.echo(
            f"{rank}. {Path(hit.video).name}  {format_span(hit.span_start_s, hit.span_end_s, 1)}"
            f"  {what}  (clip {format_span(hit.start_s, hit.end_s, 1)}; "
            f"{', '.join(hit.why)}; score {hit.score:.4f})"
        )
        typer.echo(f"   {hit.text[:160]}")


def _no_match_line(found) -> str:
    read_as = ", ".join(f"{c.replace('_', ' ')} {s:.2f}" for c, s in found.matched)
    closest = ", ".join(f"{c.replace('_', ' ')} {s:.2f}" for c, s in found.closest)
    return (
        f"no matching moment for {found.query!r}"
        + (f" (read as: {read_as})" if read_as else "")
        + (f"; closest seen: {closest}" if closest else "; nothing indexed here was seen")
    )


def _time_option(value: str | None, name: str) -> float | None:
    from agent.timefmt import parse_clock

    if value is None:
        return None
    seconds = parse_clock(value)
    if seconds is None:
        raise BehaviorAgentError(f"{name} {value!r} is not a time; use seconds (75) or mm:ss.")
    return seconds


@library_app.callback()
def library_command(
    typer_ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The indexed videos: content hash, duration, clips, detections, how they were indexed."""
    if typer_ctx.invoked_subcommand is not None:
        return
    from agent.index import ClipIndex

    ctx = Context.from_env()
    with ClipIndex(ctx) as library:
        videos = library.videos()
        stats = library.stats()
    if as_json:
        print_json(
            {
                "home": str(ctx.home),
                "videos": [v.model_dump() for v in videos],
                "clips": stats["clips"],
                "detections": stats["detections"],
                "objects": stats["objects"],
                "spaces": stats["spaces"],
            }
        )
        return
    if not videos:
        typer.echo(f"the library at {ctx.home} is empty; add videos with `behavior-agent index`")
        return
    typer.echo(
        f"{'sha256':<12}  {'duration':>8}  {'clips':>5}  {'dets':>5}  {'backend':<11}  video"
    )
    for v in videos:
        status = "" if v.status == "complete" else _unfinished(v)
        typer.echo(
            f"{v.sha256[:12]}  {format_clock(v.duration_s, 1):>8}  {v.clip_count:>5}  "
            f"{v.detection_count:>5}  {v.settings.get('backend', '?'):<11}  {v.path}{status}"
        )
    kinds = ", ".join(
        f"{name}: {s['vectors']} ({s['index']})" for name, s in stats["spaces"].items()
    )
    typer.echo(f"{len(videos)} videos, {stats['clips']} clips; vectors {kinds or 'none'}")


def _unfinished(video) -> str:
    done = format_clock(video.checkpointed_s or 0.0)
    return (
        f"  (indexing or interrupted: {done} of {format_clock(video.duration_s)} done; "
        "`behavior-agent index` resumes it)"
    )


@library_app.command("objects")
def library_objects_command(
    video: str = typer.Argument(..., help="Video path or sha256 (prefixes work)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The objects the detector saw in an indexed video: when, how sure, where (box), how many."""
    from agent.index import ClipIndex

    with ClipIndex(Context.from_env()) as library:
        record = library.video(video)
        if record is None:
            raise BehaviorAgentError(
                f"Not in the library: {video}. Index it first with `behavior-agent index {video}`."
            )
        sightings = library.objects(record.sha256)
    if as_json:
        payload = {"video": record.path, "sha256": record.sha256}
        print_json({**payload, "objects": [s.model_dump() for s in sightings]})
        return
    if not sightings:
        learned = record.settings.get("learned", "?")
        typer.echo(f"no objects seen in {record.path} (learned models: {learned})")
        return
    typer.echo(f"{'when':>17}  {'object':<14} {'score':>5} {'most':>4}  box [x, y, w, h]")
    for s in sightings:
        box = ", ".join(f"{v:.2f}" for v in s.bbox)
        typer.echo(
            f"{format_span(s.start_s, s.end_s, 1):>17}  {s.label:<14} {s.score:>5.2f} "
            f"{s.count:>4}  [{box}] at {format_clock(s.best_s, 1)}"
        )


@library_app.command("remove")
def library_remove_command(
    videos: list[str] = typer.Argument(..., help="Video paths or sha256 (prefixes work)."),
) -> None:
    """Remove videos (clips, detections, vectors) from the library; the files are untouched."""
    from agent.index import ClipIndex

    missing = []
    with ClipIndex(Context.from_env()) as library:
        for video in videos:
            if library.remove(video):
                typer.echo(f"removed {video}")
            else:
                missing.append(video)
    if missing:
        raise BehaviorAgentError(
            f"Not in the library: {', '.join(missing)}. See `behavior-agent library` for what is."
        )
