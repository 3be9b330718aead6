"""VideoLLaMA3 through transformers' native classes: timestamped prompts, caps, streaming."""

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from agent.context import Context
from agent.errors import ModelError
from agent.provenance import ModelEntry, checkpoint_entry
from agent.state import VideoInfo
from agent.timefmt import format_clock
from agent.video import FrameBatch
from agent.vlm import parsing
from agent.vlm.device import DevicePlan, pick_device
from agent.vlm.loading import checkpoint_folder, load_model_and_processor, resolve_source
from agent.vlm.prompting import render_prompt
from agent.vlm.protocol import VLMReply

log = logging.getLogger(__name__)

# A reader timestamp further than this from frame_idx / fps means a variable frame rate.
_VFR_TOLERANCE_S = 0.05
# Time base used for variable-frame-rate videos so that idx / fps equals the real timestamp.
_MS_TIMEBASE_FPS = 1000.0


@dataclass
class PreparedCall:
    """Model inputs for one call plus what the caps left of the frames."""

    inputs: dict
    prompt_text: str
    frame_times_s: list[float]
    visual_tokens: int


class VideoLlama3:
    """The `VLM` implementation on `VideoLlama3ForConditionalGeneration` + `AutoProcessor`."""

    backend = "videollama3"

    def __init__(self, model, processor, plan: DevicePlan, ctx: Context, source: str = "") -> None:
        self.model = model
        self.processor = processor
        self.plan = plan
        self.ctx = ctx
        # The checkpoint really loaded (a resolved local folder or a hub id), not the setting.
        self.model_id = source or ctx.model_id
        self.name = f"{self.backend}:{self.model_id}"
        self._entry: ModelEntry | None = None
        self.stats: Counter[str] = Counter()
        # One generation at a time: concurrent calls would multiply activation memory.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, ctx: Context) -> "VideoLlama3":
        """Load `ctx.model_id` (hub id or local folder) with the device plan of `ctx`."""
        plan = pick_device(ctx)
        source = resolve_source(ctx.model_id)
        model, processor = load_model_and_processor(source, plan)
        return cls(model, processor, plan, ctx, source.ref)

    def model_entry(self) -> ModelEntry:
        """This checkpoint's provenance entry (its weights hashed once, on first use)."""
        if self._entry is None:
            self._entry = checkpoint_entry(self.model_id, checkpoint_folder(self.model_id))
        return self._entry

    # --- the VLM protocol -----------------------------------------------------------------

    def describe(self, frames: FrameBatch, info: VideoInfo, kb_snippet: str) -> VLMReply:
        prompt = self._prompt("describe_clip", frames, info, kb_snippet=kb_snippet)
        return self._ask("describe", prompt, frames, info, parsing.parse_describe)

    def answer(
        self,
        question: str,
        frames: FrameBatch,
        info: VideoInfo,
        kb_snippet: str,
        on_token: Callable[[str], None] | None = None,
    ) -> VLMReply:
        prompt = self._prompt(
            "answer_question", frames, info, question=question.strip(), kb_snippet=kb_snippet
        )
        return self._ask("answer", prompt, frames, info, parsing.parse_answer, on_token)

    def narrate(
        self, evidence: str, frames: FrameBatch, info: VideoInfo, kb_snippet: str
    ) -> VLMReply:
        prompt = self._prompt(
            "report_narrative", frames, info, evidence=evidence.strip(), kb_snippet=kb_snippet
        )
        return self._ask("narrate", prompt, frames, info, parsing.parse_narrative)

    def classify(
        self, frames: FrameBatch, info: VideoInfo, labels: list[str], kb_snippet: str
    ) -> VLMReply:
        prompt = self._prompt(
            "classify_labels", frames, info, labels=", ".join(labels), kb_snippet=kb_snippet
        )
        return self._ask(
            "classify", prompt, frames, info, lambda text: parsing.parse_classify(text, labels)
        )

    def locate(self, query: str, frames: FrameBatch, info: VideoInfo) -> VLMReply:
        prompt = self._prompt("locate_in_time", frames, info, query=query.strip())
        reply = self._ask("locate", prompt, frames, info, parsing.parse_locate)
        if reply.data is not None:
            reply.data["spans"] = clamp_spans(reply.data["spans"], reply.frame_times_s, info)
        return reply

    # --- building blocks ------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        frames: FrameBatch,
        info: VideoInfo,
        on_token: Callable[[str], None] | None = None,
        max_new_tokens: int | None = None,
    ) -> VLMReply:
        """Free-form generation over the frames (no parsing); the base of every task."""
        started = time.perf_counter()
        call = self.prepare(prompt, frames, info)
        with self._lock:
            text, new_tokens = self._run(call.inputs, on_token, max_new_tokens)
        return VLMReply(
            text=text,
            data=None,
            frame_times_s=call.frame_times_s,
            visual_tokens=call.visual_tokens,
            prompt_tokens=int(call.inputs["input_ids"].shape[1]),
            new_tokens=new_tokens,
            elapsed_s=time.perf_counter() - started,
        )

    def prepare(self, prompt: str, frames: FrameBatch, info: VideoInfo) -> PreparedCall:
        """Caps applied, chat template rendered, processor run with true frame timestamps."""
        if len(frames) == 0:
            raise ValueError("a VLM call needs at least one frame")
        if is_still(info):
            return self._prepare_image(prompt, frames)
        frames, size = fit_video(frames, self.ctx, self.processor.video_processor)
        text = self._chat_text(prompt, "video")
        inputs = self.processor(
            text=[text],
            videos=[frames.frames],
            video_metadata=[video_metadata(frames, info)],
            videos_kwargs={"size": size, "do_sample_frames": False},
            return_tensors="pt",
        )
        merge = int(inputs["video_merge_sizes"][0])
        visual_tokens = int(inputs["video_grid_thw"].prod(dim=-1).sum()) // merge**2
        self._check_visual_budget(visual_tokens)
        return PreparedCall(
            inputs=inputs.to(self.plan.device),
            prompt_text=text,
            frame_times_s=[float(t) for t in frames.timestamps_s],
            visual_tokens=visual_tokens,
        )

    def _prepare_image(self, prompt: str, frames: FrameBatch) -> PreparedCall:
        image_processor = self.processor.image_processor
        factor = image_processor.patch_size * image_processor.merge_size
        longest = min(image_processor.size["longest_edge"], self.ctx.max_visual_tokens * factor**2)
        size = {"shortest_edge": image_processor.size["shortest_edge"], "longest_edge": longest}
        text = self._chat_text(prompt, "image")
        inputs = self.processor(
            text=[text],
            images=[frames.frames[0]],
            images_kwargs={"size": size},
            return_tensors="pt",
        )
        merge = int(inputs["image_merge_sizes"][0])
        visual_tokens = int(inputs["image_grid_thw"].prod(dim=-1).sum()) // merge**2
        self._check_visual_budget(visual_tokens)
        return PreparedCall(inputs.to(self.plan.device), text, [0.0], visual_tokens)

    def _check_visual_budget(self, visual_tokens: int) -> None:
        if visual_tokens > self.ctx.max_visual_tokens:  # fit_video should make this impossible
            raise RuntimeError(
                f"{visual_tokens} visual tokens exceed the cap of {self.ctx.max_visual_tokens}"
            )

    def _chat_text(self, prompt: str, kind: str) -> str:
        conversation = [
            {"role": "user", "content": [{"type": kind}, {"type": "text", "text": prompt}]}
        ]
        return self.processor.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True
        )

    def fit(self, frames: FrameBatch, info: VideoInfo) -> FrameBatch:
        """The frames a call will really show (caps applied); fitting twice changes nothing."""
        if is_still(info):
            return thin(frames, 1)
        return fit_video(frames, self.ctx, self.processor.video_processor)[0]

    def _prompt(self, name: str, frames: FrameBatch, info: VideoInfo, **values: str) -> str:
        """The task prompt, opened by what the model is shown (a still, or timed frames)."""
        frames = self.fit(frames, info)
        if is_still(info):
            scope = render_prompt("frames_image")
        else:
            first, last = float(frames.timestamps_s[0]), float(frames.timestamps_s[-1])
            scope = render_prompt(
                "frames_video",
                start=f"{first:.1f} s ({format_clock(first, 1)})",
                end=f"{last:.1f} s ({format_clock(last, 1)})",
                num_frames=str(len(frames)),
            )
        values["kb_snippet"] = values.get("kb_snippet", "").strip() or "(none given)"
        return render_prompt(name, frames=scope.strip(), **values)

    def _ask(
        self,
        task: str,
        prompt: str,
        frames: FrameBatch,
        info: VideoInfo,
        parse: Callable[[str], dict | None],
        on_token: Callable[[str], None] | None = None,
    ) -> VLMReply:
        reply = self.generate(prompt, frames, info, on_token=on_token)
        reply.task = task
        reply.data = parse(reply.text)
        self.stats[f"{task}_calls"] += 1
        if reply.data is None:
            self.stats[f"{task}_unparsed"] += 1
            parsing.record_unparsed(task, reply.text)
        return reply

    def _run(
        self, inputs, on_token: Callable[[str], None] | None, max_new_tokens: int | None
    ) -> tuple[str, int]:
        """Greedy decoding (reproducible); streamed through TextIteratorStreamer when asked."""
        tokenizer = self.processor.tokenizer
        kwargs = dict(
            **inputs,
            max_new_tokens=max_new_tokens or self.ctx.max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        prompt_length = inputs["input_ids"].shape[1]
        try:
            if on_token is None:
                with torch.inference_mode():
                    output = self.model.generate(**kwargs)
            else:
                output = self._stream(kwargs, on_token)
        except torch.OutOfMemoryError:
            raise ModelError(
                f"{self.plan.device} ran out of memory during generation. Lower "
                "BEHAVIOR_AGENT_MAX_VISUAL_TOKENS or BEHAVIOR_AGENT_MAX_FRAMES_PER_CALL, or use "
                "BEHAVIOR_AGENT_QUANTIZATION=4bit."
            ) from None
        new_ids = output[0, prompt_length:]
        return tokenizer.decode(new_ids, skip_special_tokens=True).strip(), int(len(new_ids))

    def _stream(self, kwargs: dict, on_token: Callable[[str], None]):
        """Generate in a worker thread, hand text pieces to `on_token` as they are decoded.

        If `on_token` raises (a closed browser tab, a cancelled request), generation is stopped
        at the next token and the error is raised here; errors of the worker are re-raised too.
        """
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        streamer = TextIteratorStreamer(
            self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        cancelled = threading.Event()

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return cancelled.is_set()

        result: dict = {}

        def work() -> None:
            try:
                with torch.inference_mode():
                    result["output"] = self.model.generate(
                        **kwargs,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Cancel()]),
                    )
            except BaseException as error:  # handed to the caller's thread below
                result["error"] = error
                streamer.end()

        worker = threading.Thread(target=work, name="vl3-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    on_token(piece)
        except BaseException:
            cancelled.set()
            for _ in streamer:  # drain so the worker can finish
                pass
            raise
        finally:
            worker.join()
        if "error" in result:
            raise result["error"]
        return result["output"]


# --- caps, metadata, clamping (pure functions, tested directly) -----------------------------


def is_still(info: VideoInfo) -> bool:
    """A still image (one frame, no frame rate): sent as an image, without time prefixes."""
    return info.frame_count <= 1 or info.fps <= 0


def fit_video(frames: FrameBatch, ctx: Context, video_processor) -> tuple[FrameBatch, dict]:
    """Thin frames and cut resolution so a call stays within both caps of `ctx`.

    First at most `max_frames_per_call` frames are kept (uniformly in time). Then the
    processor's pixel budget is cut so that frames x tokens-per-frame <= `max_visual_tokens`;
    if even the processor's minimum frame size does not fit, more frames are dropped.
    """
    from transformers.models.video_llama_3.video_processing_video_llama_3 import smart_resize

    frames = thin(frames, ctx.max_frames_per_call)
    factor = video_processor.patch_size * video_processor.merge_size
    shortest = int(video_processor.size["shortest_edge"])
    longest_default = int(video_processor.size["longest_edge"])
    height, width = frames.frames.shape[1:3]
    for count in range(len(frames), 0, -1):
        per_frame = min(longest_default // count, ctx.max_visual_tokens // count * factor**2)
        if per_frame < shortest:
            continue  # below the processor's minimum frame size: drop frames instead
        resized_h, resized_w = smart_resize(height, width, factor, shortest, max(per_frame, 1))
        tokens = count * (resized_h // factor) * (resized_w // factor)
        if tokens <= ctx.max_visual_tokens:
            if count < len(frames):
                log.info(
                    "visual token cap %d: keeping %d of %d frames",
                    ctx.max_visual_tokens,
                    count,
                    len(frames),
                )
            size = {"shortest_edge": shortest, "longest_edge": per_frame * count}
            return thin(frames, count), size
    raise ModelError(
        f"BEHAVIOR_AGENT_MAX_VISUAL_TOKENS={ctx.max_visual_tokens} is below what a single frame "
        "needs at the processor's minimum size; raise it to at least "
        f"{math.ceil(shortest / factor**2)}."
    )


def thin(frames: FrameBatch, limit: int) -> FrameBatch:
    """At most `limit` frames, spread uniformly over the batch (first and last kept)."""
    if len(frames) <= limit:
        return frames
    keep = np.unique(np.linspace(0, len(frames) - 1, limit).round().astype(int))
    return FrameBatch(frames.frames[keep], frames.frame_indices[keep], frames.timestamps_s[keep])


def video_metadata(frames: FrameBatch, info: VideoInfo):
    """VideoMetadata whose `frames_indices / fps` are the frames' true timestamps.

    The processor writes `Time t s` before each frame as frame_idx / fps. For a constant frame
    rate the real fps and frame indices give exactly the reader's timestamps. For a variable
    frame rate they would not, so the metadata then uses a millisecond time base (fps=1000,
    indices = timestamps in ms), which keeps every prefix true.
    """
    from transformers.video_utils import VideoMetadata

    indices = np.asarray(frames.frame_indices, dtype=np.int64)
    times = np.asarray(frames.timestamps_s, dtype=np.float64)
    height, width = frames.frames.shape[1:3]
    if np.max(np.abs(indices / info.fps - times)) <= _VFR_TOLERANCE_S:
        fps, frame_indices, total = info.fps, indices.tolist(), info.frame_count
    else:
        log.debug("variable frame rate in %s: millisecond time base for timestamps", info.path)
        fps = _MS_TIMEBASE_FPS
        frame_indices = np.round(times * _MS_TIMEBASE_FPS).astype(int).tolist()
        total = int(math.ceil(info.duration_s * _MS_TIMEBASE_FPS)) + 1
    return VideoMetadata(
        total_num_frames=total,
        fps=fps,
        width=int(width),
        height=int(height),
        duration=info.duration_s,
        video_backend="decord",
        frames_indices=frame_indices,
    )


def clamp_spans(spans: list[dict], frame_times_s: list[float], info: VideoInfo) -> list[dict]:
    """Keep model-given spans inside what the model saw (and inside the video)."""
    if not frame_times_s:
        return spans
    step = (frame_times_s[-1] - frame_times_s[0]) / max(len(frame_times_s) - 1, 1)
    low = frame_times_s[0]
    high = min(frame_times_s[-1] + step, info.duration_s) if info.duration_s > 0 else low
    kept = []
    for span in spans:
        start_s, end_s = max(low, span["start_s"]), min(high, span["end_s"])
        if start_s <= end_s:
            kept.append({**span, "start_s": start_s, "end_s": end_s})
        else:
            log.info(
                "dropping span %.1f-%.1f s outside the frames shown",
                *(span["start_s"], span["end_s"]),
            )
    return kept
