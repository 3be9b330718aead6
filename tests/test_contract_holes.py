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


def test_streamed_model_text_carries_no_time_on_the_way_to_the_step_log_and_stderr(monkeypatch):
    # The web app's step log and the CLI's stderr both show the agent's token stream.
    from langgraph.runtime import Runtime

    from agent.loop import nodes
    from agent.planning import Plan
    from agent.web.steps import StepLog
    from tests.agent_doubles import FakeVLM

    monkeypatch.setattr("agent.video.sample_frames", lambda *a, **k: [0, 1])
    text = 'She waves at 0:05. Then she nods; at 12 s she smiles. Bye. {"start_s": 3.0}'
    clip = video("d" * 64, 30.0)
    deps = AgentDeps(ctx=Context(), index=FakeIndex(clip["sha256"], 30.0, []), kb=FakeKB())
    deps = AgentDeps(ctx=deps.ctx, index=deps.index, kb=deps.kb, vlm=FakeVLM(text=text))
    written: list[dict] = []
    plan = Plan(question_type="when", targets=["wave"], query="wave")
    state = {
        "video": clip,
        "question": "When does she wave?",
        "plan": plan.model_dump(),
        "detections": [],
        "hits": [{"clip_id": 0, "start_s": 0.0, "end_s": 10.0, "score": 0.5, "caption": ""}],
    }
    nodes.inspect(state, Runtime(context=deps, stream_writer=written.append))
    shown = "".join(e["text"] for e in written if e["type"] == "token")
    assert shown.split() == ["Then", "she", "nods;", "Bye."]
    steps = StepLog()
    for event in written:
        steps.add(event)
    log = " ".join(m["content"] for m in steps.messages(finished=True))
    assert "Then she nods; Bye." in log and "0:05" not in log and "12 s" not in log


def test_a_time_split_across_streamed_pieces_is_still_left_out():
    from agent.vlm.reply_times import TimeFreeStream

    stream = TimeFreeStream()
    pieces = ["No wave", " at 0:", "05. She", " nods", " twice. At twenty", " seconds a bow"]
    shown = "".join(stream.feed(piece) for piece in pieces) + stream.flush()
    assert shown.strip() == "She nods twice."


def test_vlm_evidence_is_labelled_by_the_class_the_reply_names_with_no_invented_number(
    monkeypatch,
):
    from tests.agent_doubles import FakeVLM

    monkeypatch.setattr("agent.video.sample_frames", lambda *a, **k: [0, 1])
    clip = video("e" * 64, 30.0)
    vlm = FakeVLM(text="She looks sad.", data={"answer": "She looks sad.", "present": True})
    reply = ask_on(build_graph(InMemorySaver()), "t", clip, "Does she look happy or sad?", [], vlm)
    assert reply.evidence, reply.answer
    assert {e.label for e in reply.evidence} == {"sad"}  # not targets[0] (happy)
    assert all(e.confidence is None for e in reply.evidence)  # nothing measured it
    assert "0.5" not in reply.answer


def test_a_class_only_a_vlm_named_shows_no_confidence():
    clip = video("f" * 64, 30.0)
    named = [det("happy", "emotion", 0.0, 10.0, 0.5, "smiling", source="vlm")]
    measured = [det("wave", "gesture", 12.0, 14.0, 0.8, "hand side to side")]
    reply = ask_on(build_graph(InMemorySaver()), "t", clip, "What happens?", named + measured)
    assert "happy (emotion, 00:00.0–00:10.0, named by a VLM)" in reply.answer
    assert "wave (gesture, 00:12.0–00:14.0, confidence 0.80)" in reply.answer
    by_label = {e.label: e.confidence for e in reply.evidence}
    assert by_label == {"happy": None, "wave": 0.8}
