"""A tiny random VideoLLaMA3 checkpoint (real classes, real processors) for tests and benchmarks.

Everything is built offline: a small `VideoLlama3Config`, a byte-level BPE tokenizer trained in
process with the `tokenizers` library (with the chat and vision special tokens the processor
needs), the real image and video processors and the project's chat template. The result is saved
with `save_pretrained`, so it loads through exactly the code path real weights take.
"""

import logging
from pathlib import Path

import torch

from agent.resources import data_dir

log = logging.getLogger(__name__)

# Special tokens of the Qwen2.5 vocabulary that VideoLLaMA3 uses, plus the original `<image>`.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<image>",
]
_CORPUS = [
    "The person smiles and waves at the camera, then sits down.",
    "Time 0.0s: a man raises his right hand; Time 1.5s: he points to the left.",
    '{"people": [{"emotion": "happy", "gesture": "thumbs up", "action": "standing"}]}',
    '{"label": "anger", "confidence": 0.8, "start_s": 2.5, "end_s": 4.0}',
    "Describe the emotions, gestures and actions of each visible person.",
    "Answer the question about the video. Reply with JSON only.",
    "from 00:12 to 00:15 the woman frowns; at 3 seconds she nods; 12.5s - 14s clapping",
    "sad neutral surprise fear disgust contempt yoga wrestling walking running jumping",
]
# Processor sizes: realistic patch/merge sizes, small pixel budgets so tests stay fast.
_PATCH = 14


def chat_template() -> str:
    """The native VideoLLaMA3 chat template (one placeholder per image or video)."""
    return (data_dir("prompts") / "vl3_chat_template.jinja").read_text(encoding="utf-8")


def build_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on a few sentences, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    tokenizer.chat_template = chat_template()
    return tokenizer


def tiny_config(tokenizer, *, tie_word_embeddings: bool = False):
    """A VideoLLaMA3 config with a few hundred thousand parameters."""
    from transformers import Qwen2Config, VideoLlama3Config
    from transformers.models.video_llama_3 import VideoLlama3VisionConfig

    vocab_size = -(-len(tokenizer) // 64) * 64  # padded like real checkpoints
    text = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        rope_theta=10000.0,
        tie_word_embeddings=tie_word_embeddings,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = VideoLlama3VisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        patch_size=_PATCH,
    )
    return VideoLlama3Config(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        tie_word_embeddings=tie_word_embeddings,
    )


def build_processor(tokenizer):
    """The real VideoLLaMA3 processor with small pixel budgets."""
    from transformers import VideoLlama3Processor
    from transformers.models.video_llama_3 import (
        VideoLlama3ImageProcessor,
        VideoLlama3VideoProcessor,
    )

    image_processor = VideoLlama3ImageProcessor(
        patch_size=_PATCH,
        merge_size=1,
        size={"shortest_edge": 4 * _PATCH * _PATCH, "longest_edge": 256 * _PATCH * _PATCH},
    )
    video_processor = VideoLlama3VideoProcessor(
        patch_size=_PATCH,
        merge_size=2,
        fps=1,
        max_frames=180,
        size={
            "shortest_edge": 4 * (2 * _PATCH) ** 2,
            "longest_edge": 1024 * (2 * _PATCH) ** 2,
        },
    )
    return VideoLlama3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=chat_template(),
    )


def build_tiny_model(config, seed: int = 0):
    """Random weights (seeded) in float32."""
    from transformers import VideoLlama3ForConditionalGeneration

    torch.manual_seed(seed)
    model = VideoLlama3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    return model.eval()


def build_tiny_vl3(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random VideoLLaMA3 checkpoint (model, tokenizer, processors) to `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_tiny_model(tiny_config(tokenizer), seed=seed)
    model.save_pretrained(folder)
    build_processor(tokenizer).save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    log.info("tiny VideoLLaMA3 with %d parameters written to %s", params, folder)
    return folder
