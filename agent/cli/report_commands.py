"""`behavior-agent report`: a behavior report of one recording as HTML, Markdown and/or JSON."""

from pathlib import Path
from typing import Any

import typer

from agent.cli.app import app, print_json, progress_line
from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.report.render import FORMATS, SUFFIXES, default_report_path


@app.command("report")
def report_command(
    video: Path = typer.Argument(..., help="Video file (or still image)."),
    fmt: str = typer.Option(
        "html", "--format", "-f", help="html, md, json, or all (writes all three)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="File to write, or a folder (default: ./<video>_report.<ext>). With --format all, "
        "a folder or a file name whose extension is replaced per format.",
    ),
    backend: str | None = typer.Option(
        None, "--backend", help="perception or videollama3 (default: BEHAVIOR_AGENT_BACKEND)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="VLM checkpoint: hub id or local folder (videollama3 backend)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
) -> None:
    """Timeline, totals, notable moments and explained events of a recording.

    Indexes the video first when it is not in the library yet (progress on stderr).
    """
    from agent.report import build_report, write_report

    formats = _formats(fmt)
    ctx = Context.from_env(backend=backend, model_id=model)
    vlm = None
    if ctx.backend == "videollama3":
        from agent.vlm import LazyVLM

        vlm = LazyVLM(ctx)  # loads on its first call, saying so on stderr
    data = build_report(video, ctx, vlm=vlm, progress=_show_progress)
    written = {}
    for name in formats:
        path = write_report(data, name, _target(data, name, out, len(formats) > 1))
        written[name] = str(path)
    if as_json:
        print_json({"video": str(video), "events": len(data.events), "written": written})
        return
    counts = ", ".join(f"{len(ids)} {kind}" for kind, ids in data.timelines.items())
    progress_line(f"report: {counts} event(s), {len(data.notable)} notable moment(s)")
    for path in written.values():
        typer.echo(path)


def _formats(fmt: str) -> list[str]:
    names = [part.strip().lower() for part in fmt.split(",") if part.strip()]
    if names == ["all"]:
        return list(FORMATS)
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise BehaviorAgentError(
            f"Unknown report format {fmt!r}; use html, md, json, all, or a list like html,json."
        )
    return list(dict.fromkeys(names))


def _target(data: Any, fmt: str, out: Path | None, several: bool) -> Path:
    """Where one format goes: the given file, a file per format, or a folder's default name."""
    if out is None:
        return default_report_path(data, fmt, Path.cwd())
    if out.is_dir() or (not out.suffix and not out.exists()):
        out.mkdir(parents=True, exist_ok=True)
        return default_report_path(data, fmt, out)
    return out.with_suffix(SUFFIXES[fmt]) if several else out


def _show_progress(event: dict[str, Any]) -> None:
    done, total = event.get("done"), event.get("total")
    elapsed = event.get("elapsed_s")
    clock = f" {elapsed:6.1f}s" if isinstance(elapsed, int | float) else ""
    count = f" {done}/{total}" if total else ""
    progress_line(f"[{event.get('stage', '')}{count}]{clock} {event.get('message', '')}")
