"""The agent API and CLI over a real index (SQLite, FAISS, MiniLM) with a perception double."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.api import AgentService, ask, new_thread_id
from agent.cli import app
from agent.context import Context
from agent.state import Detection
from tests.synthetic import write_video

# What the perception double "sees" in the synthetic video (12 s, one cut at 6 s).
SEEN = [
    Detection(
        kind="gesture",
        label="thumbs_up",
        start_s=2.0,
        end_s=4.5,
        confidence=0.9,
        cues="thumb extended upward, other fingers curled",
    ),
    Detection(
        kind="emotion",
        label="happy",
        start_s=7.0,
        end_s=11.0,
        confidence=0.7,
        cues="AU12 lip corner puller 0.8, AU6 cheek raiser 0.5",
    ),
]


class SeenSession:
    """Stands in for PerceptionSession: counts the frames it gets, returns SEEN."""

    frames = 0

    def __init__(self, perceiver, kb, ctx) -> None:
        pass

    def add(self, batch) -> None:
        SeenSession.frames += len(batch)

    def finish(self) -> list[Detection]:
        return list(SEEN)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("media") / "two_scenes.mp4", [6.0, 6.0])


@pytest.fixture
def service(home: Path, monkeypatch):
    # The double's detections are checked as their rules, whatever calibration switches off.
    monkeypatch.setattr("agent.perception.capabilities.calibration", lambda: {})
    made = AgentService(Context.from_env(), session_factory=SeenSession, perceiver=object())
    yield made
    made.close()


def test_service_indexes_once_and_answers_with_evidence(service, video):
    events = []
    reply = service.ask(video, "When does she give a thumbs up?", on_event=events.append)
    assert [(e.label, e.start_s, e.end_s) for e in reply.evidence] == [("thumbs_up", 2.0, 4.5)]
    assert reply.evidence[0].video == str(video) and reply.evidence[0].clip_id == 0
    stages = [e["stage"] for e in events]
    assert any(s.startswith("index:") for s in stages) and "retrieve" in stages
    frames_after_first = SeenSession.frames
    again = service.ask(video, "When does he smile?")
    assert SeenSession.frames == frames_after_first  # indexed once, reused
    assert [(e.label, e.start_s) for e in again.evidence] == [("happy", 7.0)]


def test_follow_up_through_the_service_survives_a_new_service(home, video):
    thread = new_thread_id()
    first = AgentService(Context.from_env(), session_factory=SeenSession, perceiver=object())
    first.ask(video, "When does she give a thumbs up?", thread_id=thread)
    first.close()
    second = AgentService(Context.from_env(), session_factory=SeenSession, perceiver=object())
    reply = second.ask(video, "How long did it last?", thread_id=thread)
    assert "2.5 s" in reply.answer
    assert [t["question"] for t in second.history(thread)] == [
        "When does she give a thumbs up?",
        "How long did it last?",
    ]
    assert (home / "threads.sqlite").is_file()
    second.close()


def test_ask_function_and_past_the_end(service, video, monkeypatch):
    monkeypatch.setattr("agent.api.get_service", lambda ctx=None, vlm=None: service)
    reply = ask(video, "What is she doing at 10:00?")
    assert "only 00:12.0 long" in reply.answer and reply.evidence == []


def test_empty_question_is_a_user_error(service, video):
    from agent.errors import BehaviorAgentError

    with pytest.raises(BehaviorAgentError, match="question is empty"):
        service.ask(video, "   ")


def test_cli_json_and_table(service, video, monkeypatch):
    monkeypatch.setattr("agent.api.AgentService", lambda ctx: service)
    monkeypatch.setattr(service, "close", lambda: None)
    runner = CliRunner()
    result = runner.invoke(app, ["ask", str(video), "When does she give a thumbs up?", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"answer", "found", "evidence", "other_evidence", "asked", "backend"}
    assert payload["backend"] == "perception" and payload["found"] is True
    assert payload["evidence"][0]["start_s"] == 2.0
    assert payload["asked"][0]["id"] == "thumbs_up" and payload["asked"][0]["checkable"] is True
    absent = runner.invoke(app, ["ask", str(video), "When does she wave?", "--json"])
    not_seen = json.loads(absent.stdout)
    assert not_seen["found"] is False and not_seen["evidence"] == []
    assert not_seen["answer"].startswith("I did not see waving in 00:00.0–00:12.0")
    assert [e["label"] for e in not_seen["other_evidence"]] == ["thumbs_up"]
    piano = json.loads(
        runner.invoke(app, ["ask", str(video), "Is she playing piano?", "--json"]).stdout
    )
    assert piano["found"] is False and piano["evidence"] == piano["other_evidence"] == []
    assert piano["answer"].startswith("The offline backend cannot recognise playing piano")
    assert piano["asked"][0]["checkable"] is False
    table = runner.invoke(app, ["ask", str(video), "When does he smile?"])
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0] == "Happiness at 00:07.0–00:11.0."
    assert any(line.split()[:3] == ["1", "00:07.0", "00:11.0"] for line in lines)
