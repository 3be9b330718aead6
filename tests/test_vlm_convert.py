"""`convert-vl3`: a synthetic checkpoint in the original DAMO-NLP-SG layout converts to identical
logits in the native layout."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from agent.cli.app import app
from agent.context import Context
from agent.errors import ModelError
from agent.state import VideoInfo
from agent.video import FrameBatch
from agent.vlm import load_vlm
from agent.vlm.convert import convert_vl3, map_key
from agent.vlm.tiny import build_tiny_vl3
from agent.vlm.videollama3 import VideoLlama3

# The original release is Videollama3Qwen2ForCausalLM (inference/transformers_api/
# modeling_videollama3*.py): a Qwen2ForCausalLM whose `model` also holds `vision_encoder` and
# `mm_projector`. The synthetic original below is assembled from those parts on their own, not
# from the converter's renaming rules: the language model is transformers' own Qwen2ForCausalLM
# (the original's base class, so its state dict has the original names), and the vision
# encoder and projector are modules with the native inner layout under the original's
# attribute names.


@dataclass
class Original:
    """The synthetic original checkpoint's parts, kept in memory to check the conversion."""

    folder: Path
    language: torch.nn.Module  # Qwen2ForCausalLM
    vision: dict[str, torch.Tensor]  # the vision encoder's own state dict
    projector: dict[str, torch.Tensor]


def write_original_checkpoint(native_dir: Path, out: Path) -> Original:
    """Random original-layout weights with an original-style config and processor files."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, VideoLlama3ForConditionalGeneration

    out.mkdir(parents=True)
    native = json.loads((native_dir / "config.json").read_text())
    text, vision = native["text_config"], native["vision_config"]
    torch.manual_seed(11)
    language = Qwen2ForCausalLM(
        Qwen2Config(**{k: v for k, v in text.items() if k != "model_type"})
    ).eval()
    with torch.no_grad():  # no tensor at its default (norms at 1, biases at 0) either
        for tensor in language.state_dict().values():
            tensor.copy_(torch.randn_like(tensor) * 0.2)
    shapes = VideoLlama3ForConditionalGeneration.from_pretrained(native_dir).model
    vision_state = {k: torch.randn_like(v) for k, v in shapes.vision_model.state_dict().items()}
    projector_state = {k: torch.randn_like(v) for k, v in shapes.projector.state_dict().items()}
    tensors = dict(language.state_dict())
    tensors.update({f"model.vision_encoder.{k}": v for k, v in vision_state.items()})
    tensors.update({f"model.mm_projector.{k}": v for k, v in projector_state.items()})
    # Old exports saved this rotary buffer; it is recomputed at load time.
    tensors["model.vision_encoder.encoder.rotary_pos_emb.inv_freq"] = torch.ones(4)
    keys = sorted(tensors)
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    weight_map = {}
    for number, part in enumerate(halves, start=1):
        name = f"model-{number:05d}-of-00002.safetensors"
        save_file({k: tensors[k].contiguous() for k in part}, out / name)
        weight_map.update(dict.fromkeys(part, name))
    (out / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (out / "config.json").write_text(json.dumps(original_config(text, vision)))
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
    return Original(out, language, vision_state, projector_state)


def original_config(text: dict, vision: dict) -> dict:
    """A config.json as the original release writes it: Qwen2 settings at the top level."""
    return {
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
            "hidden_size": vision["hidden_size"],
            "intermediate_size": vision["intermediate_size"],
            "num_hidden_layers": vision["num_hidden_layers"],
            "num_attention_heads": vision["num_attention_heads"],
            "num_channels": vision["num_channels"],
            "patch_size": vision["patch_size"],
            "hidden_act": vision["hidden_act"],
            "layer_norm_eps": vision["layer_norm_eps"],
            "attention_dropout": vision["attention_dropout"],
        },
        "mm_projector_type": "mlp2x_gelu",
        "use_token_compression": True,
        "image_token_index": 7,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
    }


def reference_model(native_dir: Path, original: Original):
    """The native model with the original's parts put in place module by module (what a
    correct conversion must reproduce), built without the converter."""
    from transformers import VideoLlama3ForConditionalGeneration

    model = VideoLlama3ForConditionalGeneration.from_pretrained(native_dir).eval()
    model.model.language_model.load_state_dict(original.language.model.state_dict())
    model.lm_head.load_state_dict(original.language.lm_head.state_dict())
    model.model.vision_model.load_state_dict(original.vision)
    model.model.projector.load_state_dict(original.projector)
    return model


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
    native_dir, original, root = checkpoints
    result = CliRunner().invoke(
        app, ["convert-vl3", str(original.folder), str(root / "converted"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["shards"] == 2
    assert report["dropped"] == ["model.vision_encoder.encoder.rotary_pos_emb.inv_freq"]
    assert report["renamed"]["model.vision_encoder."] == "model.vision_model."
    assert report["renamed"]["model.mm_projector."] == "model.projector."

    ctx = Context(device="cpu", quantization="none", max_new_tokens=5)
    converted = load_vlm(ctx.replace(model_id=str(root / "converted")))
    reference = VideoLlama3(
        reference_model(native_dir, original), converted.processor, converted.plan, ctx, "ref"
    )
    frames, info = _clip_inputs()
    call = converted.prepare("What happens?", frames, info)
    text_ids = converted.processor.tokenizer("The person smiles.", return_tensors="pt").input_ids
    with torch.no_grad():
        expected = reference.model(**call.inputs).logits
        actual = converted.model(**call.inputs).logits
        # Text alone runs only the language model: it must be the original Qwen2 one.
        text_expected = original.language(input_ids=text_ids).logits
        text_actual = converted.model(input_ids=text_ids).logits
    assert torch.equal(expected, actual)
    assert torch.equal(text_expected, text_actual)
    assert converted.model.config.video_token_id == reference.model.config.video_token_id
    # Generation through the converted checkpoint works end to end and matches too.
    assert (
        converted.generate("Hi", frames, info).text == reference.generate("Hi", frames, info).text
    )


def test_processor_settings_are_mapped(checkpoints):
    _, original, root = checkpoints
    original_dir = original.folder
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
    native_dir, original, root = checkpoints
    original_dir = original.folder
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
