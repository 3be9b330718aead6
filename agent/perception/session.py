"""PerceptionSession: frames in (batch by batch, one decoding pass), detections out.

Only small per-frame feature summaries are kept (no pixels, no landmark sets), so memory
grows by a few kilobytes per sampled frame whatever the video's length.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from agent.context import Context
from agent.perception.calibration import calibrated, rule_key
from agent.perception.capabilities import calibration as calibration_data
from agent.perception.capabilities import capability
from agent.perception.detectors import DETECTORS, EXCLUSIVE
from agent.perception.face import au_intensities, neutral_baseline
from agent.perception.features import FrameFeatures, frame_features, motion_energy
from agent.perception.landmarks import FrameLandmarks, Perceiver
from agent.perception.people import PeopleTracker
from agent.perception.rules.action import people_motion
from agent.perception.rules.common import Scored, Track, defaults, merged_params
from agent.perception.rules.emotion import neutral_first
from agent.perception.sightings import object_sightings
from agent.perception.smoothing import exclusive, segments
from agent.state import Detection, ObjectSighting
from agent.video import FrameBatch

log = logging.getLogger(__name__)

# Grey thumbnail side for motion energy: enough to see a hand move, cheap to difference.
_MOTION_SIDE = 64
# The main person's box taller than this share of the frame = a close view, where background
# subtraction sees limbs, not walkers.
_CLOSE_VIEW = 0.5
# Landmarks are not looked for while every person the detector saw last is shorter than this
# share of `min_person_height` (the margin covers the detector's box against the pose's).
_SMALL_PEOPLE_MARGIN = 0.8
# One class's per-frame result: (knowledge-base item, its parameters, scores, rule name).
ScoredClass = tuple[object, dict, Scored, str]


class PerceptionSession:
    """Feed sampled frames with `add(batch)` (e.g. `segment(path, ctx, on_frames=s.add)`),
    then call `finish()` for the detections of the whole video."""

    def __init__(
        self, perceiver: Perceiver, kb=None, ctx: Context | None = None, *, still: bool = False
    ):
        self.ctx = ctx or perceiver.ctx
        self.perceiver = perceiver
        self.kb = kb if kb is not None else _default_kb(self.ctx)
        self.still = still
        # Whether the frames are a whole video from its start (a closer look at a span of it
        # is not): a shape through all of footage shorter than its hold is kept (`segments`).
        self.whole_footage = True
        self.frames: list[FrameFeatures] = []
        self._previous_grey: np.ndarray | None = None
        self.seconds_in_mediapipe = 0.0
        self.seconds_in_learned = 0.0
        self._next_objects_s = -np.inf
        self.people = PeopleTracker() if (self.ctx.track_people and not still) else None
        # Frames whose learned-model results are still to come: (features, frame, objects
        # job, expression job); at most one frame, the newest.
        self._pending: list[tuple] = []
        self._worker = None if still else ThreadPoolExecutor(1, thread_name_prefix="learned")
        self._min_person_height = defaults()["landmarks"]["min_person_height"]
        # The tallest person (share of the frame height) in the newest settled detector
        # result; None before one, or when the detector saw nobody.
        self._tallest_person: float | None = None
        self.frames_without_landmarks = 0
        if not still:
            perceiver.reset()

    def add(self, batch: FrameBatch) -> None:
        """Perceive each frame of a batch and keep its small feature summary."""
        for frame, time_s in zip(batch.frames, batch.timestamps_s, strict=True):
            self.add_frame(frame, float(time_s))
        self._settle()

    def add_frame(self, frame_rgb: np.ndarray, time_s: float) -> FrameFeatures:
        """Perceive one frame. The learned models run on a worker thread beside mediapipe (two
        cores, both busy); their results land in the frame's features by the next frame's end
        or `finish`, in frame order, so what is found does not depend on the timing."""
        objects = self._start_objects(frame_rgb, time_s)
        started = time.perf_counter()
        if self._only_small_people():
            # `frame_features` would keep nothing of their landmarks but a box (a crowd far
            # from the camera): mediapipe, the largest cost per frame, is not run for them.
            height, width = frame_rgb.shape[:2]
            landmarks = FrameLandmarks(float(time_s), width, height)
            self.frames_without_landmarks += 1
        else:
            landmarks = self.perceiver.process(frame_rgb, time_s, still=self.still)
        self.seconds_in_mediapipe += time.perf_counter() - started
        features = frame_features(landmarks, min_person_height=self._min_person_height)
        expression = self._start_expression(frame_rgb, features)
        # Nearest-neighbour sampling reads only the pixels it keeps: the mean change over a
        # 64 x 64 grid measures overall motion as well as a filtered copy, at no cost.
        small = cv2.resize(frame_rgb, (_MOTION_SIDE, _MOTION_SIDE), interpolation=cv2.INTER_NEAREST)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        features.motion_energy = motion_energy(self._previous_grey, grey)
        self._previous_grey = grey
        self.frames.append(features)
        # The frames before this one are settled now: their models ran beside this mediapipe.
        self._settle()
        self._pending.append((features, frame_rgb, objects, expression))
        if self._worker is None:
            self._settle()
        return features

    def _only_small_people(self) -> bool:
        """Whether the newest settled detector result (a frame at most 1.5 / object_fps s
        ago; settled in frame order, so the choice does not depend on timing) saw people,
        all too small to read. Nobody seen is not enough: a close-up hand has no body."""
        tallest = self._tallest_person
        return (
            not self.still
            and tallest is not None
            and tallest < _SMALL_PEOPLE_MARGIN * self._min_person_height
        )

    def _start_objects(self, frame_rgb: np.ndarray, time_s: float):
        """Objects at most `object_fps` times a second (every frame for a still): a future on
        the worker thread, the objects themselves without one, or None when not due."""
        detector = self.perceiver.learned.objects
        if detector is None or time_s < self._next_objects_s - 1e-6:
            return None
        if not self.still:
            self._next_objects_s = time_s + 1.0 / self.ctx.object_fps
        return self._run_learned(detector.detect, frame_rgb)

    def _start_expression(self, frame_rgb: np.ndarray, features: FrameFeatures):
        """Expression probabilities for a visible face (face_raw is emptied when a hand covers
        the face: the crop would show the hand)."""
        classifier = self.perceiver.learned.expression
        if classifier is None or not features.face_box or not features.face_raw:
            return None
        return self._run_learned(classifier.classify, frame_rgb, features.face_box)

    def _run_learned(self, model, *args):
        if self._worker is None:
            started = time.perf_counter()
            result = model(*args)
            self.seconds_in_learned += time.perf_counter() - started
            return result
        return self._worker.submit(_timed, model, *args)

    def _settle(self) -> None:
        """Put the learned models' results into the pending frames' features, in frame order,
        and feed the people tracker."""
        while self._pending:
            features, frame_rgb, objects, expression = self._pending.pop(0)
            if expression is not None:
                features.expression = self._result(expression)
            if objects is not None:
                features.objects = self._result(objects)
                heights = [o.box[3] for o in features.objects if o.label == "person"]
                self._tallest_person = max(heights) if heights else None
            self._track_people(features, frame_rgb)

    def _result(self, job):
        if not isinstance(job, Future):
            return job
        result, seconds = job.result()
        self.seconds_in_learned += seconds
        return result

    def _track_people(self, features: FrameFeatures, frame_rgb: np.ndarray) -> None:
        if self.people is None:
            return
        if self.perceiver.learned.objects is None:
            # Background subtraction on a close view reads moving arms as people.
            box = features.person_box
            if box is None or box[3] < _CLOSE_VIEW:
                self.people.update(frame_rgb, features.time_s)
        elif features.objects is not None:
            # The detector's person boxes: a walker seen close up (an overhead camera, a
            # corridor) is tracked too, its landmarks often lack the legs that gait reads.
            people = [o.box for o in features.objects if o.label == "person"]
            self.people.update(frame_rgb, features.time_s, people)

    def close(self) -> None:
        """Stop the worker thread (finish does it too)."""
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    def rule_for(self, item) -> str | None:
        """The detector this session runs for a class: the class's own, or, when the learned
        model it reads is not loaded, the landmark rule it falls back to; None when the class
        is not checkable (no rule, no model, or switched off by calibration)."""
        if item.perception is not None and item.perception.detector not in DETECTORS:
            return None
        learned = self.perceiver.learned
        loaded = {task for task in ("expression", "objects") if getattr(learned, task)}
        found = capability(item, self.ctx, tasks=loaded)
        return found.rule if found.checkable else None

    def checkable(self, item) -> bool:
        """Whether this session can detect a class at all."""
        return self.rule_for(item) is not None

    def track(self) -> Track:
        """The frames so far with AU intensities against this face's neutral baseline."""
        self._settle()
        baseline = neutral_baseline([f.face_raw for f in self.frames])
        aus = [au_intensities(f.face_raw, baseline) for f in self.frames]
        return Track(self.frames, aus, step_s=self._step_s())

    def finish(self) -> list[Detection]:
        """Detections of every knowledge-base class with a perception rule, in time order."""
        self._settle()
        self.close()
        if not self.frames:
            return []
        return self.detections_of(self.score_classes())

    def score_classes(self) -> dict[str, ScoredClass]:
        """Per-frame scores of every class this session checks: {class id: (item, params,
        scores, rule)}, competing labels already resolved frame by frame. Thresholds fitted on
        the development footage (calibration.yaml `thresholds`) replace the knowledge base's
        when confidences are calibrated."""
        track = self.track()
        fitted = calibration_data().get("thresholds", {}) if self.ctx.calibrate_confidence else {}
        scored: dict[str, ScoredClass] = {}
        for item in (
            self.kb.by_kind("emotion") + self.kb.by_kind("gesture") + self.kb.by_kind("action")
        ):
            if item.perception is None:
                continue
            if item.perception.detector not in DETECTORS:
                log.warning(
                    "no perception rule named '%s' (class %s)", item.perception.detector, item.id
                )
                continue
            rule = self.rule_for(item)
            if rule is None:
                continue
            params = {**merged_params(rule, item.perception.params), **fitted.get(item.id, {})}
            try:
                scored[item.id] = (item, params, DETECTORS[rule](track, params), rule)
            except KeyError as missing:
                log.warning(
                    "class '%s': perception.params lacks %s for rule '%s'; skipped",
                    item.id,
                    missing,
                    rule,
                )
        _honest_neutral(scored)
        _neutral_first(scored, track)
        for group in EXCLUSIVE:
            members = {k: v[2].scores for k, v in scored.items() if v[3] == group}
            for label, scores in exclusive(members).items():
                scored[label][2].scores = scores
        return scored

    def detections_of(
        self, scored: dict[str, ScoredClass], overrides: dict[str, dict] | None = None
    ) -> list[Detection]:
        """Detections from `score_classes`' scores; `overrides` ({class id: params}) replace
        smoothing parameters (how the benchmarks try thresholds without perceiving again)."""
        # Smoothing reads times only: no action units needed.
        track = Track(self.frames, [], step_s=self._step_s())
        detections = []
        for class_id, (item, params, result, rule) in scored.items():
            params = {**params, **(overrides or {}).get(class_id, {})}
            detections.extend(self._detections(item, params, result, track, rule))
            if self.people is not None and rule == "gait":
                walkers = people_motion(item, params, self.people, track.step_s)
                detections.extend(self._calibrated(d, rule_key(rule, True)) for d in walkers)
        return sorted(detections, key=lambda d: (d.start_s, d.kind, -d.confidence))

    def object_sightings(self) -> list[ObjectSighting]:
        """The objects seen so far, one sighting per label per stretch; a stretch survives
        one missed detection (the detector runs `object_fps` times a second)."""
        self._settle()
        gap_s = 2.5 / self.ctx.object_fps
        frames = ((f.time_s, f.objects) for f in self.frames)
        return object_sightings(frames, gap_s, still=self.still)

    def _calibrated(self, detection: Detection, key: str) -> Detection:
        """The detection with its raw rule score replaced by the calibrated confidence."""
        if not self.ctx.calibrate_confidence:
            return detection
        return detection.model_copy(update={"confidence": calibrated(key, detection.confidence)})

    def _detections(
        self, item, params: dict, result: Scored, track: Track, rule: str
    ) -> list[Detection]:
        on = params["min_score"]
        found = segments(
            track.times_s,
            result.scores,
            on=on,
            off=on * params["off_ratio"],
            min_duration_s=0.0 if self.still else params["min_duration_s"],
            merge_gap_s=params["merge_gap_s"],
            step_s=track.step_s,
            whole_footage=self.whole_footage,
        )
        out = []
        for first, last, start_s, end_s in found:
            window = result.scores[first : last + 1]
            peak = first + int(np.nanargmax(window))
            if self.still:
                start_s = end_s = 0.0
            out.append(
                Detection(
                    kind=item.kind,
                    label=item.id,
                    start_s=round(start_s, 3),
                    end_s=round(end_s, 3),
                    confidence=round(float(np.clip(np.nanmean(window), 0.0, 1.0)), 3),
                    bbox=result.boxes[peak],
                    cues=result.cues[peak],
                    person_id=0,
                )
            )
        return [self._calibrated(d, rule_key(rule)) for d in out]

    def _step_s(self) -> float:
        if len(self.frames) < 2:
            return 1.0 / self.ctx.sample_fps
        return float(np.median(np.diff([f.time_s for f in self.frames])))


