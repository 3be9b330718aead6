"""`behavior-agent ask`: a question about a video, answered with timestamped evidence."""

import logging
import sys
from pathlib import Path
from typing import Any

import typer

from agent.cli.app import app, print_json, progress_line
from agent.context import Context
from agent.state import Answer
from agent.timefmt import format_clock

RATIONALE_WIDTH = 90


class _Printer:
    """Progress lines and streamed VLM tokens on stderr, as they arrive."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.in_tokens = False

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        if event.get("type") == "token":
            if not self.in_tokens:
                sys.stderr.write("  model: ")
                self.in_tokens = True
            sys.stderr.write(str(event.get("text", "")))
            sys.stderr.flush()
            return
        if self.in_tokens:
            sys.stderr.write("\n")
            self.in_tokens = False
        stage = event.get("stage", "")
        done, total = event.get("done") or 0, event.get("total") or 0
        count = f" {done}/{total}" if total and stage.startswith("index") else ""
        progress_line(f"[{stage}{count}] {event.get('message', '')}")


@app.command("ask")
def ask_command(
    video: Path = typer.Argument(..., help="Video file (or still image)."),
    question: str = typer.Argument(..., help='The question, e.g. "When does she wave?".'),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    thread: str | None = typer.Option(
        None, "--thread", help="Conversation id: follow-up questions reuse it."
    ),
    backend: str | None = typer.Option(
        None, "--backend", help="perception (offline, default) or videollama3."
    ),
    model: str | None = typer.Option(
        None, "--model", help="VideoLLaMA3 hub id or local directory (with videollama3)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """Answer a question about a video, with the moments that support it (indexes it first)."""
    from agent.api import AgentService

    if quiet:
        logging.getLogger("agent.loading").setLevel(logging.WARNING)
    ctx = Context.from_env(backend=backend, model_id=model)
    service = AgentService(ctx)
    try:
        reply = service.ask(video, question, thread_id=thread, on_event=_Printer(quiet))
    finally:
        service.close()
    if as_json:
        print_json(answer_json(reply))
        return
    print_answer(reply)


def answer_json(reply: Answer) -> dict[str, Any]:
    """What `ask --json` prints: the answer, whether the asked behavior was found, its evidence
    (empty when not found), other observations apart, and what was asked and checkable."""
    return {
        "answer": reply.answer,
        "found": reply.found,
        "evidence": [e.model_dump() for e in reply.evidence],
        "other_evidence": [e.model_dump() for e in reply.other_evidence],
        "asked": [a.model_dump() for a in reply.asked],
        "backend": reply.backend,
    }


def print_answer(reply: Answer) -> None:
    """The answer, then tables of its evidence and of other observations, with mm:ss times."""
    typer.echo(reply.answer)
    _print_evidence(reply.evidence, "")
    _print_evidence(reply.other_evidence, "Other observations (not the answer):")


def _print_evidence(evidence: list, title: str) -> None:
    if not evidence:
        return
    typer.echo("")
    if title:
        typer.echo(title)
    typer.echo(f"{'#':>2}  {'start':>7}  {'end':>7}  {'kind':<8} {'label':<16} {'conf':>5}  why")
    for number, item in enumerate(evidence, start=1):
        why = (
            item.rationale
            if len(item.rationale) <= RATIONALE_WIDTH
            else (item.rationale[: RATIONALE_WIDTH - 1] + "…")
        )
        typer.echo(
            f"{number:>2}  {format_clock(item.start_s, 1):>7}  {format_clock(item.end_s, 1):>7}  "
            f"{item.kind:<8} {item.label:<16} {confidence_text(item.confidence):>5}  {why}"
        )


def confidence_text(confidence: float | None) -> str:
    """`0.82`, or `-` where nothing measured the evidence (a VLM named it)."""
    return "-" if confidence is None else f"{confidence:.2f}"
