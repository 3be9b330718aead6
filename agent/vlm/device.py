"""The one place that picks the device, dtype and quantization of the vision-language model."""

import functools
import logging
from dataclasses import dataclass
from typing import Literal

import torch

from agent.context import Context
from agent.errors import ConfigError

log = logging.getLogger(__name__)

Quant = Literal["4bit", "8bit", "none"]


@dataclass(frozen=True)
class DevicePlan:
    """Where the model lives, its compute dtype, and how its language model is quantized."""

    device: torch.device
    dtype: torch.dtype
    quantization: Quant

    @property
    def device_map(self) -> dict[str, str]:
        """A `from_pretrained` device map placing every module on `device` (no `.to()` later)."""
        return {"": str(self.device)}

    def describe(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        if self.quantization == "4bit":
            return f"{self.device} 4-bit nf4 + double quant ({dtype} compute)"
        if self.quantization == "8bit":
            return f"{self.device} 8-bit LLM.int8 ({dtype} for unquantized parts)"
        return f"{self.device} {dtype}, not quantized"


def pick_device(ctx: Context) -> DevicePlan:
    """Device from `ctx.device`, dtype from the device, quantization from `ctx.quantization`.

    CUDA computes in bfloat16 (float16 on GPUs without bf16 support); the CPU in float32, because
    CPU half-precision kernels are slow or missing. `auto` quantization is 4-bit on CUDA, none on
    the CPU. A 4/8-bit request is checked against the installed bitsandbytes right here, so the
    user gets a clear error before gigabytes are read.
    """
    device = resolve_device(ctx.device)
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.float32
    quantization: Quant
    if ctx.quantization == "auto":
        quantization = "4bit" if device.type == "cuda" else "none"
    else:
        quantization = ctx.quantization
    if quantization != "none":
        check_bitsandbytes(quantization, device)
    return DevicePlan(device=device, dtype=dtype, quantization=quantization)


def resolve_device(name: str) -> torch.device:
    """`auto` → the current CUDA device when there is one, else the CPU; others are validated."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"BEHAVIOR_AGENT_DEVICE={name!r} is not a torch device; use auto, cpu, cuda or cuda:N."
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"Device {name!r} was requested but this machine has no usable CUDA GPU "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). "
                "Set BEHAVIOR_AGENT_DEVICE=cpu, or install a CUDA build of torch."
            )
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"Device {name!r} does not exist: {torch.cuda.device_count()} GPU(s) are visible."
            )
        device = torch.device("cuda", index)
    return device


@functools.cache
def _bnb_probe(quantization: Quant, device_type: str, device_index: int | None) -> str | None:
    """None when a tiny bitsandbytes layer runs on the device; otherwise the reason it does not."""
    try:
        import bitsandbytes as bnb
    except Exception as error:  # ImportError, or a broken native library
        return f"bitsandbytes cannot be imported ({type(error).__name__}: {error})"
    device = torch.device(device_type, device_index) if device_index is not None else device_type
    dtype = torch.float32 if device_type == "cpu" else torch.float16
    try:
        if quantization == "4bit":
            layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=dtype, quant_type="nf4")
        else:
            layer = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False)
        layer = layer.to(device)  # a 64x64 probe layer, never the model
        with torch.no_grad():
            layer(torch.randn(2, 64, dtype=dtype, device=device))
    except Exception as error:
        return f"bitsandbytes {bnb.__version__} has no working {device_type} backend ({error})"
    return None


def check_bitsandbytes(quantization: Quant, device: torch.device) -> None:
    """Raise a ConfigError that says what to do when bitsandbytes cannot run on `device`."""
    reason = _bnb_probe(quantization, device.type, device.index)
    if reason is None:
        return
    raise ConfigError(
        f"{quantization} quantization was requested on {device}, but {reason}. "
        "Run on a CUDA GPU with `pip install 'bitsandbytes>=0.45'`, or set "
        "BEHAVIOR_AGENT_QUANTIZATION=none (needs about 4x the memory of 4-bit)."
    )


def free_memory_bytes(device: torch.device) -> int:
    """Memory the model can still use on `device` (free GPU memory, or available RAM)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)
