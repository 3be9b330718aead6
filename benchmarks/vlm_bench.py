"""VideoLLaMA3 load time, prefill and decode speed, and peak memory, for one model + quantization.

Runs on the tiny random checkpoint when no model is given (it is built into a temp folder), and
on real weights on a GPU:

    .venv/bin/python benchmarks/vlm_bench.py                          # tiny model, CPU
    .venv/bin/python benchmarks/vlm_bench.py --quantization 4bit      # tiny model, 4-bit on CPU
    .venv/bin/python benchmarks/vlm_bench.py --model /models/VideoLLaMA3-7B-native \\
        --quantization 4bit --frames 32 --new-tokens 128               # real weights, GPU

Input: `--frames` synthetic 640x360 frames of a 25 fps video sampled at 2 fps (moving shapes,
so token compression keeps most tokens). Prefill = time to the first new token; decode rate =
further tokens / remaining time (at least `--new-tokens` tokens are forced). Peak memory is
torch's peak allocation on CUDA, the process's peak resident set size on the CPU.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from agent.context import Context
from agent.state import VideoInfo
from agent.video import FrameBatch
from agent.vlm import load_vlm
from agent.vlm.tiny import build_tiny_vl3


def synthetic_clip(num_frames: int, fps: float = 25.0, sample_fps: float = 2.0):
    """Frames with a moving square on a gradient, their indices and times at `sample_fps`."""
    height, width = 360, 640
    step = int(round(fps / sample_fps))
    indices = np.arange(num_frames) * step
    ys, xs = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for n, index in enumerate(indices):
        frames[n, ..., 0] = (xs * 255 // width).astype(np.uint8)
        frames[n, ..., 1] = (ys * 255 // height).astype(np.uint8)
        frames[n, ..., 2] = 60
        x = int(index * 7) % (width - 80)
        frames[n, 140:220, x : x + 80] = (230, 40, 40)
    total = int(indices[-1]) + step
    info = VideoInfo(
        path="synthetic.mp4",
        duration_s=total / fps,
        fps=fps,
        frame_count=total,
        width=width,
        height=height,
        sha256="synthetic",
    )
    return FrameBatch(frames, indices, indices / fps), info


def timed_generate(vlm, inputs, new_tokens: int) -> float:
    if vlm.plan.device.type == "cuda":
        torch.cuda.synchronize(vlm.plan.device)
    started = time.perf_counter()
    with torch.inference_mode():
        vlm.model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=vlm.processor.tokenizer.pad_token_id,
        )
    if vlm.plan.device.type == "cuda":
        torch.cuda.synchronize(vlm.plan.device)
    return time.perf_counter() - started


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1024**3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="hub id or local folder (default: a tiny random model)")
    parser.add_argument("--quantization", default="auto", choices=["auto", "4bit", "8bit", "none"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or str(build_tiny_vl3(Path(scratch) / "tiny-vl3"))
        ctx = Context(
            model_id=model,
            quantization=args.quantization,
            device=args.device,
            max_frames_per_call=max(args.frames, 1),
        )
        started = time.perf_counter()
        vlm = load_vlm(ctx)
        load_s = time.perf_counter() - started
        frames, info = synthetic_clip(args.frames)
        call = vlm.prepare("Describe what happens in this video in detail.", frames, info)
        prompt_tokens = int(call.inputs["input_ids"].shape[1])
        timed_generate(vlm, call.inputs, 2)  # warm-up (kernels, caches)
        prefill = [timed_generate(vlm, call.inputs, 1) for _ in range(args.repeats)]
        full = [timed_generate(vlm, call.inputs, args.new_tokens) for _ in range(args.repeats)]
        prefill_s, full_s = statistics.median(prefill), statistics.median(full)
        decode_s = max(full_s - prefill_s, 1e-9)

        print(f"model            {model if args.model else 'tiny random VideoLLaMA3'}")
        print(f"device           {vlm.plan.describe()}")
        print(f"load             {load_s:.2f} s")
        print(
            f"frames           {len(call.frame_times_s)} ({frames.frames.shape[2]}x"
            f"{frames.frames.shape[1]}), {call.visual_tokens} visual tokens"
        )
        print(f"prompt           {prompt_tokens} tokens")
        print(
            f"prefill          {prefill_s * 1000:.1f} ms  ({prompt_tokens / prefill_s:.0f} tok/s)"
        )
        print(
            f"decode           {(args.new_tokens - 1) / decode_s:.1f} tok/s "
            f"({args.new_tokens} new tokens in {full_s:.2f} s)"
        )
        print(
            f"peak memory      {peak_memory_gib(vlm.plan.device):.2f} GiB "
            f"({'CUDA allocated' if vlm.plan.device.type == 'cuda' else 'process RSS'})"
        )


if __name__ == "__main__":
    main()
