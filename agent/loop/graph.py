"""The LangGraph agent: plan → retrieve → inspect → verify → answer, verify looping back.

Resources (index, VLM, perceiver, knowledge base) are injected per run as the runtime context
(`AgentDeps`); the state holds plain data only, so the SQLite checkpointer can keep threads.
"""

import sqlite3
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.context import Context
from agent.loop.deps import AgentDeps
from agent.loop.nodes import answer, inspect, plan, retrieve, route_plan, route_verify, verify
from agent.state import AgentState

THREADS_FILE = "threads.sqlite"


def threads_path(ctx: Context) -> Path:
    """The SQLite file that keeps conversation threads (under the data directory)."""
    return ctx.home / THREADS_FILE


def open_checkpointer(path: Path) -> SqliteSaver:
    """A SQLite checkpointer on `path`; usable from the web app's worker threads (it locks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False)
    saver = SqliteSaver(connection)
    saver.setup()
    return saver


def build_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """The compiled agent; pass a checkpointer for multi-turn threads."""
    builder = StateGraph(AgentState, context_schema=AgentDeps)
    builder.add_node("plan", plan)
    builder.add_node("retrieve", retrieve)
    builder.add_node("inspect", inspect)
    builder.add_node("verify", verify)
    builder.add_node("answer", answer)

    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", route_plan, ["retrieve", "answer"])
    builder.add_edge("retrieve", "inspect")
    builder.add_edge("inspect", "verify")
    builder.add_conditional_edges("verify", route_verify, ["retrieve", "answer"])
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=checkpointer, name="behavior-agent")
