"""The video layer on synthetic videos with known content, on bad inputs and on real media."""

import hashlib
import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from agent.context import Context
from agent.errors import VideoError
from agent.video import (
    FrameBatch,
    iter_frames,
    probe,
    read_ahead,
    sample_frames,
    sample_indices,
    segment,
    windows_between_cuts,
)
from tests.synthetic import cut_times, write_video

SCENES_S = [3.0, 4.2, 2.6]  # cuts at 3.0 s and 7.2 s
FPS = 25.0


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(
        tmp_path_factory.mktemp("v") / "cuts.mp4", SCENES_S, fps=FPS, size=(322, 186)
    )


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(home=tmp_path / "home")


def test_probe_reports_the_written_stream(cut_video: Path, ctx: Context) -> None:
    info = probe(cut_video, ctx)
    assert (info.width, info.height) == (322, 186)
    assert info.fps == pytest.approx(FPS)
    assert info.frame_count == int(sum(SCENES_S) * FPS)
    assert info.duration_s == pytest.approx(sum(SCENES_S), abs=1.0 / FPS)
    assert info.sha256 == hashlib.sha256(cut_video.read_bytes()).hexdigest()


def test_sampled_timestamps_are_the_readers(cut_video: Path, ctx: Context) -> None:
    batch = sample_frames(cut_video, 1.0, 4.0, fps=2.0, ctx=ctx)
    # 2 fps on a 25 fps stream: frames on screen at 1.0, 1.5, ... 3.5 s.
    assert batch.timestamps_s == pytest.approx([1.0, 1.48, 2.0, 2.48, 3.0, 3.48], abs=1e-3)
    assert batch.frame_indices.tolist() == [25, 37, 50, 62, 75, 87]
    assert batch.frames.shape == (6, 186, 322, 3)
    # The frame at 3.0 s is the first of the second scene: red (RGB) gives way to blue.
    red_before, red_after = (batch.frames[i].mean(axis=(0, 1))[0] for i in (3, 4))
    assert red_before > 150 > 80 > red_after


def test_uniform_sampling_and_frame_cap(cut_video: Path, ctx: Context) -> None:
    uniform = sample_frames(cut_video, 0.0, 8.0, num_frames=4, ctx=ctx)
    assert uniform.timestamps_s == pytest.approx([1.0, 3.0, 5.0, 7.0], abs=1.0 / FPS)
    capped = sample_frames(cut_video, fps=10.0, max_frames=7, ctx=ctx)
    assert len(capped) == 7
    assert capped.timestamps_s[0] == 0.0
    assert capped.timestamps_s[-1] > 9.0


def test_iter_frames_decodes_in_bounded_batches(cut_video: Path, tmp_path: Path) -> None:
    ctx = Context(home=tmp_path, decode_batch=4)
    batches = list(iter_frames(cut_video, fps=2.0, ctx=ctx))
    assert all(len(b) <= 4 for b in batches)
    times = np.concatenate([b.timestamps_s for b in batches])
    assert np.all(np.diff(times) > 0)
    assert len(times) == 20  # 9.8 s at 2 fps: 0.0, 0.5, ... 9.5


def test_sample_indices_maps_times_to_the_frame_on_screen() -> None:
    starts = np.arange(100) / 10.0  # 10 fps
    assert sample_indices(starts, 0.0, 1.0, fps=4.0).tolist() == [0, 2, 5, 7]
    assert sample_indices(starts, 2.0, 3.0, num_frames=2).tolist() == [22, 27]
    assert sample_indices(starts, 20.0, 30.0, fps=1.0).tolist() == [99]
    assert sample_indices(starts, 5.0, 4.0, fps=1.0).tolist() == []


def test_segment_finds_cuts_within_one_sampled_frame(cut_video: Path, ctx: Context) -> None:
    clips = segment(cut_video, ctx)
    boundaries = [c.start_s for c in clips[1:]]
    for true_cut in cut_times(SCENES_S):
        nearest = min(boundaries, key=lambda b: abs(b - true_cut))
        assert 0 <= nearest - true_cut <= 1.0 / ctx.sample_fps + 1e-6
    assert len({c.shot_index for c in clips}) == 3


def test_segment_clips_are_contiguous_and_inside_the_video(cut_video: Path, tmp_path: Path):
    ctx = Context(home=tmp_path, clip_length_s=2.0, min_clip_s=0.5)
    info = probe(cut_video, ctx)
    clips = segment(cut_video, ctx)
    assert clips[0].start_s == 0.0
    assert clips[-1].end_s == pytest.approx(info.duration_s, abs=1e-3)
    for before, after in pairwise(clips):
        assert after.start_s == pytest.approx(before.end_s)
        assert after.clip_id == before.clip_id + 1
    for clip in clips:  # no clip straddles a cut
        assert not any(clip.start_s < cut < clip.end_s - 0.5 for cut in [3.0, 7.2])
        assert clip.end_s - clip.start_s <= ctx.clip_length_s + ctx.min_clip_s


