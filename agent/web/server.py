"""Starts the web app: queue limits, served folders, upload cap, theme and page assets."""

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from agent.context import Context
from agent.errors import ConfigError
from agent.web.files import served_dirs
from agent.web.ui import build_app

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
# Events that do no model work (library, settings, timeline) may run side by side.
LIGHT_CONCURRENCY = 4
# Jobs waiting in the queue beyond this are refused with "queue is full".
MAX_QUEUE = 64


def create_app(ctx: Context | None = None, service: Any = None) -> gr.Blocks:
    """The queued Blocks; model work (index, ask, report) runs max_concurrent_jobs at a time."""
    from agent.web.service import WebService

    ctx = ctx or Context.from_env()
    demo = build_app(ctx, service if service is not None else WebService())
    demo.queue(default_concurrency_limit=LIGHT_CONCURRENCY, max_size=MAX_QUEUE)
    return demo


def launch_options(ctx: Context) -> dict[str, Any]:
    """`launch()` arguments: only the data directory's upload and app folders are served."""
    return {
        "allowed_paths": [str(p) for p in served_dirs(ctx)],
        "max_file_size": ctx.max_upload_mb * 2**20,
        "theme": gr.themes.Soft(primary_hue="indigo", neutral_hue="slate"),
        "css": (ASSETS / "app.css").read_text(encoding="utf-8"),
        "head": f"<script>{(ASSETS / 'seek.js').read_text(encoding='utf-8')}</script>",
        "ssr_mode": False,
        "footer_links": ["api"],
    }


def launch(
    ctx: Context | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    service: Any = None,
    block: bool = True,
) -> gr.Blocks:
    """Serve the app on host:port; with `block=False` return once it is up (tests)."""
    ctx = ctx or Context.from_env()
    demo = create_app(ctx, service)
    # Uploaded and app-made files are served straight from disk, never copied per request.
    gr.set_static_paths([str(p) for p in served_dirs(ctx)])
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            prevent_thread_lock=not block,
            **launch_options(ctx),
        )
    except OSError as error:
        raise ConfigError(
            f"Cannot serve on {host}:{port} ({error}). Pick a free port with --port."
        ) from None
    return demo
