"""The agent's working steps as collapsible chat panels (Gradio "thought" messages).

The agent streams dicts through `on_event`; each names its step (`plan`, `retrieve`,
`inspect`, `verify`, `answer`, or an indexing stage) and carries a message or a model token.
Each step becomes one panel: open with a spinner while it runs, closed when the next begins.
"""

import html
import time
from typing import Any

# Titles of the known steps; any other step name is shown capitalised.
STEP_TITLES = {
    "index": "Indexing the video",
    "plan": "Plan",
    "retrieve": "Retrieved clips",
    "inspect": "Inspected clips",
    "verify": "Verification",
    "answer": "Composing the answer",
    "model": "Model output",
}
# Lines kept per panel; older ones only repeat what the counts already say.
MAX_LINES = 40


class StepLog:
    """Collects agent events and renders them as Chatbot thought messages."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self._lines: dict[str, list[str]] = {}
        self._tokens: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._durations: dict[str, float] = {}

    def add(self, event: dict[str, Any]) -> None:
        """Record one event from the agent (unknown shapes are shown as their message)."""
        if event.get("type") == "token":
            # Model tokens belong to the step that asked the model (usually inspect).
            step = self._order[-1] if self._order else "model"
            self._open(step)
            self._tokens[step] = self._tokens.get(step, "") + str(event.get("text", ""))
            return
        step = _step_name(event)
        self._open(step)
        line = _describe(event)
        if line and (not self._lines[step] or self._lines[step][-1] != line):
            self._lines[step] = (self._lines[step] + [line])[-MAX_LINES:]

    def note(self, step: str, lines: list[str]) -> None:
        """Add lines to a step after the fact (e.g. the plan and passes from the agent's trace)."""
        if step not in self._lines:
            self._open(step)
        self._lines[step] = (self._lines[step] + [str(x) for x in lines])[-MAX_LINES:]

    def _open(self, step: str) -> None:
        if step not in self._lines:
            self._close_open_steps()
            self._order.append(step)
            self._lines[step] = []
            self._started[step] = time.monotonic()

    def messages(self, finished: bool = False) -> list[dict[str, Any]]:
        """One assistant thought message per step, the last one pending until `finished`."""
        if finished:
            self._close_open_steps()
        return [self._message(step) for step in self._order]

    def _message(self, step: str) -> dict[str, Any]:
        lines = [f"- {html.escape(line)}" for line in self._lines[step]]
        if self._tokens.get(step):
            lines.append(f"\n<pre class='ba-tokens'>{html.escape(self._tokens[step])}</pre>")
        metadata: dict[str, Any] = {
            "title": STEP_TITLES.get(step, step.replace("_", " ").capitalize()),
            "id": step,
        }
        if step in self._durations:
            metadata["status"] = "done"
            metadata["duration"] = round(self._durations[step], 1)
        else:
            metadata["status"] = "pending"
        return {"role": "assistant", "content": "\n".join(lines) or "…", "metadata": metadata}

    def _close_open_steps(self) -> None:
        now = time.monotonic()
        for step in self._order:
            self._durations.setdefault(step, now - self._started[step])


def _step_name(event: dict[str, Any]) -> str:
    name = str(event.get("stage") or event.get("node") or event.get("step") or "working")
    # Indexing stages (index:probe, index:perceive, ...) share one panel.
    return "index" if name.startswith("index") else name


def _describe(event: dict[str, Any]) -> str:
    message = str(event.get("message") or "").strip()
    stage = str(event.get("stage") or "")
    if stage.startswith("index:") and event.get("total"):
        return f"{stage.removeprefix('index:')} {event.get('done', 0)}/{event['total']}: {message}"
    return message
