"""Answers never claim more than the evidence: follow-ups stay on their video, provenance names
only what can run, VLM evidence carries the class it names and no invented number, a tie has no
winner, and streamed model text carries no time."""

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent.context import Context
from agent.loop.graph import build_graph
from agent.loop.nodes import AgentDeps
from agent.state import Answer
from tests.agent_doubles import FakeIndex, FakeKB
from tests.test_agent_graph import det


@pytest.fixture(autouse=True)
def no_calibration(monkeypatch):
    monkeypatch.setattr("agent.perception.capabilities.calibration", lambda: {})


def video(sha256: str, duration_s: float) -> dict:
    return {
        "path": f"/media/{sha256[:4]}.mp4",
        "duration_s": duration_s,
        "fps": 25.0,
        "frame_count": int(25 * duration_s),
        "width": 320,
        "height": 240,
        "sha256": sha256,
    }


def ask_on(graph, thread: str, clip: dict, question: str, detections, vlm=None) -> Answer:
    deps = AgentDeps(
        ctx=Context(),
        index=FakeIndex(clip["sha256"], clip["duration_s"], list(detections)),
        kb=FakeKB(),
        vlm=vlm,
    )
    final: dict = {}
    for chunk in graph.stream(
        {"video": clip, "question": question},
        {"configurable": {"thread_id": thread}},
        context=deps,
        stream_mode="values",
    ):
        final = chunk
    return Answer.model_validate(final["answer"])


def test_a_follow_up_reads_the_current_videos_turns_only():
    short, long = video("a" * 64, 20.0), video("b" * 64, 300.0)
    graph = build_graph(InMemorySaver())
    ask_on(
        graph, "t", short, "When does she give a thumbs up?", [det("thumbs_up", "gesture", 5, 8)]
    )
    other = [det("thumbs_up", "gesture", 100.0, 130.0)]
    ask_on(graph, "t", long, "When does she give a thumbs up?", other)
    # Back on the 20 s video: the 30 s episode at 01:40 belongs to the other video.
    reply = ask_on(graph, "t", short, "How long did it last?", [])
    assert reply.answer == "Thumbs up lasted 3.0 s (00:05.0–00:08.0)."
    assert [(e.start_s, e.end_s) for e in reply.evidence] == [(5.0, 8.0)]


def test_most_present_names_no_winner_on_a_tie():
    clip = video("c" * 64, 30.0)
    tied = [det("happy", "emotion", 2.0, 6.0), det("sad", "emotion", 10.0, 14.0)]
    graph = build_graph(InMemorySaver())
    reply = ask_on(graph, "t", clip, "Is she more happy or sad?", tied)
    assert "happy: 1 time(s), 4.0 s in total; sad: 1 time(s), 4.0 s in total" in reply.answer
    assert "Most present: neither, happy and sad are tied (4.0 s each)." in reply.answer
    ahead = [det("happy", "emotion", 2.0, 9.0), det("sad", "emotion", 10.0, 14.0)]
    reply = ask_on(build_graph(InMemorySaver()), "t", clip, "Is she more happy or sad?", ahead)
    assert "Most present: happy." in reply.answer
