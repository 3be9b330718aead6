"""Loading a native-layout VideoLLaMA3 checkpoint: find it, size it, quantize it, place it."""

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from agent.errors import ModelError
from agent.vlm.device import DevicePlan, free_memory_bytes

log = logging.getLogger(__name__)

NATIVE_MODEL_TYPE = "video_llama_3"
ORIGINAL_MODEL_TYPE = "videollama3_qwen2"
# Module names in VideoLlama3ForConditionalGeneration (modeling_video_llama_3.py): the SigLIP
# vision encoder is `model.vision_model`, the MLP projector `model.projector`. They stay in full
# precision: quantizing them costs accuracy and saves little (about 0.4 B of 7 B parameters).
# bitsandbytes matches these from the start of the module path, so they must be full paths.
UNQUANTIZED_MODULES = ["model.vision_model", "model.projector", "lm_head"]
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
_GIB = 1024**3


@dataclass(frozen=True)
class ModelSource:
    """A checkpoint reference: a local folder (loaded offline) or a hub id."""

    ref: str
    local: bool

    def describe(self) -> str:
        return f"local folder {self.ref}" if self.local else f"hub id {self.ref}"


def resolve_source(model_id: str) -> ModelSource:
    """A local folder when `model_id` is one; a hub id when it looks like `org/name`."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        _check_local_folder(path)
        return ModelSource(str(path.resolve()), local=True)
    looks_like_path = model_id.startswith((".", "/", "~")) or model_id.count("/") != 1
    if looks_like_path or path.exists():
        raise ModelError(
            f"The model folder '{model_id}' does not exist. Set BEHAVIOR_AGENT_MODEL_ID to a "
            "folder holding a VideoLLaMA3 checkpoint (config.json + *.safetensors), or to a hub "
            "id such as lkhl/VideoLLaMA3-2B-Image-HF."
        )
    return ModelSource(model_id, local=False)


def checkpoint_folder(model_id: str) -> Path | None:
    """The folder a checkpoint's files are in: the local folder, or the hub cache snapshot
    (None when a hub id is not in the local cache)."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        return path.resolve()
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json")
    return Path(cached).parent if isinstance(cached, str) else None


def _check_local_folder(path: Path) -> None:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelError(
            f"'{path}' has no config.json, so it is not a model checkpoint. Point "
            "BEHAVIOR_AGENT_MODEL_ID at the folder you downloaded with "
            "`hf download lkhl/VideoLLaMA3-2B-Image-HF --local-dir DIR`."
        )
    model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    if model_type == ORIGINAL_MODEL_TYPE:
        raise ModelError(
            f"'{path}' is a VideoLLaMA3 checkpoint in the original remote-code layout. Convert "
            f"it once with `behavior-agent convert-vl3 {path} {path}-native` and set "
            f"BEHAVIOR_AGENT_MODEL_ID={path}-native."
        )
    if model_type != NATIVE_MODEL_TYPE:
        raise ModelError(
            f"'{path}' holds a '{model_type}' model, not VideoLLaMA3 ('{NATIVE_MODEL_TYPE}'). "
            "Set BEHAVIOR_AGENT_MODEL_ID to a VideoLLaMA3 checkpoint."
        )
    if not any(next(path.glob(pattern), None) for pattern in _WEIGHT_FILES):
        raise ModelError(
            f"'{path}' has a config.json but no weight files (*.safetensors). The download is "
            "incomplete: run `hf download <id> --local-dir "
            f"{path}` again on a machine with internet access."
        )


