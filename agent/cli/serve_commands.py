"""`behavior-agent serve`: the web app on a local port."""

import typer

from agent.cli.app import app, progress_line
from agent.context import Context


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(7860, "--port", help="TCP port."),
) -> None:
    """Start the web app (upload, ask with evidence, timeline, report) and keep serving."""
    from agent.web import launch

    ctx = Context.from_env()
    progress_line(f"behavior-agent web app on http://{host}:{port} (data in {ctx.home})")
    launch(ctx, host=host, port=port)
