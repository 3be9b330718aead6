"""`convert-vl3`: a synthetic checkpoint in the original DAMO-NLP-SG layout converts to identical
logits in the native layout."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from agent.cli.app import app
from agent.context import Context
from agent.errors import ModelError
from agent.state import VideoInfo
from agent.video import FrameBatch
from agent.vlm import load_vlm
from agent.vlm.convert import convert_vl3, map_key
from agent.vlm.tiny import build_tiny_vl3

# Names as in the original modeling code (inference/transformers_api/modeling_videollama3*.py):
# Videollama3Qwen2ForCausalLM.model = Qwen2Model + vision_encoder + mm_projector.
NATIVE_TO_ORIGINAL = [
    ("model.language_model.", "model."),
    ("model.vision_model.", "model.vision_encoder."),
    ("model.projector.", "model.mm_projector."),
    ("lm_head.", "lm_head."),
]


def _original_key(key: str) -> str:
    for native, original in NATIVE_TO_ORIGINAL:
        if key.startswith(native):
            return original + key[len(native) :]
    raise AssertionError(key)


def write_original_checkpoint(native_dir: Path, out: Path) -> Path:
    """The tiny model's weights under original key names, with an original-style config."""
    out.mkdir(parents=True)
    tensors = load_file(native_dir / "model.safetensors")
    original = {_original_key(k): v for k, v in tensors.items()}
    original["model.vision_encoder.encoder.rotary_pos_emb.inv_freq"] = torch.ones(4)
    keys = sorted(original)
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    weight_map = {}
    for number, part in enumerate(halves, start=1):
        name = f"model-{number:05d}-of-00002.safetensors"
        save_file({k: original[k].contiguous() for k in part}, out / name)
        weight_map.update(dict.fromkeys(part, name))
    (out / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))

    native = json.loads((native_dir / "config.json").read_text())
    text, vision = native["text_config"], native["vision_config"]
    config = {
        **{k: v for k, v in text.items() if k not in {"model_type", "architectures"}},
        "model_type": "videollama3_qwen2",
        "architectures": ["Videollama3Qwen2ForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_videollama3.Videollama3Qwen2Config",
            "AutoModelForCausalLM": "modeling_videollama3.Videollama3Qwen2ForCausalLM",
        },
        "vision_encoder": None,
        "vision_encoder_config": {
            "model_type": "videollama3_vision_encoder",
            **{
                k: vision[k]
                for k in (
                    "hidden_size",
                    "intermediate_size",
                    "num_hidden_layers",
                    "num_attention_heads",
                    "num_channels",
                    "patch_size",
                    "hidden_act",
                    "layer_norm_eps",
                    "attention_dropout",
                )
            },
        },
        "mm_projector_type": "mlp2x_gelu",
        "use_token_compression": True,
        "image_token_index": 7,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (out / name).write_bytes((native_dir / name).read_bytes())
    (out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Videollama3ImageProcessor",
                "auto_map": {"AutoImageProcessor": "image_processing_videollama3.X"},
                "patch_size": 14,
                "min_tokens": 4,
                "max_tokens": 512,
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.5, 0.5, 0.5],
                "rescale_factor": 1 / 255,
            }
        )
    )
    (out / "processor_config.json").write_text(
        json.dumps(
            {
                "processor_class": "Videollama3Qwen2Processor",
                "image_merge_size": 1,
                "video_merge_size": 2,
                "fps": 1,
                "max_frames": 180,
            }
        )
    )
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("convert")
    native = build_tiny_vl3(root / "native", seed=3)
    original = write_original_checkpoint(native, root / "original")
    return native, original, root


def _clip_inputs():
    rng = np.random.default_rng(1)
    frames = FrameBatch(
        rng.integers(0, 255, (4, 84, 112, 3), dtype=np.uint8),
        np.array([0, 12, 25, 37]),
        np.array([0.0, 0.48, 1.0, 1.48]),
    )
    info = VideoInfo(
        path="c.mp4", duration_s=2.0, fps=25.0, frame_count=50, width=112, height=84, sha256="0"
    )
    return frames, info


def test_converted_checkpoint_gives_identical_logits(checkpoints):
    native_dir, original_dir, root = checkpoints
    result = CliRunner().invoke(
        app, ["convert-vl3", str(original_dir), str(root / "converted"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["shards"] == 2
    assert report["dropped"] == ["model.vision_encoder.encoder.rotary_pos_emb.inv_freq"]
    assert report["renamed"]["model.vision_encoder."] == "model.vision_model."
    assert report["renamed"]["model.mm_projector."] == "model.projector."

    ctx = Context(device="cpu", quantization="none", max_new_tokens=5)
    reference = load_vlm(ctx.replace(model_id=str(native_dir)))
    converted = load_vlm(ctx.replace(model_id=str(root / "converted")))
    frames, info = _clip_inputs()
    call = converted.prepare("What happens?", frames, info)
    with torch.no_grad():
        expected = reference.model(**call.inputs).logits
        actual = converted.model(**call.inputs).logits
    assert torch.equal(expected, actual)
    assert converted.model.config.video_token_id == reference.model.config.video_token_id
    # Generation through the converted checkpoint works end to end and matches too.
    assert (
        converted.generate("Hi", frames, info).text == reference.generate("Hi", frames, info).text
    )


def test_processor_settings_are_mapped(checkpoints):
    _, original_dir, root = checkpoints
    out = root / "converted_api"
    convert_vl3(original_dir, out)
    processor = json.loads((out / "processor_config.json").read_text())
    image, video = processor["image_processor"], processor["video_processor"]
    # Original budgets count merged tokens: image factor 14 (merge 1), video 28 (merge 2).
    assert image["size"] == {"shortest_edge": 4 * 14**2, "longest_edge": 512 * 14**2}
    assert video["size"] == {"shortest_edge": 4 * 28**2, "longest_edge": 512 * 28**2}
    assert (image["merge_size"], video["merge_size"]) == (1, 2)
    assert (video["fps"], video["max_frames"], video["use_token_compression"]) == (1, 180, True)
    assert "<|video_pad|>" in (out / "chat_template.jinja").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "video_llama_3"
    assert config["vision_config"]["rope_parameters"]["rope_theta"] == 10000.0
    assert "vision_encoder_config" not in config["text_config"]


def test_converter_refuses_what_it_cannot_convert(checkpoints, tmp_path):
    native_dir, original_dir, root = checkpoints
    with pytest.raises(ModelError, match="already in the native layout"):
        convert_vl3(native_dir, tmp_path / "a")
    with pytest.raises(ModelError, match="not empty"):
        convert_vl3(original_dir, native_dir)
    with pytest.raises(ModelError, match="Unknown tensor"):
        map_key("model.some_adapter.weight")
    assert map_key("model.layers.3.mlp.up_proj.weight") == (
        "model.language_model.layers.3.mlp.up_proj.weight"
    )
    assert map_key("model.vision_encoder.post_layernorm.bias") == (
        "model.vision_model.post_layernorm.bias"
    )
    with pytest.raises(ModelError, match="convert-vl3"):
        load_vlm(Context(model_id=str(original_dir), device="cpu"))
