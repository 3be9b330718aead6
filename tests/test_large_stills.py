"""Large and damaged stills: a 12-megapixel photo of a V sign, the same photo stored sideways
with an EXIF orientation tag, a truncated JPEG, and a still above the pixel cap."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.context import Context
from agent.errors import VideoError
from agent.perception import Perceiver, perceive_image
from agent.perception.landmarks import Hand, _distinct, tiles
from agent.video import probe, read_image

CLI = str(Path(sys.executable).parent / "behavior-agent")
PHOTO_SIZE = (4000, 3000)  # a 12-megapixel phone photo, landscape
EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def v_sign_photo(shared_media) -> Image.Image:
    """Noise background (no hand anywhere) with the HaGRID V sign scaled to ~1000 px, pasted
    off-centre: a hand that the whole-image palm detector sees at ~50 px."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (PHOTO_SIZE[1] // 8, PHOTO_SIZE[0] // 8, 3), dtype=np.uint8)
    photo = Image.fromarray(noise).resize(PHOTO_SIZE, Image.Resampling.BILINEAR)
    with Image.open(shared_media / "gesture_peace_hagrid_gestures_png_crop.png") as crop:
        hand = crop.convert("RGB").resize((1000, 1000), Image.Resampling.BICUBIC)
    photo.paste(hand, (2600, 400))
    return photo


@pytest.fixture(scope="module")
def perceiver():
    with Perceiver(Context()) as shared:
        yield shared


def gestures(path: Path, perceiver) -> list[str]:
    found = perceive_image(path, Context(), perceiver=perceiver)
    ranked = sorted((d for d in found if d.kind == "gesture"), key=lambda d: -d.confidence)
    return [d.label for d in ranked]


@pytest.mark.slow
def test_v_sign_in_a_12_megapixel_photo(v_sign_photo, perceiver, tmp_path):
    path = tmp_path / "photo.png"
    v_sign_photo.save(path)
    labels = gestures(path, perceiver)
    assert labels and labels[0] == "victory", labels


@pytest.mark.slow
@pytest.mark.parametrize(("rotate_deg", "orientation"), [(90, 6), (-90, 8)])
def test_sideways_jpeg_with_exif_orientation_is_read_upright(
    v_sign_photo, perceiver, tmp_path, rotate_deg, orientation
):
    """Phones store the sensor's pixels and an orientation tag: 6 = turn 90 deg clockwise to
    view (pixels stored turned counter-clockwise), 8 = the other way."""
    stored = v_sign_photo.rotate(rotate_deg, expand=True)
    assert stored.size == PHOTO_SIZE[::-1]
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    path = tmp_path / "phone.jpg"
    stored.save(path, quality=92, exif=exif)
    upright = read_image(path)
    assert upright.shape == (PHOTO_SIZE[1], PHOTO_SIZE[0], 3)
    # The pasted hand is back where it was (top right), not in a rotated corner.
    original = np.asarray(v_sign_photo)
    region = (slice(400, 1400), slice(2600, 3600))
    assert np.abs(upright[region].astype(int) - original[region]).mean() < 8.0
    labels = gestures(path, perceiver)
    assert labels and labels[0] == "victory", labels