def read_config(source: ModelSource):
    """The checkpoint's VideoLlama3Config; a clear ModelError when it cannot be had."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source.ref, local_files_only=source.local)
    except OSError as error:
        raise ModelError(
            f"Cannot get the VideoLLaMA3 weights '{source.ref}': they are not in the Hugging Face "
            "cache and the hub could not be reached "
            f"({str(error).splitlines()[0][:160]}). On a machine with internet access run "
            f"`hf download {source.ref} --local-dir DIR`, copy DIR here and set "
            "BEHAVIOR_AGENT_MODEL_ID=DIR (that works offline)."
        ) from None
    if config.model_type != NATIVE_MODEL_TYPE:
        raise ModelError(
            f"'{source.ref}' is a '{config.model_type}' model, not native VideoLLaMA3. For the "
            "original DAMO-NLP-SG checkpoints download them and run `behavior-agent convert-vl3`."
        )
    return config


def parameter_counts(config) -> dict[str, int]:
    """Parameters of the language model's linear layers, its embeddings, and the vision side."""
    text, vision = config.text_config, config.vision_config
    hidden, inter, layers = text.hidden_size, text.intermediate_size, text.num_hidden_layers
    head_dim = getattr(text, "head_dim", None) or hidden // text.num_attention_heads
    q_size = text.num_attention_heads * head_dim
    kv_size = text.num_key_value_heads * head_dim
    per_layer = hidden * q_size * 2 + hidden * kv_size * 2 + 3 * hidden * inter
    embeddings = text.vocab_size * hidden * (1 if config.tie_word_embeddings else 2)
    v_hidden = vision.hidden_size
    v_layer = 4 * v_hidden * v_hidden + 2 * v_hidden * vision.intermediate_size
    vision_params = (
        vision.num_hidden_layers * v_layer
        + vision.num_channels * vision.patch_size**2 * v_hidden
        + v_hidden * hidden
        + hidden * hidden
    )
    return {"llm_linear": layers * per_layer, "embeddings": embeddings, "vision": vision_params}


def estimate_memory_bytes(config, plan: DevicePlan) -> int:
    """Weights in the chosen precision plus working room for activations and the KV cache.

    4-bit nf4 with double quantization stores about 0.53 bytes per weight; LLM.int8 one byte.
    Embeddings, lm_head, the vision encoder and the projector stay in the compute dtype.
    """
    counts = parameter_counts(config)
    dtype_bytes = torch.finfo(plan.dtype).bits // 8
    linear_bytes = {"4bit": 0.53, "8bit": 1.0, "none": dtype_bytes}[plan.quantization]
    weights = counts["llm_linear"] * linear_bytes
    weights += (counts["embeddings"] + counts["vision"]) * dtype_bytes
    return int(weights * 1.15 + 0.5 * _GIB)


def bnb_config(plan: DevicePlan):
    """The BitsAndBytesConfig for the plan (None when not quantized)."""
    from transformers import BitsAndBytesConfig

    if plan.quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=plan.dtype,
            llm_int8_skip_modules=UNQUANTIZED_MODULES,
        )
    if plan.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=UNQUANTIZED_MODULES)
    return None


def load_model_and_processor(source: ModelSource, plan: DevicePlan):
    """Log what is loaded where and how big it is, check memory, then load (no `.to()`)."""
    from transformers import AutoProcessor, VideoLlama3ForConditionalGeneration

    config = read_config(source)
    needed = estimate_memory_bytes(config, plan)
    free = free_memory_bytes(plan.device)
    counts = parameter_counts(config)
    log.info(
        "loading VideoLLaMA3 (%s parameters) from %s onto %s; needs about %.2f GiB, %.2f GiB free",
        _count(sum(counts.values())),
        source.describe(),
        plan.describe(),
        needed / _GIB,
        free / _GIB,
    )
    if needed > free:
        raise ModelError(
            f"Not enough memory on {plan.device} for {source.ref} as {plan.quantization}: it "
            f"needs about {needed / _GIB:.1f} GiB and {free / _GIB:.1f} GiB are free. Use "
            "BEHAVIOR_AGENT_QUANTIZATION=4bit, a smaller model (lkhl/VideoLLaMA3-2B-Image-HF), "
            "or free memory held by other programs."
        )
    started = time.perf_counter()
    try:
        processor = AutoProcessor.from_pretrained(source.ref, local_files_only=source.local)
        model = VideoLlama3ForConditionalGeneration.from_pretrained(
            source.ref,
            dtype=plan.dtype,
            device_map=plan.device_map,
            quantization_config=bnb_config(plan),
            local_files_only=source.local,
        )
    except torch.OutOfMemoryError:
        raise ModelError(
            f"{plan.device} ran out of memory while loading {source.ref} as "
            f"{plan.quantization}. Use BEHAVIOR_AGENT_QUANTIZATION=4bit or the 2B model."
        ) from None
    except OSError as error:
        raise ModelError(
            f"Cannot load the weights of '{source.ref}' ({str(error).splitlines()[0][:200]}). "
            "Download them completely (`hf download ID --local-dir DIR`) and set "
            "BEHAVIOR_AGENT_MODEL_ID=DIR."
        ) from None
    model.eval()
    log.info("VideoLLaMA3 loaded in %.1f s", time.perf_counter() - started)
    return model, processor


def _count(number: int) -> str:
    return f"{number / 1e9:.2f} B" if number >= 1e8 else f"{number / 1e6:.2f} M"
