"""`behavior-agent convert-vl3` and `behavior-agent dev tiny-vl3`: VideoLLaMA3 checkpoints."""

from pathlib import Path

import typer

from agent.cli.app import app, print_json, progress_line

dev_app = typer.Typer(
    help="Developer tools (test models, diagnostics).", no_args_is_help=True, add_completion=False
)
app.add_typer(dev_app, name="dev")


@app.command("convert-vl3")
def convert_vl3_command(
    src: Path = typer.Argument(..., help="Original DAMO-NLP-SG/VideoLLaMA3-* checkpoint folder."),
    dst: Path = typer.Argument(..., help="New folder for the native-layout checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Rewrite an original (remote-code) VideoLLaMA3 checkpoint into the native layout."""
    from agent.vlm.convert import convert_vl3

    progress_line(f"converting {src} -> {dst} ...")
    report = convert_vl3(src, dst)
    if as_json:
        print_json(report.__dict__)
        return
    typer.echo(f"wrote       {report.destination}")
    typer.echo(f"tensors     {report.tensors} in {report.shards} shard(s)")
    for old, new in report.renamed.items():
        typer.echo(f"renamed     {old}* -> {new}*")
    if report.dropped:
        typer.echo(f"dropped     {len(report.dropped)} recomputed buffers")
    typer.echo(f"placeholders {report.image_token} (images), {report.video_token} (videos)")
    typer.echo(f"use it with BEHAVIOR_AGENT_MODEL_ID={report.destination}")


@dev_app.command("tiny-vl3")
def tiny_vl3_command(
    folder: Path = typer.Argument(..., help="Folder to write the tiny checkpoint to."),
    seed: int = typer.Option(0, help="Random seed of the weights."),
) -> None:
    """Build a tiny random VideoLLaMA3 checkpoint (real classes and processors) for tests."""
    from agent.vlm.tiny import build_tiny_vl3

    path = build_tiny_vl3(folder, seed=seed)
    typer.echo(f"tiny VideoLLaMA3 written to {path}")
    typer.echo(f"try it: BEHAVIOR_AGENT_MODEL_ID={path} BEHAVIOR_AGENT_BACKEND=videollama3")
