"""VideoLLaMA3 backend on the tiny random checkpoint, through the real loading path, on CPU."""

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from agent.context import Context
from agent.errors import ConfigError, ModelError
from agent.state import VideoInfo
from agent.video import FrameBatch, probe, sample_frames
from agent.vlm import VLM, VLMReply, load_vlm, loading, parsing
from agent.vlm import device as device_module
from agent.vlm.device import pick_device
from agent.vlm.tiny import build_tiny_vl3
from agent.vlm.videollama3 import fit_video, video_metadata
from tests.synthetic import write_video

TIME_PREFIX = re.compile(r"Time (\d+\.\d)s:")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_vl3(tmp_path_factory.mktemp("vl3") / "tiny")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 4 s clip at 25 fps."""
    return write_video(tmp_path_factory.mktemp("media") / "clip25.mp4", [4.0], fps=25.0)


@pytest.fixture(scope="module")
def tiny_vlm(tiny_dir):
    return load_vlm(Context(model_id=str(tiny_dir), device="cpu", max_new_tokens=8))


def _ctx(tiny_dir: Path, **changes) -> Context:
    return Context(model_id=str(tiny_dir), device="cpu", max_new_tokens=6, **changes)


def _frames(clip: Path, ctx: Context, fps: float = 2.0) -> tuple[FrameBatch, VideoInfo]:
    return sample_frames(clip, 0.0, None, fps=fps, ctx=ctx), probe(clip, ctx)


@pytest.mark.parametrize(
    ("quantization", "llm_linear"),
    [("none", "Linear"), ("8bit", "Linear8bitLt"), ("4bit", "Linear4bit")],
)
def test_loads_generates_and_streams_in_each_mode(
    tiny_dir, clip, quantization, llm_linear, caplog, monkeypatch
):
    from transformers import VideoLlama3ForConditionalGeneration as Model

    def never(*args, **kwargs):
        raise AssertionError("a loaded (possibly quantized) model must never be moved")

    monkeypatch.setattr(Model, "to", never)
    monkeypatch.setattr(Model, "cuda", never)
    ctx = _ctx(tiny_dir, quantization=quantization)
    with caplog.at_level(logging.INFO, logger="agent.vlm.loading"):
        vlm = load_vlm(ctx)
    # Logged before loading: what, from where, onto which device, and the memory it needs.
    announce = next(
        r.getMessage() for r in caplog.records if "loading VideoLLaMA3" in r.getMessage()
    )
    assert f"local folder {tiny_dir.resolve()}" in announce
    assert "onto cpu" in announce and "GiB free" in announce and "needs about" in announce
    assert isinstance(vlm, VLM)
    assert vlm.plan.quantization == quantization
    language = vlm.model.model.language_model.layers[0]
    assert type(language.self_attn.q_proj).__name__ == llm_linear
    assert type(language.mlp.down_proj).__name__ == llm_linear
    # Vision encoder, projector and lm_head stay unquantized float32 nn.Linear.
    for module in (
        vlm.model.model.vision_model.encoder.layers[0].mlp.fc1,
        vlm.model.model.projector.readout[0],
        vlm.model.lm_head,
    ):
        assert type(module) is torch.nn.Linear
        assert module.weight.dtype == torch.float32
    assert {p.device.type for p in vlm.model.parameters()} == {"cpu"}

    frames, info = _frames(clip, ctx, fps=1.0)
    pieces: list[str] = []
    reply = vlm.answer(
        "What does the person do?", frames, info, "wave: a raised hand", pieces.append
    )
    assert isinstance(reply, VLMReply)
    assert reply.new_tokens == 6
    assert reply.task == "answer"
    assert reply.data is not None and reply.data["answer"] == reply.text  # prose fallback
    assert "".join(pieces).strip() == reply.text
    plain = vlm.generate("What does the person do?", frames, info, max_new_tokens=6)
    assert plain.new_tokens == 6


def test_time_prefixes_are_true_for_25fps_clip_sampled_at_2fps(tiny_vlm, clip):
    ctx = tiny_vlm.ctx
    frames, info = _frames(clip, ctx, fps=2.0)
    assert info.fps == pytest.approx(25.0)
    assert frames.frame_indices.tolist() == [0, 12, 25, 37, 50, 62, 75, 87]
    call = tiny_vlm.prepare("Describe.", frames, info)
    prompt = tiny_vlm.processor.tokenizer.decode(call.inputs["input_ids"][0])
    times = TIME_PREFIX.findall(prompt)
    assert times == ["0.0", "0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5"]
    assert times == [f"{t:.1f}" for t in frames.timestamps_s]
    # Without metadata the processor would assume 1 fps and write frame indices as seconds.
    assert "Time 12.0s" not in prompt


def test_variable_frame_rate_uses_a_millisecond_time_base():
    frames = FrameBatch(
        np.zeros((3, 32, 32, 3), np.uint8), np.array([0, 10, 20]), np.array([0.0, 0.9, 2.2])
    )
    info = VideoInfo(
        path="x.mp4", duration_s=3.0, fps=10.0, frame_count=30, width=32, height=32, sha256="0"
    )
    metadata = video_metadata(frames, info)
    assert metadata.timestamps == pytest.approx([0.0, 0.9, 2.2])
    cfr = video_metadata(
        FrameBatch(frames.frames, np.array([0, 10, 20]), np.array([0.0, 1.0, 2.0])), info
    )
    assert (cfr.fps, cfr.frames_indices, cfr.total_num_frames) == (10.0, [0, 10, 20], 30)


def test_frame_cap_thins_uniformly(tiny_dir, tiny_vlm, clip):
    ctx = _ctx(tiny_dir, max_frames_per_call=3)
    frames, info = _frames(clip, ctx, fps=2.0)
    fitted, _ = fit_video(frames, ctx, tiny_vlm.processor.video_processor)
    assert len(fitted) == 3
    assert fitted.timestamps_s[0] == frames.timestamps_s[0]
    assert fitted.timestamps_s[-1] == frames.timestamps_s[-1]
    tiny_vlm.ctx, saved = ctx, tiny_vlm.ctx
    try:
        call = tiny_vlm.prepare("Describe.", frames, info)
        prompt = tiny_vlm.processor.tokenizer.decode(call.inputs["input_ids"][0])
        reply = tiny_vlm.describe(frames, info, "")
        text = tiny_vlm._prompt("describe_clip", frames, info, kb_snippet="")
    finally:
        tiny_vlm.ctx = saved
    assert len(TIME_PREFIX.findall(prompt)) == 3
    assert len(reply.frame_times_s) == 3
    assert "of a video: 3 frames, each preceded by its time" in text


@pytest.mark.parametrize("budget", [400, 60, 12])
def test_visual_token_cap_cuts_resolution_then_frames(tiny_dir, tiny_vlm, clip, budget):
    ctx = _ctx(tiny_dir, max_visual_tokens=budget)
    frames, info = _frames(clip, ctx, fps=2.0)
    tiny_vlm.ctx, saved = ctx, tiny_vlm.ctx
    try:
        call = tiny_vlm.prepare("Describe.", frames, info)
    finally:
        tiny_vlm.ctx = saved
    assert 0 < call.visual_tokens <= budget
    placeholders = int((call.inputs["input_ids"] == tiny_vlm.model.config.video_token_id).sum())
    assert placeholders <= call.visual_tokens  # compression only removes tokens
    if budget == 12:  # 4 tokens minimum per frame -> at most 3 of the 8 frames fit
        assert len(call.frame_times_s) <= 3


def test_visual_token_cap_below_one_frame_is_a_clear_error(tiny_dir, tiny_vlm, clip):
    ctx = _ctx(tiny_dir, max_visual_tokens=0)
    frames, _ = _frames(clip, ctx)
    with pytest.raises(ModelError, match="MAX_VISUAL_TOKENS"):
        fit_video(frames, ctx, tiny_vlm.processor.video_processor)


def test_still_image_goes_in_as_an_image(tiny_vlm):
    frames = FrameBatch(np.full((1, 90, 120, 3), 128, np.uint8), np.array([0]), np.array([0.0]))
    info = VideoInfo(
        path="a.png", duration_s=0.0, fps=0.0, frame_count=1, width=120, height=90, sha256="0"
    )
    call = tiny_vlm.prepare("Describe.", frames, info)
    assert "pixel_values" in call.inputs and "pixel_values_videos" not in call.inputs
    assert not TIME_PREFIX.search(tiny_vlm.processor.tokenizer.decode(call.inputs["input_ids"][0]))
    reply = tiny_vlm.classify(frames, info, ["happy", "sad"], "")
    assert reply.task == "classify" and reply.frame_times_s == [0.0]
    text = tiny_vlm._prompt("classify_labels", frames, info, labels="happy, sad")
    assert text.startswith("You are looking at a single still image.") and "Time t s" not in text


def test_unparsed_replies_are_counted_not_guessed(tiny_vlm, clip):
    frames, info = _frames(clip, tiny_vlm.ctx)
    before = parsing.unparsed_counts().get("describe", 0)
    reply = tiny_vlm.describe(frames, info, "happy: smile")  # random weights: never JSON
    assert reply.data is None
    assert tiny_vlm.stats["describe_unparsed"] >= 1
    assert parsing.unparsed_counts()["describe"] == before + 1


def test_prompts_carry_question_labels_and_knowledge(tiny_vlm, clip):
    frames, info = _frames(clip, tiny_vlm.ctx)
    text = tiny_vlm._prompt("classify_labels", frames, info, labels="anger, happy", kb_snippet="K")
    assert "Labels: anger, happy" in text and "\nK\n" in text and '{"label"' in text
    assert "from 0.0 s (00:00.0) to 3.5 s (00:03.5)" in text


# --- device plan and loading errors -----------------------------------------------------------


def test_device_plan_defaults_on_cpu():
    plan = pick_device(Context(device="auto", quantization="auto"))
    if not torch.cuda.is_available():
        assert (plan.device.type, plan.dtype, plan.quantization) == ("cpu", torch.float32, "none")
    assert pick_device(Context(device="cpu", quantization="4bit")).quantization == "4bit"


def test_cuda_request_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="BEHAVIOR_AGENT_DEVICE=cpu"):
        pick_device(Context(device="cuda"))


def test_4bit_without_usable_bitsandbytes_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(device_module, "_bnb_probe", lambda *a: "no cpu backend (probe)")
    with pytest.raises(ConfigError, match="QUANTIZATION=none"):
        pick_device(Context(device="cpu", quantization="4bit"))


def test_missing_folder_and_incomplete_download_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        loading.resolve_source(str(tmp_path / "nope"))
    (tmp_path / "config.json").write_text('{"model_type": "video_llama_3"}')
    with pytest.raises(ModelError, match="no weight files"):
        loading.resolve_source(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "videollama3_qwen2"}')
    with pytest.raises(ModelError, match="convert-vl3"):
        loading.resolve_source(str(tmp_path))


def test_uncached_hub_id_offline_says_how_to_get_the_weights(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    source = loading.resolve_source("someone/VideoLLaMA3-not-cached")
    assert not source.local
    with pytest.raises(ModelError, match="hf download someone/VideoLLaMA3-not-cached"):
        loading.read_config(source)


def test_not_enough_memory_is_refused_before_loading(tiny_dir, monkeypatch):
    monkeypatch.setattr(loading, "free_memory_bytes", lambda device: 1024)
    with pytest.raises(ModelError, match="Not enough memory"):
        load_vlm(_ctx(tiny_dir))


def test_memory_estimate_matches_the_weights(tiny_vlm):
    config = tiny_vlm.model.config
    weights = sum(p.numel() * p.element_size() for p in tiny_vlm.model.parameters())
    estimate = loading.estimate_memory_bytes(config, tiny_vlm.plan) - 0.5 * 1024**3
    assert weights <= estimate <= 1.3 * weights


def test_memory_estimate_of_real_sizes_is_plausible():
    from transformers import Qwen2Config, VideoLlama3Config

    text = Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
    )
    vision = {
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "patch_size": 14,
    }
    config = VideoLlama3Config(text_config=text.to_dict(), vision_config=vision)
    counts = loading.parameter_counts(config)
    assert 7.5e9 < sum(counts.values()) < 8.5e9  # VideoLLaMA3-7B: Qwen2.5-7B + SigLIP 0.4B
    gib = 1024**3
    cuda = torch.device("cuda")
    four = loading.estimate_memory_bytes(
        config, device_module.DevicePlan(cuda, torch.bfloat16, "4bit")
    )
    none = loading.estimate_memory_bytes(
        config, device_module.DevicePlan(cuda, torch.bfloat16, "none")
    )
    assert 6 * gib < four < 10 * gib
    assert 16 * gib < none < 20 * gib


def test_dev_tiny_vl3_command_writes_a_loadable_checkpoint(tmp_path):
    from typer.testing import CliRunner

    from agent.cli.app import app

    result = CliRunner().invoke(app, ["dev", "tiny-vl3", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    assert loading.resolve_source(str(tmp_path / "t")).local
    config = loading.read_config(loading.resolve_source(str(tmp_path / "t")))
    assert config.model_type == "video_llama_3" and config.text_config.hidden_size == 64


def test_streaming_stops_when_the_consumer_fails(tiny_vlm, clip):
    frames, info = _frames(clip, tiny_vlm.ctx, fps=1.0)

    class Gone(Exception):
        pass

    seen: list[str] = []

    def consumer(piece: str) -> None:
        seen.append(piece)
        raise Gone

    with pytest.raises(Gone):
        tiny_vlm.generate("Talk.", frames, info, on_token=consumer, max_new_tokens=40)
    assert len(seen) == 1
    # The model is free again (the generation lock was released, the worker finished).
    assert tiny_vlm.generate("Talk.", frames, info, max_new_tokens=2).new_tokens == 2


def test_real_media_frames_get_their_reader_timestamps(tiny_vlm, shared_media):
    video = sorted(shared_media.glob("*.mp4"))[0]
    ctx = tiny_vlm.ctx
    info = probe(video, ctx)
    frames = sample_frames(video, 0.0, min(info.duration_s, 6.0), fps=ctx.inspect_fps, ctx=ctx)
    call = tiny_vlm.prepare("Describe.", frames, info)
    prompt = tiny_vlm.processor.tokenizer.decode(call.inputs["input_ids"][0])
    expected = [f"{t:.1f}" for t in frames.timestamps_s[: ctx.max_frames_per_call]]
    assert TIME_PREFIX.findall(prompt) == expected