def test_truncated_jpeg_says_it_is_damaged(v_sign_photo, tmp_path):
    whole = tmp_path / "whole.jpg"
    v_sign_photo.resize((800, 600)).save(whole, quality=90)
    data = whole.read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(data[: len(data) // 2])
    for read in (read_image, probe, perceive_image):
        with pytest.raises(VideoError, match="damaged") as error:
            read(broken, Context())
        assert str(broken) in str(error.value) and "re-export" in str(error.value)


def test_not_an_image_says_so(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not pixels")
    with pytest.raises(VideoError, match="damaged or not an image"):
        read_image(fake)


def test_still_above_the_pixel_cap_is_refused_with_the_cap(v_sign_photo, tmp_path):
    path = tmp_path / "photo.jpg"
    v_sign_photo.save(path, quality=80)
    ctx = Context(max_frame_pixels=10_000_000)
    with pytest.raises(VideoError, match=r"4000x3000, above the cap of 10,000,000 pixels"):
        probe(path, ctx)
    with pytest.raises(VideoError, match=r"above the cap of 10,000,000 pixels"):
        perceive_image(path, ctx)
    # The command line says the same, in one line, and exits non-zero.
    done = subprocess.run(
        [CLI, "perceive", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BEHAVIOR_AGENT_MAX_FRAME_PIXELS": "10000000"},
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "above the cap of 10,000,000 pixels" in done.stderr
    assert "BEHAVIOR_AGENT_MAX_FRAME_PIXELS" in done.stderr


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    Image.new("RGB", (3000, 2000), "white").save(path)
    # Pillow refuses images over twice its limit at open, before decoding any pixel.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000_000)
    with pytest.raises(VideoError, match="too large to decode safely") as error:
        read_image(path)
    assert "Downscale" in str(error.value)


# --- the windowed hand search's geometry ------------------------------------------------------


@pytest.mark.parametrize("grid", [2, 3])
def test_tiles_cover_the_image_with_overlap(grid):
    width, height = PHOTO_SIZE
    windows = tiles(width, height, grid)
    assert len(windows) == grid * grid
    covered = np.zeros((height // 10, width // 10), bool)
    for x0, y0, x1, y1 in windows:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        # Each window is a cell grown by a quarter cell on each inner side.
        assert x1 - x0 <= width / grid * 1.5 + 1 and y1 - y0 <= height / grid * 1.5 + 1
        covered[y0 // 10 : y1 // 10, x0 // 10 : x1 // 10] = True
    assert covered.all()
    # A hand of a tenth of the width centred on a seam lies whole in some window.
    seam_x, hand = width // grid, width // 10
    box = (seam_x - hand // 2, height // (2 * grid) - hand // 2)
    assert any(
        x0 <= box[0] and box[0] + hand <= x1 and y0 <= box[1] and box[1] + hand <= y1
        for x0, y0, x1, y1 in windows
    )


def square_hand(x: float, y: float, side: float, label: str = "unknown") -> Hand:
    points = np.zeros((21, 3), np.float32)
    points[:, 0] = np.linspace(x, x + side, 21)
    points[:, 1] = np.linspace(y, y + side, 21)
    return Hand(points, label)


def test_a_tiny_body_seen_in_a_hand_does_not_drop_the_palm_detectors_hand():
    """Holistic finds a small "body" in a large still's hand; the palm detector's hand (side
    unknown) is kept, while a small figure's own (holistic) hands stay dropped as guesses."""
    from agent.perception.features import frame_features
    from agent.perception.landmarks import FrameLandmarks, Person
    from tests.pose_support import make_pose

    tiny_body = make_pose()
    tiny_body[:, :2] = 0.7 + tiny_body[:, :2] * 0.2  # a figure 0.17 of the frame tall
    for side, kept in (("unknown", 1), ("left", 0)):
        person = Person(pose=tiny_body, hands=[square_hand(0.72, 0.7, 0.1, side)])
        features = frame_features(FrameLandmarks(0.0, 4000, 3000, [person]), min_person_height=0.3)
        assert len(features.hands) == kept, side
        assert features.body == {} and features.person_box is not None


def test_distinct_keeps_the_largest_of_overlapping_hands_and_at_most_two():
    fragment = square_hand(0.62, 0.12, 0.15)  # part of the hand found in the whole image
    whole = square_hand(0.6, 0.1, 0.2)  # the same hand found in a window
    other = square_hand(0.1, 0.5, 0.1)
    small = square_hand(0.4, 0.8, 0.03)
    kept = _distinct([fragment, small, whole, other])
    assert kept == [whole, other]
    assert _distinct([fragment]) == [fragment]
