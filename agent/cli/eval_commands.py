"""`behavior-agent eval` and `eval-tasks`: score the system on a benchmark from a task file."""

from pathlib import Path

import typer
from rich.markup import escape

from agent.cli.app import app, print_json, progress_line
from agent.cluster import INSTALL_HINT
from agent.context import Context
from agent.evaluation.tasks import SHIPPED_TASKS, load_task


@app.command("eval")
def eval_command(
    task_file: str = typer.Argument(
        ..., metavar="TASK", help="Task file (YAML), or a shipped task's name (see eval-tasks)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Results folder (default: eval-results/<task>-<backend>)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=0, help="Only the first N items."),
    backend: str | None = typer.Option(
        None, "--backend", help="perception or videollama3 (default: the task file's)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes, one model each."),
    data_root: Path | None = typer.Option(
        None,
        "--data-root",
        help="Folder the task's relative paths point into (default: the task file's folder; "
        "env BEHAVIOR_AGENT_EVAL_DATA_ROOT).",
    ),
    model: str | None = typer.Option(
        None, "--model", help="VLM checkpoint: hub id or local folder (videollama3 backend)."
    ),
    use_ray: bool = typer.Option(
        False,
        "--ray",
        help="Run the workers as Ray actors (RAY_ADDRESS names a cluster; else a local Ray). "
        f"Needs `{escape(INSTALL_HINT)}`.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json on stdout."),
) -> None:
    """Run a benchmark task and write metrics.json, predictions.jsonl, summary.md and plots.

    Resumable: rerun the same command after an interruption and only missing items run.
    """
    from agent.evaluation.runner import run_task

    ctx = Context.from_env(model_id=model)
    task = load_task(task_file, data_root or ctx.eval_data_root or None)
    backend_name = backend or task.spec.backend.name or ctx.backend
    out_dir = out or Path("eval-results") / f"{task.name}-{backend_name}"
    result = run_task(
        task,
        out_dir,
        ctx=ctx,
        backend=backend,
        limit=limit,
        workers=workers,
        progress=progress_line,
        use_ray=use_ray,
    )
    if as_json:
        print_json(result.metrics)
        return
    for key, value in result.metrics.items():
        if isinstance(value, float):
            typer.echo(f"{key:<20} {value:.4f}")
        elif isinstance(value, (int, str)):
            typer.echo(f"{key:<20} {value}")
        elif value is None and key == "false_claim_rate":
            typer.echo(f"{key:<20} n/a (no negative item could be checked)")
    typer.echo(f"{'results':<20} {out_dir}")


@app.command("eval-tasks")
def eval_tasks_command() -> None:
    """The benchmark task files shipped with behavior-agent (pass a name to `eval`)."""
    import yaml

    for path in sorted(SHIPPED_TASKS.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        typer.echo(
            f"{path.stem:<14} {spec.get('type', ''):<15} {spec.get('format', 'generic'):<13}"
        )
