"""The agent end to end on real media: real perception, index, knowledge base, CLI, tiny VLM."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.api import AgentService
from agent.context import Context

pytestmark = pytest.mark.slow

THUMB = "gesture_thumb_up_mediapipe_samples_test_video.mp4"
SMILE = "emotion_neutral_then_happy_pyfeat_single_face.mp4"
WALKERS = "scene_pedestrians_walking_opencv_vtest.avi"
TEN_SECONDS = "action_yoga_askanything.mp4"


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """One data directory for the module: each video is indexed once, then reused."""
    return tmp_path_factory.mktemp("agent_home")


@pytest.fixture(scope="module")
def service(library):
    made = AgentService(Context.from_env(home=library, backend="perception"))
    yield made
    made.close()


def test_thumbs_up_evidence_lies_inside_the_labelled_span(service, shared_media):
    reply = service.ask(shared_media / THUMB, "When does she give a thumbs up?")
    assert reply.evidence, reply.answer
    for item in reply.evidence:
        assert item.label == "thumbs_up"
        assert 2.2 <= item.start_s <= item.end_s <= 7.81, item
        assert "Knowledge base:" in item.rationale
    assert "I found no" not in reply.answer


def test_smile_onset_is_about_0_6_s(service, shared_media):
    events = []
    reply = service.ask(shared_media / SMILE, "When does he start smiling?", on_event=events.append)
    assert [e.label for e in reply.evidence] == ["happy"]
    onset_s = reply.evidence[0].start_s
    assert abs(onset_s - 0.6) <= 0.25, reply.answer
    assert "starts at 00:00." in reply.answer
    assert any("looking closer" in e.get("message", "") for e in events)


def test_how_many_people_walk_gives_a_number_with_evidence(service, shared_media):
    reply = service.ask(shared_media / WALKERS, "How many people are walking?")
    count = int(reply.answer.split()[0])
    assert count >= 2, reply.answer
    assert len(reply.evidence) == count  # one moment per counted person
    assert {e.label for e in reply.evidence} == {"walk"}
    assert all(0.0 <= e.start_s < e.end_s <= 79.5 for e in reply.evidence)


def test_question_past_the_end_of_a_ten_second_video(service, shared_media):
    reply = service.ask(shared_media / TEN_SECONDS, "What is she doing at 10:00?")
    assert reply.evidence == []
    assert "only 00:10.0 long" in reply.answer and "10:00" in reply.answer


def _cli(library: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BEHAVIOR_AGENT_HOME": str(library)}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "ask", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_cli_follow_up_in_a_new_process(service, library, shared_media):
    """The first question in this process, the follow-up from the CLI in another one."""
    video = shared_media / THUMB
    first = service.ask(video, "When does she give a thumbs up?", thread_id="t1")
    span = first.evidence[0]
    second = _cli(library, str(video), "How long did it last?", "--thread", "t1", "--json")
    assert second.returncode == 0, second.stderr
    payload = json.loads(second.stdout)
    assert set(payload) == {"answer", "found", "evidence", "other_evidence", "asked", "backend"}
    assert payload["backend"] == "perception" and payload["found"] is True
    assert f"lasted {span.end_s - span.start_s:.1f} s" in payload["answer"]
    assert payload["evidence"][0]["start_s"] == span.start_s
    assert "[plan] planning: How long did it last?" in second.stderr  # progress on stderr
    assert [t["question"] for t in service.history("t1")][-1] == "How long did it last?"


def test_cli_reports_a_missing_video_in_one_line(library, tmp_path):
    result = _cli(library, str(tmp_path / "nope.mp4"), "When does she wave?")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: No such file")
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    from agent.vlm import load_vlm
    from agent.vlm.tiny import build_tiny_vl3

    folder = build_tiny_vl3(tmp_path_factory.mktemp("vl3") / "tiny")
    return load_vlm(Context(model_id=str(folder), device="cpu", max_new_tokens=12))


def test_whole_graph_with_the_tiny_videollama3(tiny_vlm, shared_media, tmp_path):
    ctx = Context.from_env(home=tmp_path / "home", max_new_tokens=12, device="cpu")
    service = AgentService(ctx, vlm=tiny_vlm)
    events = []
    try:
        reply = service.ask(
            shared_media / SMILE,
            "What emotion does he show?",
            thread_id="v",
            on_event=events.append,
        )
        trace = service.trace("v")
    finally:
        service.close()
    assert reply.backend == "videollama3" and reply.answer
    assert any(e["type"] == "token" for e in events)  # VLM tokens streamed
    assert any(e.get("stage") == "index:describe" for e in events)  # captions at indexing
    # Refinement was tried through generate(); noise fails the schema, so the rules stand.
    assert any("plan stands" in line or "plan refined" in line for line in trace), trace
    for item in reply.evidence:  # whatever the noise says, times are the system's
        assert 0.0 <= item.start_s <= item.end_s <= 2.44
