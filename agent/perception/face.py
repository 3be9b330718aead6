"""Face measurements: action-unit geometry in the face's own frame, AU intensities against the
face's neutral baseline (`au_calibration.yaml`), and head pose with the iris offset."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import yaml

from agent.perception.geometry import FACE, isotropic

_CALIBRATION = Path(__file__).with_name("au_calibration.yaml")


def face_frame(face: np.ndarray, aspect: float) -> np.ndarray:
    """Face-mesh points in the face's own 3-D frame, in eye-span units.

    x runs from the left to the right eye, y from forehead to chin, z out of the face; so
    head yaw, pitch and roll (and the distance to the camera) largely cancel.
    """
    p = isotropic(face, aspect)
    ex = p[FACE["eye_outer_r"]] - p[FACE["eye_outer_l"]]
    span = max(float(np.linalg.norm(ex)), 1e-6)
    ex = ex / span
    down = p[FACE["chin"]] - p[FACE["forehead"]]
    ey = down - np.dot(down, ex) * ex
    ey = ey / max(float(np.linalg.norm(ey)), 1e-6)
    ez = np.cross(ex, ey)
    return (p - p.mean(axis=0)) @ np.stack([ex, ey, ez]).T / span


def face_geometry(face: np.ndarray, aspect: float) -> dict[str, float]:
    """Raw action-unit geometry, in units of the eye span so camera distance cancels.

    Measured in the face's own frame (`face_frame`: head rotation removed). These are raw
    values; the session turns them into 0..1 AU intensities against a neutral baseline
    (`au_intensities`).
    """
    q = face_frame(face, aspect)

    def d(a: str, b: str) -> float:
        return float(np.linalg.norm(q[FACE[a]] - q[FACE[b]]))

    def eye_open(top: str, bottom: str, outer: str, inner: str) -> float:
        return d(top, bottom) / max(d(outer, inner), 1e-6)

    lips_mid_y = (q[FACE["lip_top_inner"], 1] + q[FACE["lip_bottom_inner"], 1]) / 2
    corners_y = (q[FACE["mouth_l"], 1] + q[FACE["mouth_r"], 1]) / 2
    return {
        "brow_inner": (d("brow_inner_l", "eye_inner_l") + d("brow_inner_r", "eye_inner_r")) / 2,
        "brow_outer": (d("brow_outer_l", "eye_outer_l") + d("brow_outer_r", "eye_outer_r")) / 2,
        "brow_gap": d("brow_inner_l", "brow_inner_r"),
        "eye_open": (
            eye_open("lid_top_l", "lid_bottom_l", "eye_outer_l", "eye_inner_l")
            + eye_open("lid_top_r", "lid_bottom_r", "eye_outer_r", "eye_inner_r")
        )
        / 2,
        "mouth_width": d("mouth_l", "mouth_r"),
        # Positive when the lip corners sit above the lips' midline (y grows downwards).
        "corner_lift": float(lips_mid_y - corners_y),
        "corner_asym": float(abs(q[FACE["mouth_l"], 1] - q[FACE["mouth_r"], 1])),
        "lip_gap": d("lip_top_inner", "lip_bottom_inner"),
        "lip_thickness": d("lip_top_outer", "lip_top_inner")
        + d("lip_bottom_inner", "lip_bottom_outer"),
        "nose_lip": d("nose_base", "lip_top_outer"),
        "jaw": d("nose_tip", "chin"),
        "chin_lip": d("lip_bottom_outer", "chin"),
    }


def derived_geometry(raw: dict[str, float]) -> dict[str, float]:
    """Combined quantities: `smile` (corners up and mouth wider), `stretch` (wider, not up)."""
    if not raw:
        return {}
    lift = raw["corner_lift"]
    return {
        **raw,
        "smile": lift + 0.5 * raw["mouth_width"] - 0.275,
        "stretch": raw["mouth_width"] - 1.5 * max(lift, 0.0),
    }


@cache
def au_calibration() -> dict[str, dict]:
    """The AU measurement table (`au_calibration.yaml` beside this module)."""
    return yaml.safe_load(_CALIBRATION.read_text(encoding="utf-8"))


def neutral_baseline(raws: list[dict[str, float]], rest_fraction: float = 0.3) -> dict[str, float]:
    """Per-AU neutral value of one face over a video, clipped into the population's range.

    The face at rest is found jointly: the frames (a `rest_fraction` of them, at least one)
    that look least expressive against the population's neutral values; their median is the
    baseline. Clipping into the neutral range keeps a face that is expressive throughout (or
    a still) from taking its own expression as its baseline.
    """
    calibration = au_calibration()
    rows = [derived_geometry(raw) for raw in raws if raw]
    prior = {au: float(np.mean(spec["neutral"])) for au, spec in calibration.items()}
    if not rows:
        return prior
    expressiveness = [sum(au_intensities(row, prior, derived=True).values()) for row in rows]
    keep = max(1, int(round(rest_fraction * len(rows))))
    rest = [rows[i] for i in np.argsort(expressiveness)[:keep]]
    baseline = {}
    for au, spec in calibration.items():
        lo, hi = spec["neutral"]
        if spec.get("absolute"):
            baseline[au] = lo
            continue
        value = float(np.median([row[spec["raw"]] for row in rest]))
        baseline[au] = float(np.clip(value, lo, hi))
    return baseline


def au_intensities(
    raw: dict[str, float], baseline: dict[str, float], *, derived: bool = False
) -> dict[str, float]:
    """0..1 intensity of every calibrated AU for one frame of one face."""
    if not raw:
        return {}
    values = raw if derived else derived_geometry(raw)
    out = {}
    for au, spec in au_calibration().items():
        change = (values[spec["raw"]] - baseline[au]) * spec["sign"]
        out[au] = float(np.clip(change / spec["full"], 0.0, 1.0))
    # Narrowed eyes count as a cheek raise only together with a smile (else: squint, blink).
    for au, spec in au_calibration().items():
        if spec.get("requires"):
            out[au] = min(out[au], out.get(spec["requires"], 0.0))
        if spec.get("suppressed_by"):
            out[au] *= 1.0 - out.get(spec["suppressed_by"], 0.0)
    return {au: round(v, 3) for au, v in out.items()}


def head_pose(face: np.ndarray, aspect: float) -> dict[str, float]:
    """Yaw, pitch, roll in degrees from face-mesh geometry, plus horizontal iris offset.

    Yaw: where the nose tip sits between the face's sides; pitch: where it sits between the
    eye line and the chin, relative to a frontal face; roll: tilt of the eye line. Sign
    conventions: yaw > 0 = turned to the image right, pitch > 0 = looking down.
    """
    p = isotropic(face, aspect)[:, :2]
    eye_l, eye_r = p[FACE["eye_outer_l"]], p[FACE["eye_outer_r"]]
    axis = eye_r - eye_l
    roll = float(np.degrees(np.arctan2(axis[1], axis[0])))
    rad = np.radians(-roll)
    rot = np.array([[np.cos(rad), -np.sin(rad)], [np.sin(rad), np.cos(rad)]])
    q = p @ rot.T
    cheek_l, cheek_r, nose = q[FACE["cheek_l"]], q[FACE["cheek_r"]], q[FACE["nose_tip"]]
    half = max(abs(cheek_r[0] - cheek_l[0]) / 2, 1e-6)
    yaw = float(
        np.degrees(np.arcsin(np.clip((nose[0] - (cheek_l[0] + cheek_r[0]) / 2) / half, -1, 1)))
    )
    eyes_y = (q[FACE["eye_outer_l"], 1] + q[FACE["eye_outer_r"], 1]) / 2
    chin_y = q[FACE["chin"], 1]
    # A frontal face has the nose tip ~0.36 of the way from eye line to chin.
    ratio = (nose[1] - eyes_y) / max(chin_y - eyes_y, 1e-6)
    pitch = float(np.degrees(np.arcsin(np.clip((ratio - 0.36) / 0.35, -1, 1))))
    gaze = 0.0
    if len(p) > FACE["iris_r"]:
        offsets = []
        for iris, outer, inner in (
            ("iris_l", "eye_outer_l", "eye_inner_l"),
            ("iris_r", "eye_inner_r", "eye_outer_r"),
        ):
            lo, hi = q[FACE[outer], 0], q[FACE[inner], 0]
            offsets.append((q[FACE[iris], 0] - (lo + hi) / 2) / max(abs(hi - lo) / 2, 1e-6))
        gaze = float(np.mean(offsets))
    return {
        "yaw": round(yaw, 1),
        "pitch": round(pitch, 1),
        "roll": round(roll, 1),
        "gaze_x": round(gaze, 3),
    }
