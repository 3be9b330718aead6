"""Shared helpers for the learned-model tests: installed models, frames, TensorFlow.js runs."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.context import Context
from agent.perception.learned.manifest import load_manifest
from agent.video import sample_frames

TFJS_RUNNER = Path(__file__).with_name("tfjs_reference.js")
# Where scripts/install.sh puts the pure-JS TensorFlow.js that checks the converter.
TFJS_REFERENCE = Path(
    os.environ.get(
        "BEHAVIOR_AGENT_TFJS_REFERENCE",
        Path(sys.prefix) / "share" / "behavior-agent" / "tfjs-reference" / "node_modules",
    )
)


def installed_models_dir() -> Path:
    """The default models folder, failing (not skipping) when a model of models.yaml is
    missing there: the README's install command installs them all."""
    models_dir = Context.from_env().models_dir
    missing = [m.id for m in load_manifest().models if not m.installed(models_dir)]
    if missing:
        pytest.fail(
            f"learned models not installed in {models_dir}: {', '.join(missing)}. "
            "Run `behavior-agent models install` (scripts/install.sh does)."
        )
    return models_dir


def frame_at(path: Path, time_s: float) -> np.ndarray:
    """The RGB frame on screen at `time_s` (as the sampler decodes it)."""
    return sample_frames(path, time_s, time_s + 0.01, num_frames=1, ctx=Context()).frames[0]


def require_tfjs() -> None:
    """Skip loudly, saying how to fix it, where node or the TensorFlow.js folder is missing."""
    if shutil.which("node") is None:
        pytest.skip("TFJS REFERENCE UNAVAILABLE: `node` is not on PATH; install Node.js >= 18")
    if not (TFJS_REFERENCE / "@tensorflow" / "tfjs-converter").is_dir():
        pytest.skip(
            f"TFJS REFERENCE UNAVAILABLE: no @tensorflow/tfjs-converter under {TFJS_REFERENCE}; "
            "run scripts/install.sh with npm on PATH (or `npm install --prefix <dir> "
            "@tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0 "
            "@tensorflow/tfjs-converter@4.22.0` and set BEHAVIOR_AGENT_TFJS_REFERENCE="
            "<dir>/node_modules)"
        )


def run_tfjs(
    model_json: Path, batch: np.ndarray, outputs: list[str], work: Path
) -> dict[str, np.ndarray]:
    """Outputs of the TFJS graph model run by TensorFlow.js itself on one float32 batch."""
    work.mkdir(parents=True, exist_ok=True)
    batch.astype("<f4").tofile(work / "input.bin")
    shape = ",".join(str(d) for d in batch.shape)
    command = [
        "node", str(TFJS_RUNNER), str(model_json), str(work / "input.bin"), shape,
        ",".join(outputs), str(work),
    ]  # fmt: skip
    env = {**os.environ, "NODE_PATH": str(TFJS_REFERENCE)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        o["name"]: np.fromfile(o["file"], dtype="<f4").reshape(o["shape"])
        for o in report["outputs"]
    }


# --- tiny hand-built TFJS graph models ------------------------------------------------------


