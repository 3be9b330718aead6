"""The vision-language model interface (`VLM`, `VLMReply`) and `load_vlm`, its one factory."""

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from agent.context import Context
from agent.state import VideoInfo

if TYPE_CHECKING:
    from collections.abc import Callable

    from agent.video import FrameBatch


@dataclass
class VLMReply:
    """What the model said (`text`) and what could be read from it (`data`, None if unparsed).

    `frame_times_s` are the timestamps of the frames the model actually saw (after the caps),
    `visual_tokens` how many visual tokens they cost, `prompt_tokens` the whole prompt length.
    """

    text: str
    data: dict | None
    task: str = ""
    frame_times_s: list[float] = field(default_factory=list)
    visual_tokens: int = 0
    prompt_tokens: int = 0
    new_tokens: int = 0
    elapsed_s: float = 0.0

    @property
    def parsed(self) -> bool:
        return self.data is not None


@runtime_checkable
class VLM(Protocol):
    """A model that looks at timestamped frames and answers in text (JSON where asked)."""

    name: str

    def describe(self, frames: "FrameBatch", info: VideoInfo, kb_snippet: str) -> VLMReply:
        """Emotions, gestures and actions of each visible person in a clip."""
        ...

    def answer(
        self,
        question: str,
        frames: "FrameBatch",
        info: VideoInfo,
        kb_snippet: str,
        on_token: "Callable[[str], None] | None" = None,
    ) -> VLMReply:
        """Answer a question about the frames; `on_token` receives the text as it is generated."""
        ...

    def narrate(
        self, evidence: str, frames: "FrameBatch", info: VideoInfo, kb_snippet: str
    ) -> VLMReply:
        """A few plain sentences about a report segment, given the detected evidence (data:
        {"narrative": the text without any time the model wrote}, None if nothing is left)."""
        ...

    def classify(
        self, frames: "FrameBatch", info: VideoInfo, labels: list[str], kb_snippet: str
    ) -> VLMReply:
        """Pick one of `labels` (data: {"label", "confidence"}); for evaluation."""
        ...

    def locate(self, query: str, frames: "FrameBatch", info: VideoInfo) -> VLMReply:
        """When does `query` happen (data: {"spans": [{"start_s", "end_s"}]})."""
        ...


def load_vlm(ctx: Context | None = None) -> VLM:
    """The VideoLLaMA3 model named by `ctx.model_id`, on the device and quantization of `ctx`."""
    from agent.vlm.videollama3 import VideoLlama3

    return VideoLlama3.load(ctx or Context.from_env())


class LazyVLM:
    """`load_vlm(ctx)` deferred to the first use of the model (describe, answer, generate, ...).

    Held where the model may not be needed at all (indexing a video that is already indexed,
    listing the library); the first call loads it, once, and says so on the `agent.loading`
    logger, which the CLI prints as a progress line.
    """

    # The class `load_vlm` returns, by name: index fingerprints record it (agent.indexing).
    version = "VideoLlama3"
    # What that class says it is (agent.provenance): known without loading the weights.
    backend = "videollama3"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._vlm: VLM | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._vlm is not None

    @property
    def model_id(self) -> str:
        return self._vlm.model_id if self._vlm is not None else self.ctx.model_id

    @property
    def name(self) -> str:
        return f"{self.backend}:{self.model_id}"

    def get(self) -> VLM:
        """The loaded model (loaded on the first call)."""
        with self._lock:
            if self._vlm is None:
                logging.getLogger("agent.loading").info(
                    "[vlm] loading %s (first use in this process)", self.ctx.model_id
                )
                self._vlm = load_vlm(self.ctx)
            return self._vlm

    def __getattr__(self, name: str):
        # Everything the model offers, made real on first use; private names stay private.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get(), name)


__all__ = ["VLM", "LazyVLM", "VLMReply", "load_vlm"]