def _timed(model, *args):
    """(model(*args), seconds it took), run on the worker thread."""
    started = time.perf_counter()
    return model(*args), time.perf_counter() - started


def _honest_neutral(scored: dict) -> None:
    """Neutral also wins where no expression reaches its own threshold (weak evidence)."""
    emotions = {k: v for k, v in scored.items() if v[3] == "au_prototype"}
    neutral = [k for k, v in emotions.items() if v[1].get("mode") == "absence"]
    others = [v for k, v in emotions.items() if k not in neutral]
    if not neutral or not others:
        return
    # Each expression's score relative to its own switch-on threshold.
    relative = np.nanmax(
        np.stack([np.nan_to_num(v[2].scores, nan=0.0) / v[1]["min_score"] for v in others]), axis=0
    )
    for label in neutral:
        result = scored[label][2]
        fallback = np.clip(1.0 - 0.5 * relative, 0.0, 1.0)
        result.scores = np.where(np.isnan(result.scores), np.nan, np.fmax(result.scores, fallback))


def _neutral_first(scored: dict, track: Track) -> None:
    """The face's learned expressions, neutral first (`rules.emotion.neutral_first`), with the
    talk rule's per-frame scores where it ran (speech is not read as expression)."""
    members = {k: (v[1], v[2]) for k, v in scored.items() if v[3] == "expression_model"}
    talking = next((v[2].scores for v in scored.values() if v[3] == "mouth_movement"), None)
    neutral_first(members, track.aus, talking)


def _default_kb(ctx: Context):
    from agent.knowledge import load_knowledge_base

    return load_knowledge_base(ctx)