def test_windows_merge_a_short_tail_and_honour_overlap(tmp_path: Path) -> None:
    ctx = Context(home=tmp_path, clip_length_s=10.0, min_clip_s=2.0)
    spans = [(c.start_s, c.end_s) for c in windows_between_cuts([], 21.0, ctx)]
    assert spans == [(0.0, 10.0), (10.0, 21.0)]
    spans = [(c.start_s, c.end_s) for c in windows_between_cuts([4.0], 25.0, ctx)]
    assert spans == [(0.0, 4.0), (4.0, 14.0), (14.0, 25.0)]
    overlapped = windows_between_cuts([], 20.0, ctx.replace(clip_overlap_s=2.0))
    assert [(c.start_s, c.end_s) for c in overlapped] == [(0.0, 10.0), (8.0, 18.0), (16.0, 20.0)]


# --- bad input ----------------------------------------------------------------------------


def _text_as_mp4(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("these are meeting notes, not a video\n")
    return path


def _truncated(tmp_path: Path, source: Path) -> Path:
    path = tmp_path / "truncated.mp4"
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    return path


def _zero_frames(tmp_path: Path) -> Path:
    import cv2

    path = tmp_path / "zero.mp4"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48)).release()
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp, src: tmp / "missing.mp4", "No such file"),
        (lambda tmp, src: tmp, "is a folder"),
        (lambda tmp, src: (tmp / "empty.mp4").write_bytes(b"") or tmp / "empty.mp4", "empty"),
        (lambda tmp, src: _text_as_mp4(tmp), "Cannot read"),
        (lambda tmp, src: _zero_frames(tmp), "Cannot read"),
        (lambda tmp, src: _truncated(tmp, src), "ffmpeg"),
    ],
    ids=["missing", "folder", "empty", "text-as-mp4", "zero-frames", "truncated"],
)
def test_bad_input_raises_one_actionable_error(make, expected, cut_video, tmp_path, ctx) -> None:
    bad = make(tmp_path, cut_video)
    with pytest.raises(VideoError, match=expected) as caught:
        probe(bad, ctx)
    assert "\n" not in str(caught.value)


def test_caps_on_resolution_and_duration(cut_video: Path, tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="BEHAVIOR_AGENT_MAX_FRAME_PIXELS"):
        probe(cut_video, Context(home=tmp_path, max_frame_pixels=320 * 180))
    with pytest.raises(VideoError, match="BEHAVIOR_AGENT_MAX_DURATION_S"):
        probe(cut_video, Context(home=tmp_path, max_duration_s=5.0))


def test_frames_are_decoded_at_capped_size(tmp_path: Path) -> None:
    big = write_video(tmp_path / "big.mp4", [1.0], fps=10, size=(1920, 1080))
    batch = sample_frames(big, fps=2.0, ctx=Context(home=tmp_path, decode_max_side=640))
    assert batch.frames.shape[1:] == (360, 640, 3)
    assert probe(big, Context(home=tmp_path)).width == 1920


# --- real media --------------------------------------------------------------------------


def _video_rows(manifest: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["file"]: row for row in manifest if row["fps"]}


def test_probe_agrees_with_the_manifest(shared_media: Path, manifest, ctx: Context) -> None:
    rows = _video_rows(manifest)
    assert len(rows) >= 8
    for name, row in rows.items():
        info = probe(shared_media / name, ctx)
        fps = float(row["fps"])
        assert info.fps == pytest.approx(fps, rel=1e-3), name
        assert info.duration_s == pytest.approx(float(row["duration_s"]), abs=1.5 / fps), name
        assert (info.width, info.height) == (int(row["width"]), int(row["height"])), name


def test_segment_covers_every_shared_video(shared_media: Path, manifest, ctx: Context) -> None:
    for name in _video_rows(manifest):
        info = probe(shared_media / name, ctx)
        clips = segment(shared_media / name, ctx)
        assert clips[0].start_s == 0.0 and clips[-1].end_s == pytest.approx(info.duration_s)
        assert all(a.end_s == pytest.approx(b.start_s) for a, b in pairwise(clips))


# --- CLI --------------------------------------------------------------------------------------


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {"BEHAVIOR_AGENT_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, env=env
    )


