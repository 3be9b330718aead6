"""Rewrites an original DAMO-NLP-SG VideoLLaMA3 checkpoint (remote code) into the native layout.

The original release (`DAMO-NLP-SG/VideoLLaMA3-7B`, `-2B`, model_type `videollama3_qwen2`,
classes in the repo's `inference/transformers_api/`) keeps the Qwen2 language model at the top
of `model.*`, the SigLIP-NaViT encoder under `model.vision_encoder.*` and the MLP projector under
`model.mm_projector.*`, with one `<image>` token for images and video frames. The native
`VideoLlama3ForConditionalGeneration` (transformers 5) nests the language model under
`model.language_model.*`, names the encoder `model.vision_model.*` and the projector
`model.projector.*`, and uses `<|image_pad|>` / `<|video_pad|>` placeholders. Tensors are copied
unchanged; only names, config and processor files change.
"""

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import ModelError
from agent.vlm.loading import NATIVE_MODEL_TYPE, ORIGINAL_MODEL_TYPE

log = logging.getLogger(__name__)

# (original prefix, native prefix), first match wins.
KEY_RULES: list[tuple[str, str]] = [
    ("model.vision_encoder.", "model.vision_model."),
    ("model.mm_projector.", "model.projector."),
    ("model.embed_tokens.", "model.language_model.embed_tokens."),
    ("model.layers.", "model.language_model.layers."),
    ("model.norm.", "model.language_model.norm."),
    ("lm_head.", "lm_head."),
]
# Buffers recomputed at load time; old exports sometimes saved them.
DROPPED_SUFFIXES = ("rotary_pos_emb.inv_freq", "rotary_emb.inv_freq")
# Keys of the original top-level config that are not Qwen2 text-model settings.
_NON_TEXT_KEYS = {
    "vision_encoder",
    "vision_encoder_config",
    "mm_projector_type",
    "use_token_compression",
    "image_token_index",
    "auto_map",
    "architectures",
    "model_type",
    "_name_or_path",
    "transformers_version",
    "mm_hidden_size",
    "tokenizer_model_max_length",
    "tokenizer_padding_side",
    "mm_vision_select_layer",
    "mm_vision_select_feature",
}
_VISION_KEYS = (
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
# Original Videollama3Qwen2Processor defaults (processing_videollama3.py).
_ORIGINAL_PROCESSOR_DEFAULTS = {
    "image_merge_size": 1,
    "video_merge_size": 2,
    "fps": 1,
    "max_frames": 128,
}
# Original Videollama3ImageProcessor defaults (image_processing_videollama3.py).
_ORIGINAL_IMAGE_DEFAULTS = {
    "patch_size": 14,
    "min_tokens": 16,
    "max_tokens": 16384,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "rescale_factor": 1 / 255,
}


@dataclass
class ConversionReport:
    """What was rewritten, for the CLI and for `conversion.json` in the output folder."""

    source: str
    destination: str
    tensors: int = 0
    renamed: dict[str, str] = field(default_factory=dict)  # original prefix -> native prefix
    dropped: list[str] = field(default_factory=list)
    shards: int = 0
    image_token: str = ""
    video_token: str = ""
    added_tokens: list[str] = field(default_factory=list)


def map_key(key: str) -> str | None:
    """The native name of an original state-dict key; None for buffers that are dropped."""
    if key.endswith(DROPPED_SUFFIXES):
        return None
    for old, new in KEY_RULES:
        if key.startswith(old):
            return new + key[len(old) :]
    raise ModelError(
        f"Unknown tensor '{key}' in the original checkpoint; it is not a VideoLLaMA3 "
        "(videollama3_qwen2) weight. Check that SRC is a DAMO-NLP-SG VideoLLaMA3 download."
    )


def convert_config(original: dict, image_token_id: int, video_token_id: int) -> dict:
    """Native `VideoLlama3Config` dict from an original `Videollama3Qwen2Config` dict."""
    projector = original.get("mm_projector_type", "mlp2x_gelu")
    if projector != "mlp2x_gelu":
        raise ModelError(
            f"mm_projector_type={projector!r}: the native model has only the 2-layer GELU MLP "
            "projector (mlp2x_gelu), so this checkpoint cannot be converted."
        )
    vision = original.get("vision_encoder_config") or {}
    if not vision:
        raise ModelError(
            "config.json has no vision_encoder_config (a training checkpoint that loads its "
            "encoder from another repo). Use a released DAMO-NLP-SG/VideoLLaMA3 checkpoint."
        )
    text = {k: v for k, v in original.items() if k not in _NON_TEXT_KEYS}
    text["model_type"] = "qwen2"
    vision_config = {k: vision[k] for k in _VISION_KEYS if k in vision}
    vision_config["model_type"] = "video_llama_3_vision"
    # The original VisionRotaryEmbedding hard-codes theta 10000 (axial h/w rope).
    vision_config["rope_parameters"] = {"rope_type": "axial", "rope_theta": 10000.0}
    dtype = original.get("torch_dtype") or original.get("dtype")
    native = {
        "model_type": NATIVE_MODEL_TYPE,
        "architectures": ["VideoLlama3ForConditionalGeneration"],
        "text_config": text,
        "vision_config": vision_config,
        "image_token_id": image_token_id,
        "video_token_id": video_token_id,
        "tie_word_embeddings": bool(original.get("tie_word_embeddings", False)),
    }
    if dtype:
        native["dtype"] = dtype
    return native


def convert_vl3(src: str | Path, dst: str | Path) -> ConversionReport:
    """Write the native-layout checkpoint of the original checkpoint in `src` to `dst`."""
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    original = _read_original_config(src)
    if dst.exists() and any(dst.iterdir()):
        raise ModelError(f"'{dst}' exists and is not empty; choose a new output folder.")
    dst.mkdir(parents=True, exist_ok=True)
    report = ConversionReport(source=str(src), destination=str(dst))
    processor = _convert_processor(src, original, report)
    image_id = processor.tokenizer.convert_tokens_to_ids(report.image_token)
    video_id = processor.tokenizer.convert_tokens_to_ids(report.video_token)
    vocab_size = int(original["vocab_size"])
    if max(image_id, video_id) >= vocab_size:
        raise ModelError(
            f"The placeholder tokens got ids {image_id}/{video_id}, beyond the model's "
            f"vocabulary of {vocab_size}; the tokenizer in '{src}' does not fit its weights."
        )
    native = convert_config(original, image_id, video_id)
    (dst / "config.json").write_text(json.dumps(native, indent=2) + "\n", encoding="utf-8")
    _convert_weights(src, dst, report)
    processor.save_pretrained(dst)
    if (src / "generation_config.json").is_file():
        shutil.copy(src / "generation_config.json", dst / "generation_config.json")
    (dst / "conversion.json").write_text(
        json.dumps(report.__dict__, indent=2) + "\n", encoding="utf-8"
    )
    log.info("converted %d tensors in %d shard(s) to %s", report.tensors, report.shards, dst)
    return report


def _read_original_config(src: Path) -> dict:
    config_file = src / "config.json"
    if not config_file.is_file():
        raise ModelError(
            f"'{src}' has no config.json. Download the original checkpoint first, e.g. "
            "`hf download DAMO-NLP-SG/VideoLLaMA3-7B --local-dir SRC`."
        )
    original = json.loads(config_file.read_text(encoding="utf-8"))
    model_type = original.get("model_type")
    if model_type == NATIVE_MODEL_TYPE:
        raise ModelError(f"'{src}' is already in the native layout; load it directly.")
    if model_type != ORIGINAL_MODEL_TYPE:
        raise ModelError(
            f"'{src}' holds a '{model_type}' model; convert-vl3 converts the original "
            f"VideoLLaMA3 checkpoints (model_type '{ORIGINAL_MODEL_TYPE}')."
        )
    return original


def _weight_shards(src: Path) -> list[Path]:
    shards = sorted(src.glob("*.safetensors"))
    if not shards:
        shards = sorted(p for p in src.glob("*.bin") if p.name != "training_args.bin")
    if not shards:
        raise ModelError(
            f"'{src}' has no weight files (*.safetensors or *.bin); the download is incomplete."
        )
    return shards


def _convert_weights(src: Path, dst: Path, report: ConversionReport) -> None:
    """One shard at a time (memory stays at one shard), same sharding, safetensors out."""
    import torch
    from safetensors.torch import load_file, save_file

    shards = _weight_shards(src)
    weight_map: dict[str, str] = {}
    total_bytes = 0
    for number, shard in enumerate(shards, start=1):
        if shard.suffix == ".safetensors":
            tensors = load_file(shard)
        else:
            tensors = torch.load(shard, map_location="cpu", weights_only=True)
        converted = {}
        for key, tensor in tensors.items():
            new_key = map_key(key)
            if new_key is None:
                report.dropped.append(key)
                continue
            prefix = next(old for old, _ in KEY_RULES if key.startswith(old))
            report.renamed[prefix] = dict(KEY_RULES)[prefix]
            converted[new_key] = tensor.contiguous()
            total_bytes += tensor.numel() * tensor.element_size()
        name = (
            "model.safetensors"
            if len(shards) == 1
            else f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        )
        save_file(converted, dst / name, metadata={"format": "pt"})
        weight_map.update({key: name for key in converted})
        report.tensors += len(converted)
        del tensors, converted
    report.shards = len(shards)
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": total_bytes},
            "weight_map": dict(sorted(weight_map.items())),
        }
        (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _convert_processor(src: Path, original: dict, report: ConversionReport):
    """Native VideoLlama3Processor from the original tokenizer and processor settings."""
    from transformers import AutoTokenizer, VideoLlama3Processor
    from transformers.models.video_llama_3 import (
        VideoLlama3ImageProcessor,
        VideoLlama3VideoProcessor,
    )

    from agent.vlm.tiny import chat_template

    image_cfg = {**_ORIGINAL_IMAGE_DEFAULTS, **_read_json(src / "preprocessor_config.json")}
    proc_cfg = {**_ORIGINAL_PROCESSOR_DEFAULTS, **_read_json(src / "processor_config.json")}
    tokenizer = AutoTokenizer.from_pretrained(src, trust_remote_code=False)
    for attribute, token in (("image_token", "<|image_pad|>"), ("video_token", "<|video_pad|>")):
        if token not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [token]})
            report.added_tokens.append(token)
        setattr(report, attribute, token)
    patch = int(image_cfg["patch_size"])
    common = {
        "patch_size": patch,
        "image_mean": image_cfg["image_mean"],
        "image_std": image_cfg["image_std"],
        "rescale_factor": image_cfg["rescale_factor"],
    }

    def size(merge: int) -> dict[str, int]:
        # Original budgets count merged tokens of (patch * merge)^2 pixels each.
        factor = (patch * merge) ** 2
        return {
            "shortest_edge": int(image_cfg["min_tokens"]) * factor,
            "longest_edge": int(image_cfg["max_tokens"]) * factor,
        }

    image_merge, video_merge = int(proc_cfg["image_merge_size"]), int(proc_cfg["video_merge_size"])
    image_processor = VideoLlama3ImageProcessor(
        merge_size=image_merge, size=size(image_merge), **common
    )
    video_processor = VideoLlama3VideoProcessor(
        merge_size=video_merge,
        size=size(video_merge),
        fps=proc_cfg["fps"],
        max_frames=int(proc_cfg["max_frames"]),
        use_token_compression=bool(original.get("use_token_compression", True)),
        **common,
    )
    tokenizer.chat_template = chat_template()
    return VideoLlama3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=chat_template(),
    )


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
