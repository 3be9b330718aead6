"""The agent graph with doubles: each node, routing, loops, budget, VLM parse failures, threads."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.runtime import Runtime

from agent.context import Context
from agent.loop import nodes
from agent.loop.graph import build_graph, open_checkpointer
from agent.loop.nodes import AgentDeps
from agent.planning import Plan
from agent.state import Answer, Detection, Evidence
from agent.vlm.parsing import parse_answer
from tests.agent_doubles import FakeIndex, FakeKB, FakeVLM


@pytest.fixture(autouse=True)
def no_switched_off_classes(monkeypatch):
    """These tests drive the loop with fake detections of any class; the shipped calibration
    (which switches some landmark rules off) is tested on real media elsewhere."""
    monkeypatch.setattr("agent.perception.capabilities.calibration", lambda: {})


SHA = "f" * 64
VIDEO = {
    "path": "/media/v.mp4",
    "duration_s": 30.0,
    "fps": 25.0,
    "frame_count": 750,
    "width": 320,
    "height": 240,
    "sha256": SHA,
}


def det(label, kind, start_s, end_s, confidence=0.8, cues="", **extra) -> Detection:
    return Detection(
        kind=kind,
        label=label,
        start_s=start_s,
        end_s=end_s,
        confidence=confidence,
        cues=cues,
        **extra,
    )


DETECTIONS = [
    det("thumbs_up", "gesture", 12.0, 14.0, 0.8, "thumb extended, fingers curled"),
    det("thumbs_up", "gesture", 14.5, 16.0, 0.7, "thumb up"),
    det("happy", "emotion", 20.0, 25.0, 0.6, "AU12 lip corner puller 0.8, AU6 0.6"),
]


def deps_for(detections=DETECTIONS, vlm=None, **ctx_changes) -> AgentDeps:
    index = FakeIndex(SHA, VIDEO["duration_s"], list(detections))
    return AgentDeps(ctx=Context(**ctx_changes), index=index, kb=FakeKB(), vlm=vlm)


def run(question, deps, graph=None, thread="t", events=None) -> dict:
    graph = graph or build_graph(InMemorySaver())
    final = {}
    for mode, chunk in graph.stream(
        {"video": VIDEO, "question": question},
        {"configurable": {"thread_id": thread}},
        context=deps,
        stream_mode=["custom", "values"],
    ):
        if mode == "custom" and events is not None:
            events.append(chunk)
        elif mode == "values":
            final = chunk
    return final


def runtime(deps) -> Runtime:
    return Runtime(context=deps, stream_writer=lambda event: None)


# --- nodes alone --------------------------------------------------------------------------


def test_plan_node_resets_the_turn_and_sets_the_window():
    deps = deps_for()
    stale = {
        "video": VIDEO,
        "question": "Does she wave between 0:05 and 0:10?",
        "findings": [{"clip_id": 9}],
        "step": 3,
        "tried": ["widen"],
    }
    update = nodes.plan(stale, runtime(deps))
    assert update["window"] == {"start_s": 5.0, "end_s": 10.0}
    assert update["step"] == 0 and update["tried"] == [] and update["findings"] == []
    assert Plan.model_validate(update["plan"]).targets == ["wave"]


def test_retrieve_node_filters_by_label_and_window():
    deps = deps_for()
    plan = Plan(question_type="when", targets=["thumbs_up"], query="thumbs up")
    state = {
        "video": VIDEO,
        "question": "q",
        "plan": plan.model_dump(),
        "window": {"start_s": 13.0, "end_s": 30.0},
        "query": "thumbs up",
        "step": 0,
    }
    update = nodes.retrieve(state, runtime(deps))
    assert update["step"] == 1
    assert [(d["label"], d["start_s"]) for d in update["detections"]] == [
        ("thumbs_up", 12.0),
        ("thumbs_up", 14.5),
    ]
    assert deps.index.searches[-1]["start_s"] == 13.0
    assert all(h["end_s"] >= 13.0 for h in update["hits"])


def test_inspect_node_streams_vlm_tokens_and_keeps_plain_findings(monkeypatch):
    monkeypatch.setattr("agent.video.sample_frames", lambda *a, **k: [0, 1, 2])
    vlm = FakeVLM(text="a thumb goes up", data={"present": True, "confidence": 0.9})
    deps = deps_for(vlm=vlm)
    written = []
    plan = Plan(question_type="when", targets=["thumbs_up"], query="thumbs up")
    state = {
        "video": VIDEO,
        "question": "When?",
        "plan": plan.model_dump(),
        "detections": [d.model_dump() for d in DETECTIONS[:1]],
        "hits": [{"clip_id": 2, "start_s": 20.0, "end_s": 30.0, "score": 0.5, "caption": ""}],
    }
    update = nodes.inspect(state, Runtime(context=deps, stream_writer=written.append))
    assert [f["clip_id"] for f in update["findings"]] == [1, 2]
    assert json.loads(json.dumps(update["findings"])) == update["findings"]
    tokens = "".join(e["text"] for e in written if e["type"] == "token")
    assert tokens.split() == ["a", "thumb", "goes", "up"] * 2
    assert [e["message"][:18] for e in written if e["type"] == "progress"] == [
        "inspecting clip 1/",
        "inspecting clip 2/",
    ]
    assert "thumbs_up" in vlm.calls[0]["snippet"]


def test_verify_node_retries_until_the_budget_is_spent():
    deps = deps_for(max_agent_steps=2)
    plan = Plan(question_type="when", targets=["wave"], query="wave", start_s=5.0, end_s=10.0)
    state = {
        "video": VIDEO,
        "question": "q",
        "plan": plan.model_dump(),
        "detections": [],
        "findings": [],
        "hits": [],
        "window": {"start_s": 5.0, "end_s": 10.0},
        "step": 1,
        "tried": [],
    }
    first = nodes.verify(state, runtime(deps))
    assert first["verdict"] == "retry" and first["tried"] == ["synonyms"]
    assert "waving" in first["query"]
    spent = nodes.verify({**state, **first, "step": 2}, runtime(deps))
    assert spent["verdict"] == "answer" and spent["reason"] == "budget"


def test_answer_node_builds_evidence_from_records_and_clamps_it():
    deps = deps_for()
    plan = Plan(question_type="when", targets=["happy"], query="smile")
    late = det("happy", "emotion", 28.0, 34.5, 0.9, "AU12 0.9").model_dump()
    state = {
        "video": VIDEO,
        "question": "When does he smile?",
        "plan": plan.model_dump(),
        "window": {"start_s": 0.0, "end_s": 30.0},
        "detections": [late],
        "step": 1,
    }
    update = nodes.answer(state, runtime(deps))
    reply = Answer.model_validate(update["answer"])
    assert [(e.start_s, e.end_s) for e in reply.evidence] == [(28.0, 30.0)]
    assert "AU12 0.9" in reply.evidence[0].rationale
    assert "AU6 cheek raiser" in reply.evidence[0].rationale  # the KB definition is quoted
    assert update["history"][0]["evidence"][0]["end_s"] == 30.0


def test_vlm_detections_name_the_model_the_index_says_described_the_clips():
    seen = det("happy", "emotion", 2.0, 8.0, 0.5, "smiles at 0:45", source="vlm")
    deps = deps_for([seen])
    plan = Plan(question_type="when", targets=["happy"], query="smile")
    state = {
        "video": VIDEO,
        "question": "When does he smile?",
        "plan": plan.model_dump(),
        "window": {"start_s": 0.0, "end_s": 30.0},
        "detections": [seen.model_dump()],
        "step": 1,
    }
    unknown = Answer.model_validate(nodes.answer(state, runtime(deps))["answer"])
    assert unknown.evidence[0].rationale.startswith("A vision-language model saw happy: ")
    assert "0:45" not in unknown.evidence[0].rationale  # a model-written cue keeps no time
    record = SimpleNamespace(settings={"vlm": "otter (org/otter-7b)"})
    deps.index.video = lambda sha: record if sha == SHA else None
    named = Answer.model_validate(nodes.answer(state, runtime(deps))["answer"])
    assert named.evidence[0].rationale.startswith("otter (org/otter-7b) saw happy")


# --- the whole graph --------------------------------------------------------------------------


def test_when_question_finds_merged_events_in_one_pass():
    events = []
    final = run("When does she give a thumbs up?", deps_for(), events=events)
    reply = Answer.model_validate(final["answer"])
    assert [(e.label, e.start_s, e.end_s) for e in reply.evidence] == [("thumbs_up", 12.0, 16.0)]
    assert "00:12.0" in reply.answer and final["step"] == 1
    stages = [e["stage"] for e in events if e["type"] == "progress"]
    assert stages[0] == "plan" and stages[-1] == "answer" and "inspect" in stages


def test_how_many_counts_merged_events_and_people():
    merged = run("How many times does she give a thumbs up?", deps_for())["answer"]
    assert "1 time " in merged["answer"]  # 12-14 s and 14.5-16 s are one event
    walkers = [
        det("walk", "action", 0.0, 8.0, person_id=1),
        det("walk", "action", 2.0, 9.0, person_id=2),
        det("walk", "action", 20.0, 25.0, person_id=1),
        det("walk", "action", 21.0, 29.0, person_id=3),
    ]
    reply = Answer.model_validate(run("How many people are walking?", deps_for(walkers))["answer"])
    assert reply.answer.startswith("3 people were seen walk ") and len(reply.evidence) == 4
    separate = [det("thumbs_up", "gesture", 1.0, 2.0), det("thumbs_up", "gesture", 9.0, 10.0)]
    counted = run("How many times does she give a thumbs up?", deps_for(separate))
    assert "2 times" in counted["answer"]["answer"]
    assert len(counted["answer"]["evidence"]) == 2


def test_nothing_found_says_so_and_invents_no_time():
    final = run("When does she wave?", deps_for())
    reply = Answer.model_validate(final["answer"])
    assert reply.evidence == [] and reply.found is False
    assert reply.answer.startswith(
        "I did not see wave in 00:00.0–00:30.0, so I cannot give a time."
    )
    # Other gestures seen follow, labelled as such and kept out of the evidence; the emotion
    # (another kind than the one asked about) is not listed.
    assert "Seen instead (other observations, not the answer): thumbs up at 00:12.0–00:16.0." in (
        reply.answer
    )
    assert [(e.label, e.start_s, e.end_s) for e in reply.other_evidence] == [
        ("thumbs_up", 12.0, 16.0)
    ]
    assert [(a.id, a.checkable) for a in reply.asked] == [("wave", True)]
    # Whole-video window: only the synonym re-query is left to try.
    assert final["tried"] == ["synonyms"] and final["step"] == 2


def test_loop_widens_an_explicit_window_and_says_where_it_found_it():
    final = run("When does she smile between 0:00 and 0:05?", deps_for())
    assert final["tried"] == ["synonyms", "neighbours", "widen"] and final["step"] == 4
    reply = Answer.model_validate(final["answer"])
    # Not in the window asked about: the answer says so, and what the widened search found is
    # another observation, not evidence for the question as asked.
    assert reply.found is False and reply.evidence == []
    assert [(e.start_s, e.end_s) for e in reply.other_evidence] == [(20.0, 25.0)]
    assert reply.answer.startswith("I did not see happy between 00:00.0 and 00:05.0")
    assert "Seen outside that window, when the search was widened" in reply.answer


def test_follow_up_windows_are_never_widened():
    graph, deps = build_graph(InMemorySaver()), deps_for([DETECTIONS[2]])
    run("When does he smile?", deps, graph, "w")
    after = run("and after that?", deps, graph, "w")
    assert after["tried"] == [] and after["step"] == 1
    assert after["answer"]["evidence"] == []
    assert after["answer"]["answer"] == (
        "Nothing else was detected after 00:25.0 (up to the end of the video at 00:30.0)."
    )


def test_budget_exhaustion_stops_the_loop():
    final = run("When does she wave between 0:00 and 0:05?", deps_for(max_agent_steps=2))
    assert final["step"] == 2 and final["reason"] == "budget"
    assert final["answer"]["evidence"] == []


def test_question_past_the_end_gets_a_clear_answer():
    index_calls = []
    deps = deps_for()
    deps.index.search = lambda *a, **k: index_calls.append(a)  # must not be reached
    final = run("What is she doing at 10:00?", deps)
    assert "only 00:30.0 long" in final["answer"]["answer"]
    assert "10:00" in final["answer"]["answer"] and final["answer"]["evidence"] == []
    assert index_calls == []


def test_vlm_times_are_never_copied_and_plan_parse_failure_keeps_rules(monkeypatch):
    monkeypatch.setattr("agent.video.sample_frames", lambda *a, **k: [0, 1])
    vlm = FakeVLM(
        text="At 99 s she waves.", data={"present": True, "start_s": 99.0}, plan_data=None
    )
    events = []
    final = run("When does she wave?", deps_for(vlm=vlm), events=events)
    assert "rule-based plan stands" in " ".join(final["trace"])
    assert Plan.model_validate(final["plan"]).source == "rules"
    reply = Answer.model_validate(final["answer"])
    # The backend and model are what the VLM object says it is, never "VideoLLaMA3".
    assert (reply.backend, reply.model_id) == ("fake-vlm", "fake-vlm") and reply.evidence
    for item in reply.evidence:  # clip spans from the index, not the model's 99 s
        assert 0.0 <= item.start_s <= item.end_s <= 30.0 and item.end_s - item.start_s == 10.0
        assert "99" not in item.rationale and "VideoLLaMA3" not in item.rationale
    assert "99" not in reply.answer and "VideoLLaMA3" not in reply.answer
    # The streamed tokens are the model's words without its times: here, nothing at all.
    assert not any("99" in e["text"] for e in events if e["type"] == "token")


# --- adversarial VLM replies: the model may say *what*, never *when* ---------------------------

CLOCK = re.compile(r"(\d+):(\d{2}(?:\.\d)?)")


def cited_times_s(text: str) -> list[float]:
    """Every mm:ss time written in a text, in seconds."""
    return [int(m) * 60 + float(s) for m, s in CLOCK.findall(text)]


def ask_with_reply(monkeypatch, question: str, text: str, data: dict | None) -> dict:
    """The whole graph with a VLM that gives this reply on every clip (no wave detected)."""
    monkeypatch.setattr("agent.video.sample_frames", lambda *a, **k: [0, 1])
    return run(question, deps_for(vlm=FakeVLM(text=text, data=data)))


def assert_no_model_time(final: dict, *written: str) -> None:
    reply = Answer.model_validate(final["answer"])
    texts = [reply.answer, *(e.rationale for e in reply.evidence)]
    for text in texts:
        assert not any(w in text for w in written), text
        assert all(t <= VIDEO["duration_s"] for t in cited_times_s(text)), text
    for item in reply.evidence:  # only clip spans of the index, inside the 30 s video
        assert 0.0 <= item.start_s <= item.end_s <= VIDEO["duration_s"]
        assert (item.start_s, item.end_s) in {(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)}


def test_a_negation_with_a_time_is_not_presence(monkeypatch):
    text = "No, nobody waves; at 0:05 she only scratches her head."
    final = ask_with_reply(monkeypatch, "Does she wave?", text, parse_answer(text))
    assert final["reason"] != "supported"
    reply = Answer.model_validate(final["answer"])
    assert [e for e in reply.evidence if e.label == "wave"] == []
    assert reply.answer.startswith("No, not seen: I did not see wave in 00:00.0–00:30.0.")
    assert reply.found is False
    assert_no_model_time(final, "0:05", "00:05")


def test_prose_times_past_the_end_are_neither_presence_nor_quoted(monkeypatch):
    text = "She waves from 0:31 to 0:40 and again at 99 s."
    final = ask_with_reply(monkeypatch, "When does she wave?", text, parse_answer(text))
    assert final["reason"] != "supported" and final["answer"]["evidence"] == []
    assert_no_model_time(final, "0:31", "0:40", "99")


def test_json_moments_past_the_end_give_clip_times_and_no_quoted_time(monkeypatch):
    text = (
        '{"answer": "She waves at 45 s.", "moments": '
        '[{"start_s": 45.0, "end_s": 50.0, "label": "waving"}], "confidence": 0.8}'
    )
    final = ask_with_reply(monkeypatch, "When does she wave?", text, parse_answer(text))
    assert final["reason"] == "supported"  # the model's label names the target
    reply = Answer.model_validate(final["answer"])
    assert reply.evidence and {e.label for e in reply.evidence} == {"wave"}
    assert "fake-vlm reports wave in this clip." in reply.evidence[0].rationale
    assert "reports it in 3 clip(s): 00:00.0–00:10.0" in reply.answer
    assert_no_model_time(final, "45", "50")


def test_open_answers_quote_only_the_model_sentences_without_times(monkeypatch):
    text = "She scratches her head at 1:40. She is seated at a table; later she smiles."
    final = ask_with_reply(monkeypatch, "What is she doing?", text, parse_answer(text))
    reply = Answer.model_validate(final["answer"])
    assert "fake-vlm says: She is seated at a table. Later she smiles." in reply.answer
    assert "VideoLLaMA3" not in reply.answer
    assert_no_model_time(final, "1:40", "01:40")


def test_vlm_plan_refinement_is_used_when_valid(monkeypatch):
    monkeypatch.setattr("agent.video.sample_frames", lambda *a, **k: [0])
    vlm = FakeVLM(plan_data={"question_type": "when", "targets": ["happy"], "occurrence": "last"})
    final = run("When is he glad for the last time?", deps_for(vlm=vlm))
    plan = Plan.model_validate(final["plan"])
    assert plan.source == "vlm" and plan.targets == ["happy"]
    prompt = vlm.calls[0]["prompt"]  # the plan prompt: question, rule plan, schema, class ids
    assert "When is he glad for the last time?" in prompt and "thumbs_up, happy" in prompt
    assert '"question_type"' in prompt and "{" not in prompt.split("Question:")[0]
    assert [e["label"] for e in final["answer"]["evidence"]] == ["happy"]


def test_subject_on_the_left_picks_that_person():
    people = [
        det("wave", "gesture", 1.0, 3.0, bbox=[0.05, 0.2, 0.2, 0.5], person_id=1),
        det("thumbs_up", "gesture", 5.0, 7.0, bbox=[0.7, 0.2, 0.2, 0.5], person_id=2),
    ]
    final = run("What gestures does the woman on the right make?", deps_for(people))
    assert [e["label"] for e in final["answer"]["evidence"]] == ["thumbs_up"]
    unplaced = run("What gestures does the man on the left make?", deps_for(DETECTIONS))
    assert "could not single out the man on the left" in unplaced["answer"]["answer"]


def test_anchor_after_sitting_down():
    seq = [
        det("sit_down", "action", 4.0, 6.0),
        det("wave", "gesture", 2.0, 3.0),
        det("wave", "gesture", 10.0, 11.0),
    ]
    final = run("When does she wave after she sits down?", deps_for(seq))
    assert [e["start_s"] for e in final["answer"]["evidence"]] == [10.0]


def test_follow_ups_in_one_thread():
    graph, deps = build_graph(InMemorySaver()), deps_for()
    run("When does she give a thumbs up?", deps, graph, "a")
    after = run("and after that?", deps, graph, "a")
    assert [e["label"] for e in after["answer"]["evidence"]] == ["happy"]
    length = run("How long did it last?", deps, graph, "a")
    assert "5.0 s" in length["answer"]["answer"]
    fresh = run("How long did it last?", deps, graph, "b")
    assert "no earlier answer" in fresh["answer"]["answer"]


def test_threads_survive_a_restart(tmp_path: Path):
    path = tmp_path / "threads.sqlite"
    first = open_checkpointer(path)
    run("When does she give a thumbs up?", deps_for(), build_graph(first), "kept")
    first.conn.close()
    second = build_graph(open_checkpointer(path))  # a new graph on the same file
    final = run("How long did it last?", deps_for(), second, "kept")
    assert "4.0 s" in final["answer"]["answer"]
    assert len(final["history"]) == 2


def test_threads_survive_a_new_process(tmp_path: Path):
    path = tmp_path / "threads.sqlite"
    first = open_checkpointer(path)
    run("When does she give a thumbs up?", deps_for(), build_graph(first), "proc")
    first.conn.close()
    script = textwrap.dedent(f"""
        from tests.test_agent_graph import build_graph, deps_for, open_checkpointer, run
        from pathlib import Path
        final = run("and how long did it last?", deps_for(),
                    build_graph(open_checkpointer(Path({str(path)!r}))), "proc")
        print(final["answer"]["answer"])
    """)
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Thumbs up lasted 4.0 s" in out.stdout


def test_state_holds_only_plain_data():
    final = run("When does she give a thumbs up?", deps_for())
    assert json.loads(json.dumps(final)) == final


@pytest.mark.parametrize("question", ["Describe the video.", "What is happening at 0:21?"])
def test_open_questions_list_what_was_seen(question):
    reply = Answer.model_validate(run(question, deps_for())["answer"])
    assert reply.evidence and all(isinstance(e, Evidence) for e in reply.evidence)


class CloserSession:
    """Stands in for PerceptionSession when the agent looks closer: sees happy from 0.7 s."""

    spans: list[tuple[float, float]] = []

    def __init__(self, perceiver, kb, ctx) -> None:
        self.fps = ctx.sample_fps
        self.times: list[float] = []

    def add(self, batch) -> None:
        self.times += [float(t) for t in batch.timestamps_s]

    def finish(self) -> list[Detection]:
        CloserSession.spans.append((self.times[0], self.times[-1], self.fps))
        return [det("happy", "emotion", 0.7, self.times[-1], 0.9, "AU12 0.9")]


def test_onset_is_refined_by_looking_closer(monkeypatch):
    from agent.video import FrameBatch

    def frames(path, start_s, end_s, fps, ctx):
        times = [round(start_s + i / fps, 3) for i in range(int((end_s - start_s) * fps))]
        yield FrameBatch(None, list(range(len(times))), times)

    monkeypatch.setattr("agent.perception.runner.iter_frames", frames)
    deps = deps_for([det("neutral", "emotion", 0.0, 1.0), det("happy", "emotion", 1.0, 2.4)])
    deps.perceiver, deps.session_factory = object(), CloserSession
    final = run("When does he start smiling?", deps)
    assert [e["start_s"] for e in final["answer"]["evidence"]] == [0.7]
    assert "starts at 00:00.7" in final["answer"]["answer"]
    # One coarse step before, and on to the detection's end (2.4 s; at most 2.5 s past its
    # start): a look that stopped 0.5 s in would cut a class that must be held 1 s.
    assert CloserSession.spans[-1] == (0.4, 2.3, 10.0)
    plain = run("When does he smile?", deps)  # no onset asked: no closer look
    assert [e["start_s"] for e in plain["answer"]["evidence"]] == [1.0]
    assert len(CloserSession.spans) == 1