def test_cli_probe_and_segment_json(cut_video: Path, tmp_path: Path) -> None:
    probed = _cli("probe", str(cut_video), "--json", home=tmp_path)
    assert probed.returncode == 0, probed.stderr
    payload = json.loads(probed.stdout)
    assert set(payload) == {"path", "duration_s", "fps", "frame_count", "width", "height", "sha256"}
    segmented = json.loads(_cli("segment", str(cut_video), "--json", home=tmp_path).stdout)
    assert set(segmented) == {"video", "clips"}
    assert set(segmented["clips"][0]) == {"clip_id", "start_s", "end_s"}
    table = _cli("segment", str(cut_video), home=tmp_path).stdout
    assert "00:03.0" in table


def test_cli_error_is_one_line_and_nonzero(tmp_path: Path) -> None:
    result = _cli("probe", str(_text_as_mp4(tmp_path)), home=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Cannot read")
    assert result.stdout == ""


def test_cli_probe_and_segment_work_on_every_shared_file(shared_media: Path, tmp_path) -> None:
    """Videos and stills alike: a still is a one-frame 'video' at 0 s with one clip."""
    files = sorted(
        p for p in shared_media.iterdir() if p.suffix.lower() != ".csv" and p.suffix != ".md"
    )
    assert len(files) >= 13
    for media in files:
        probed = _cli("probe", str(media), "--json", home=tmp_path)
        assert probed.returncode == 0, (media.name, probed.stderr)
        info = json.loads(probed.stdout)
        clips = json.loads(_cli("segment", str(media), "--json", home=tmp_path).stdout)["clips"]
        assert clips[0]["start_s"] == 0.0
        assert clips[-1]["end_s"] == pytest.approx(info["duration_s"])
        if media.suffix == ".png":
            assert (info["duration_s"], info["frame_count"]) == (0.0, 1)
            assert len(clips) == 1


def test_still_image_caps_and_unreadable_images(tmp_path: Path) -> None:
    from PIL import Image

    still = tmp_path / "still.png"
    Image.new("RGB", (400, 300), (10, 200, 30)).save(still)
    assert probe(still, Context(home=tmp_path)).width == 400
    with pytest.raises(VideoError, match="BEHAVIOR_AGENT_MAX_FRAME_PIXELS"):
        probe(still, Context(home=tmp_path, max_frame_pixels=100 * 100))
    broken = tmp_path / "broken.jpg"
    broken.write_text("not really a jpeg")
    with pytest.raises(VideoError, match="as an image"):
        probe(broken, Context(home=tmp_path))


def test_read_ahead_keeps_order_raises_in_place_and_decodes_one_batch_ahead():
    made: list[int] = []

    def batches():
        for number in range(5):
            made.append(number)
            if number == 3:
                raise VideoError("frame 3 cannot be decoded")
            yield FrameBatch(np.zeros((1, 2, 2, 3), np.uint8), np.array([number]), np.zeros(1))

    seen = []
    with pytest.raises(VideoError, match="frame 3"):
        for batch in read_ahead(batches()):
            seen.append(int(batch.frame_indices[0]))
    assert seen == [0, 1, 2]

    made.clear()
    for batch in read_ahead(batches()):
        if batch.frame_indices[0] == 1:
            break
    assert made == [0, 1, 2]  # the one batch ahead, no more


@pytest.mark.parametrize(
    "name",
    [
        "gesture_thumb_up_mediapipe_samples_test_video.mp4",
        "scene_pedestrians_walking_opencv_vtest.avi",
        "emotion_sad_cremad_1001_DFA_SAD_XX.mp4",
    ],
)
def test_frames_read_forward_are_the_frames_random_access_decodes(shared_media, ctx, name):
    import decord

    from agent.video import iter_stretch

    path = shared_media / name
    reference = decord.VideoReader(str(path), ctx=decord.cpu(0))

    def check(batches):
        batches = list(batches)
        assert batches, "no frames read"
        for batch in batches:
            expected = reference.get_batch(batch.frame_indices.tolist()).asnumpy()
            assert np.array_equal(batch.frames, expected), f"{name}: frames {batch.frame_indices}"
        return np.concatenate([b.frame_indices for b in batches])

    small = ctx.replace(decode_batch=5)
    # The 2 frames/s grid (read forward, across batches), a stretch starting mid-video, and a
    # sparse sample whose gaps are long enough to be sought.
    check(iter_frames(path, fps=2.0, ctx=small))
    middle_s = float(reference.get_frame_timestamp([len(reference) // 2])[0, 0])
    assert check(iter_stretch(path, middle_s, np.inf, small))[0] >= len(reference) // 2 - 1
    sparse = check(iter_frames(path, num_frames=3, ctx=small))
    assert len(sparse) == 3
