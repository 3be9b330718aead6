"""The vision-language model interface (`VLM`, `VLMReply`: agent.vlm.protocol) and `load_vlm`,
its one factory, with `LazyVLM` deferring it to the first use."""

import logging
import threading

from agent.context import Context
from agent.vlm.protocol import VLM, VLMReply


def load_vlm(ctx: Context) -> VLM:
    """The VideoLLaMA3 model named by `ctx.model_id`, on the device and quantization of `ctx`."""
    from agent.vlm.videollama3 import VideoLlama3

    return VideoLlama3.load(ctx)


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
