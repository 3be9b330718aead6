"""The vision-language model interface: `VLM` (what a backend offers) and `VLMReply` (what a
call returns)."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

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
