"""The typer application object and helpers shared by every `behavior-agent` command."""

import json
import sys
from typing import Any

import typer

from agent import __version__

app = typer.Typer(
    name="behavior-agent",
    help="Ask questions about human behavior in long videos; answers carry timestamped evidence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def print_json(payload: Any) -> None:
    """One JSON object on stdout (the `--json` contract of every command)."""
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


def progress_line(text: str) -> None:
    """A progress message on stderr, so stdout stays clean for `--json` consumers."""
    print(text, file=sys.stderr, flush=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"behavior-agent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """behavior-agent: questions about behavior in videos, answered with evidence."""
