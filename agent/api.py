"""The agent's public API: `ask(video, question)` and the `AgentService` the CLI and web app share.

The service owns the heavy resources (clip index, knowledge base, VLM) and the conversation
store (LangGraph's SQLite checkpointer under `ctx.home`), indexes a video before its first
question, runs the graph and forwards progress and VLM tokens to an `on_event` callback.
"""

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.context import Context
from agent.loop.deps import AgentDeps
from agent.loop.graph import build_graph, open_checkpointer, threads_path
from agent.state import Answer, VideoInfo

log = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], None]


def new_thread_id() -> str:
    """A fresh conversation id."""
    return uuid.uuid4().hex[:12]


class AgentService:
    """Answers questions about videos; one per process (CLI run, web app), reused across calls.

    Resources are made on first use by their factories unless injected (tests pass doubles or
    the tiny VLM). Questions are answered one at a time: the VLM and the perceiver are not
    re-entrant, and the web app's queue bounds concurrency anyway.
    """

    def __init__(
        self,
        ctx: Context | None = None,
        *,
        vlm: Any | None = None,
        index: Any | None = None,
        kb: Any | None = None,
        perceiver: Any | None = None,
        checkpointer: Any | None = None,
        session_factory: Any | None = None,
    ) -> None:
        ctx = ctx or Context.from_env()
        # Handing over a VLM means using it, for captions at indexing time as well.
        if vlm is not None and ctx.backend != "videollama3":
            ctx = ctx.replace(backend="videollama3")
        self.ctx = ctx
        self._vlm, self._index, self._kb, self._perceiver = vlm, index, kb, perceiver
        # `session_factory(perceiver, kb, ctx)` as in `index_video` (tests pass a double).
        self._session_factory = session_factory
        self._checkpointer = checkpointer or open_checkpointer(threads_path(ctx))
        self.graph = build_graph(self._checkpointer)
        # Re-entrant: ask() indexes under the same lock; the web app also indexes directly.
        self._lock = threading.RLock()

    # --- resources, made on first use ------------------------------------------------------

    @property
    def kb(self) -> Any:
        if self._kb is None:
            from agent.knowledge import load_knowledge_base

            self._kb = load_knowledge_base()
        return self._kb

    @property
    def index(self) -> Any:
        if self._index is None:
            from agent.index import ClipIndex

            self._index = ClipIndex(self.ctx)
        return self._index

    @property
    def vlm(self) -> Any | None:
        """The VLM with the videollama3 backend (lazy: it loads on its first call), else None."""
        if self._vlm is None and self.ctx.backend == "videollama3":
            from agent.vlm import LazyVLM

            self._vlm = LazyVLM(self.ctx)
        return self._vlm

    @property
    def perceiver(self) -> Any:
        """One mediapipe perceiver for indexing and for looking closer at onsets.

        Lazy: perception is imported and its graphs made only when frames are perceived.
        """
        if self._perceiver is None:
            from agent.indexing import LazyPerceiver

            self._perceiver = LazyPerceiver(self.ctx)
        return self._perceiver

    @property
    def backend(self) -> str:
        return self.ctx.backend

    # --- work ------------------------------------------------------------------------------

    def index_video(self, video: str | Path, on_event: EventCallback | None = None) -> VideoInfo:
        """Index `video` unless the library already has it; its record as a VideoInfo."""

        def progress(event: dict[str, Any]) -> None:
            if on_event is not None:
                on_event({"type": "progress", **event, "stage": f"index:{event.get('stage')}"})

        with self._lock:
            record = self._index_video(video, progress)
        return record.info(Path(video))

    def _index_video(self, video: str | Path, progress: Callable[[dict], None]) -> Any:
        from agent.indexing import index_video

        return index_video(
            video,
            self.ctx,
            vlm=self.vlm,
            perceiver=self.perceiver,
            kb=self.kb,
            index=self.index,
            progress=progress,
            session_factory=self._session_factory,
        )

    def ask(
        self,
        video: str | Path,
        question: str,
        *,
        thread_id: str | None = None,
        on_event: EventCallback | None = None,
    ) -> Answer:
        """Answer one question (a follow-up when `thread_id` names an earlier conversation)."""
        question = question.strip()
        if not question:
            from agent.errors import BehaviorAgentError

            raise BehaviorAgentError("The question is empty. Ask something about the video.")
        with self._lock:
            info = self.index_video(video, on_event)
            return self._run(info, question, thread_id or new_thread_id(), on_event)

    def _run(
        self, info: VideoInfo, question: str, thread_id: str, on_event: EventCallback | None
    ) -> Answer:
        deps = AgentDeps(
            ctx=self.ctx,
            index=self.index,
            kb=self.kb,
            vlm=self.vlm,
            perceiver=self.perceiver,
            session_factory=self._session_factory,
        )
        config = {
            "configurable": {"thread_id": thread_id},
            # plan + (retrieve, inspect, verify) per pass + answer, with room to spare.
            "recursion_limit": 4 * self.ctx.max_agent_steps + 10,
        }
        final: dict[str, Any] = {}
        for mode, chunk in self.graph.stream(
            {"video": info.model_dump(), "question": question},
            config,
            context=deps,
            stream_mode=["custom", "values"],
            durability="sync",
        ):
            if mode == "custom" and on_event is not None:
                on_event(chunk)
            elif mode == "values":
                final = chunk
        return Answer.model_validate(final["answer"])

    def history(self, thread_id: str) -> list[dict[str, Any]]:
        """The turns of a conversation (question, answer, evidence), oldest first."""
        snapshot = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        return list((snapshot.values or {}).get("history") or [])

    def trace(self, thread_id: str) -> list[str]:
        """What the agent did in the last turn of a thread (plan, passes, verify)."""
        snapshot = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        return list((snapshot.values or {}).get("trace") or [])

    def close(self) -> None:
        """Release the index connections and the conversation store."""
        if self._index is not None and hasattr(self._index, "close"):
            self._index.close()
        connection = getattr(self._checkpointer, "conn", None)
        if connection is not None:
            connection.close()


_services: dict[tuple, AgentService] = {}
_services_lock = threading.Lock()


def get_service(ctx: Context | None = None, vlm: Any | None = None) -> AgentService:
    """A shared service per (settings, VLM) in this process: models load once."""
    ctx = ctx or Context.from_env()
    key = (tuple(sorted(ctx.as_dict().items())), id(vlm) if vlm is not None else None)
    with _services_lock:
        if key not in _services:
            _services[key] = AgentService(ctx, vlm=vlm)
        return _services[key]


def ask(
    video: str | Path,
    question: str,
    ctx: Context | None = None,
    *,
    thread_id: str | None = None,
    vlm: Any | None = None,
    on_event: EventCallback | None = None,
) -> Answer:
    """Answer a question about a video, with timestamped evidence (indexes it first if needed)."""
    service = get_service(ctx, vlm)
    return service.ask(video, question, thread_id=thread_id, on_event=on_event)