def _s(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def conv_attrs(strides: list[int], padding: str, fused: list[str] | None = None) -> dict:
    """TFJS attributes of a (fused) NHWC convolution node."""
    attrs = {
        "strides": {"list": {"i": [str(s) for s in strides]}},
        "padding": {"s": _s(padding)},
        "data_format": {"s": _s("NHWC")},
        "dilations": {"list": {"i": ["1", "1", "1", "1"]}},
    }
    if fused:
        attrs["fused_ops"] = {"list": {"s": [_s(op) for op in fused]}}
        attrs["num_args"] = {"i": "1"}
    return attrs


def bool_attr(value: bool) -> dict:
    return {"b": value}


_TF_TYPES = {"f": "DT_FLOAT", "i": "DT_INT32"}


def write_tfjs_model(
    folder: Path,
    nodes: list[dict],
    weights: dict[str, np.ndarray],
    float16: set[str] = frozenset(),
    uint8: set[str] = frozenset(),
) -> Path:
    """model.json + one weight shard in `folder`, laid out as the TFJS converter writes them.

    Weights named in `float16` are stored as float16, those in `uint8` affine-quantized
    (value = stored * scale + min), each with the `quantization` entry TFJS reads.
    """
    folder.mkdir(parents=True, exist_ok=True)
    blob, specs = bytearray(), []
    for name, value in weights.items():
        dtype = "int32" if value.dtype.kind == "i" else "float32"
        spec = {"name": name, "shape": list(value.shape), "dtype": dtype}
        if name in float16:
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blob += value.astype("<f2").tobytes()
        elif name in uint8:
            low, high = float(value.min()), float(value.max())
            scale = (high - low) / 255.0
            stored = np.round((value - low) / scale).astype(np.uint8)
            spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": low}
            blob += stored.tobytes()
        else:
            blob += value.astype("<i4" if dtype == "int32" else "<f4").tobytes()
        specs.append(spec)
    (folder / "group1-shard1of1.bin").write_bytes(bytes(blob))
    const_nodes = [
        {"name": name, "op": "Const", "attr": {"dtype": {"type": _TF_TYPES[value.dtype.kind]}}}
        for name, value in weights.items()
    ]
    model = {
        "format": "graph-model",
        "modelTopology": {"node": const_nodes + nodes, "library": {}, "versions": {}},
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": specs}],
    }
    path = folder / "model.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    return path


def placeholder(name: str, shape: list[int]) -> dict:
    dims = [{"size": str(d)} for d in shape]
    attrs = {"shape": {"shape": {"dim": dims}}, "dtype": {"type": "DT_FLOAT"}}
    return {"name": name, "op": "Placeholder", "attr": attrs}


def tiny_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(0, 0.5, (3, 3, 3, 4)).astype(np.float32),
        "b1": rng.normal(0, 0.5, (4,)).astype(np.float32),
        "dw": rng.normal(0, 0.5, (3, 3, 4, 2)).astype(np.float32),
        "axes": np.array([1, 2], np.int32),
        "size": np.array([6, 7], np.int32),
    }


def tiny_graph(folder: Path, weights: dict, resize_mode: str = "half_pixel", **quant) -> Path:
    """input (1, 10, 10, 3) → fused conv (BiasAdd + Relu, SAME padding one pixel more at the
    bottom/right, stride 2) → depthwise conv (multiplier 2, VALID) → [Mean over H, W kept;
    ResizeBilinear to 6 x 7] → Mul."""
    resize = {
        "align_corners": bool_attr(resize_mode == "align_corners"),
        "half_pixel_centers": bool_attr(resize_mode == "half_pixel"),
    }
    keep = bool_attr(True)
    nodes = [
        placeholder("input", [1, 10, 10, 3]),
        {
            "name": "conv",
            "op": "_FusedConv2D",
            "input": ["input", "w1", "b1"],
            "attr": conv_attrs([1, 2, 2, 1], "SAME", ["BiasAdd", "Relu"]),
        },
        {
            "name": "dconv",
            "op": "DepthwiseConv2dNative",
            "input": ["conv", "dw"],
            "attr": conv_attrs([1, 1, 1, 1], "VALID"),
        },
        {"name": "mean", "op": "Mean", "input": ["dconv", "axes"], "attr": {"keep_dims": keep}},
        {"name": "resize", "op": "ResizeBilinear", "input": ["dconv", "size"], "attr": resize},
        {"name": "out", "op": "Mul", "input": ["resize", "mean"]},
    ]  # fmt: skip
    return write_tfjs_model(folder, nodes, weights, **quant)


def run_onnx(model, batch: np.ndarray) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        model if isinstance(model, str) else model.SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    return session.run(None, {session.get_inputs()[0].name: batch.astype(np.float32)})
