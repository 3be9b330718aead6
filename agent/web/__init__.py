"""The Gradio web app: upload, ask with evidence, timeline, report, settings (docs/webapp.md)."""

from agent.web.server import create_app, launch

__all__ = ["create_app", "launch"]
