"""AgentDeps: what the graph's nodes use but the state must not hold (settings and heavy
resources), and the progress events they write to LangGraph's custom stream."""

from dataclasses import dataclass
from typing import Any

from langgraph.runtime import Runtime

from agent.context import Context


@dataclass
class AgentDeps:
    """What the nodes use but the state must not hold: settings and heavy resources."""

    ctx: Context
    index: Any  # agent.index.ClipIndex (or a test double with the same methods)
    kb: Any  # agent.knowledge.KnowledgeBase
    vlm: Any | None = None  # agent.vlm.VLM; None = perception backend only
    # agent.perception.Perceiver and the session class, to look closer at onsets; None = off.
    perceiver: Any | None = None
    session_factory: Any | None = None


def emit_progress(
    runtime: Runtime[AgentDeps], stage: str, message: str, done: int = 0, total: int = 0
) -> None:
    """One `{"type": "progress", "stage", "message", "done", "total"}` event on the stream."""
    runtime.stream_writer(
        {"type": "progress", "stage": stage, "message": message, "done": done, "total": total}
    )
