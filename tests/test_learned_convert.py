"""The TFJS → ONNX converter: tiny hand-built graphs against numpy, the real detector against
TensorFlow.js itself on real frames."""

import json

import cv2
import numpy as np
import pytest

from agent.perception.learned.manifest import load_manifest
from agent.perception.learned.tfjs_onnx import ConversionError, convert, read_weights
from tests.learned_support import (
    conv_attrs,
    frame_at,
    installed_models_dir,
    placeholder,
    require_tfjs,
    run_onnx,
    run_tfjs,
    tiny_graph,
    tiny_weights,
    write_tfjs_model,
)

OUTPUTS = ["tower_0/keypoints", "tower_0/wh"]


# --- numpy references (TensorFlow semantics, NHWC) ------------------------------------------


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, padding: str) -> np.ndarray:
    """TF Conv2D: x (1, H, W, Cin), w (kh, kw, Cin, Cout)."""
    kh, kw = w.shape[:2]
    if padding == "SAME":
        out_h, top, bottom = _same_pads(x.shape[1], kh, stride)
        out_w, left, right = _same_pads(x.shape[2], kw, stride)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    else:
        out_h, out_w = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    y = np.zeros((1, out_h, out_w, w.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[0, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            y[0, i, j] = np.einsum("hwc,hwco->o", patch, w)
    return y


def depthwise(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """TF DepthwiseConv2dNative, VALID, stride 1: w (kh, kw, C, mult); channel c*mult + m."""
    kh, kw, channels, mult = w.shape
    out_h, out_w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    y = np.zeros((1, out_h, out_w, channels * mult))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[0, i : i + kh, j : j + kw, :]
            y[0, i, j] = np.einsum("hwc,hwcm->cm", patch, w).reshape(-1)
    return y


def resize_bilinear(x: np.ndarray, out_h: int, out_w: int, mode: str) -> np.ndarray:
    """TF ResizeBilinear with align_corners / half_pixel_centers / neither ('asymmetric')."""

    def taps(size_in: int, size_out: int):
        out = np.arange(size_out, dtype=float)
        if mode == "align_corners":
            where = out * ((size_in - 1) / (size_out - 1))
        elif mode == "half_pixel":
            where = (out + 0.5) * (size_in / size_out) - 0.5
        else:
            where = out * (size_in / size_out)
        floor = np.floor(where)
        low = np.clip(floor, 0, size_in - 1).astype(int)
        high = np.clip(np.ceil(where), 0, size_in - 1).astype(int)
        return low, high, where - floor

    y0, y1, fy = taps(x.shape[1], out_h)
    x0, x1, fx = taps(x.shape[2], out_w)
    top = (
        x[:, y0][:, :, x0] * (1 - fx)[None, None, :, None]
        + x[:, y0][:, :, x1] * fx[None, None, :, None]
    )
    bottom = (
        x[:, y1][:, :, x0] * (1 - fx)[None, None, :, None]
        + x[:, y1][:, :, x1] * fx[None, None, :, None]
    )
    return top * (1 - fy)[None, :, None, None] + bottom * fy[None, :, None, None]


# --- the tiny graph ---------------------------------------------------------------------------


def tiny_reference(x: np.ndarray, w: dict, resize_mode: str) -> dict[str, np.ndarray]:
    conv = np.maximum(conv2d(x, w["w1"], 2, "SAME") + w["b1"], 0.0)
    dconv = depthwise(conv, w["dw"])
    mean = dconv.mean(axis=(1, 2), keepdims=True)
    resized = resize_bilinear(dconv, 6, 7, resize_mode)
    return {"conv": conv, "mean": mean, "out": resized * mean}


@pytest.mark.parametrize("resize_mode", ["half_pixel", "align_corners", "asymmetric"])
def test_tiny_graph_matches_numpy(tmp_path, resize_mode):
    weights = tiny_weights()
    model = convert(tiny_graph(tmp_path, weights, resize_mode), ["conv", "mean", "out"])
    x = np.random.default_rng(1).uniform(-1, 1, (1, 10, 10, 3)).astype(np.float32)
    conv, mean, out = run_onnx(model, x)
    want = tiny_reference(x.astype(float), weights, resize_mode)
    assert conv.shape == (1, 5, 5, 4) and mean.shape == (1, 1, 1, 8) and out.shape == (1, 6, 7, 8)
    assert (conv > 0).any() and (conv == 0).any()  # the ReLU did clip something
    np.testing.assert_allclose(conv, want["conv"], atol=1e-5)
    np.testing.assert_allclose(mean, want["mean"], atol=1e-5)
    np.testing.assert_allclose(out, want["out"], atol=1e-5)


def test_float16_and_uint8_weights_are_dequantized(tmp_path):
    weights = tiny_weights(seed=2)
    path = tiny_graph(tmp_path, weights, float16={"w1", "dw"}, uint8={"b1"})
    manifest = json.loads(path.read_text())["weightsManifest"]
    read = read_weights(tmp_path, manifest)
    half = weights["w1"].astype(np.float16).astype(np.float32)
    assert read["w1"].dtype == np.float32 and not np.array_equal(half, weights["w1"])
    np.testing.assert_array_equal(read["w1"], half)
    step = (weights["b1"].max() - weights["b1"].min()) / 255.0
    np.testing.assert_allclose(read["b1"], weights["b1"], atol=step / 2 + 1e-7)
    np.testing.assert_array_equal(read["axes"], [1, 2])
    model = convert(path, ["out"])
    x = np.random.default_rng(3).uniform(-1, 1, (1, 10, 10, 3)).astype(np.float32)
    (out,) = run_onnx(model, x)
    stored = {**weights, "w1": half, "dw": read["dw"], "b1": read["b1"]}
    np.testing.assert_allclose(out, tiny_reference(x, stored, "half_pixel")["out"], atol=1e-5)


def test_unsupported_op_names_it(tmp_path):
    nodes = [
        placeholder("input", [1, 4, 4, 1]),
        {"name": "pool", "op": "MaxPool", "input": ["input"]},
        {"name": "out", "op": "Relu", "input": ["pool"]},
    ]
    path = write_tfjs_model(tmp_path, nodes, {})
    with pytest.raises(ConversionError, match=r"pool: TFJS op 'MaxPool' is not supported"):
        convert(path, ["out"])
    # Cut before it and the rest converts.
    assert [n.op_type for n in convert(path, ["input"]).graph.node] == []


def test_unsupported_fused_activation_and_unknown_output(tmp_path):
    weights = tiny_weights()
    nodes = [
        placeholder("input", [1, 9, 9, 3]),
        {
            "name": "conv",
            "op": "_FusedConv2D",
            "input": ["input", "w1", "b1"],
            "attr": conv_attrs([1, 1, 1, 1], "SAME", ["BiasAdd", "Tanh"]),
        },
    ]
    path = write_tfjs_model(tmp_path, nodes, {"w1": weights["w1"], "b1": weights["b1"]})
    with pytest.raises(ConversionError, match="fused activation 'Tanh'"):
        convert(path, ["conv"])
    with pytest.raises(ConversionError, match="no node named 'nowhere'"):
        convert(path, ["nowhere"])


@pytest.mark.slow
@pytest.mark.parametrize("resize_mode", ["half_pixel", "align_corners", "asymmetric"])
def test_tiny_graph_matches_tensorflow_js(tmp_path, resize_mode):
    """TensorFlow.js itself agrees with the converted graph and with the numpy reference (so
    the reference's padding and resize conventions are TensorFlow's)."""
    require_tfjs()
    weights = tiny_weights(seed=5)
    path = tiny_graph(tmp_path / "model", weights, resize_mode, float16={"dw"})
    x = np.random.default_rng(6).uniform(-1, 1, (1, 10, 10, 3)).astype(np.float32)
    reference = run_tfjs(path, x, ["conv", "out"], tmp_path / "tfjs")
    conv, out = run_onnx(convert(path, ["conv", "out"]), x)
    np.testing.assert_allclose(conv, reference["conv"], atol=1e-5)
    np.testing.assert_allclose(out, reference["out"], atol=1e-5)
    half = {**weights, "dw": weights["dw"].astype(np.float16).astype(np.float32)}
    np.testing.assert_allclose(
        tiny_reference(x, half, resize_mode)["out"], reference["out"], atol=1e-5
    )


# --- the real detector, against TensorFlow.js --------------------------------------------------


def _detector_input(frame_rgb: np.ndarray) -> np.ndarray:
    """As objects.py feeds the detector: 512 x 512 RGB, float 0-255."""
    return cv2.resize(frame_rgb, (512, 512), interpolation=cv2.INTER_AREA)[None].astype(np.float32)


@pytest.mark.slow
def test_converted_detector_matches_tensorflow_js(shared_media, tmp_path):
    require_tfjs()
    spec = load_manifest().get("objects_centernet")
    folder = spec.folder(installed_models_dir())
    graph = folder / spec.convert.graph
    converted = convert(graph, spec.convert.outputs, spec.convert.input_shape)
    frames = {
        "arm_wrestling": frame_at(shared_media / "action_arm_wrestling_mmaction2_demo.mp4", 2.0),
        "pedestrians": frame_at(shared_media / "scene_pedestrians_walking_opencv_vtest.avi", 10.0),
    }
    for name, frame in frames.items():
        batch = _detector_input(frame)
        reference = run_tfjs(graph, batch, OUTPUTS, tmp_path / name)
        ours = dict(zip(OUTPUTS, run_onnx(converted, batch), strict=True))
        installed = dict(zip(OUTPUTS, run_onnx(str(spec.path(folder.parent)), batch), strict=True))
        keypoints, wh = reference["tower_0/keypoints"], reference["tower_0/wh"]
        assert keypoints.shape == (1, 128, 128, 80) and wh.shape == (1, 128, 128, 4)
        # Real frames with people: the comparison is of a working model, not of zeros.
        assert keypoints[..., 0].max() > 0.4 and wh.max() > 20.0, name
        for output, tolerance in (("tower_0/keypoints", 1e-4), ("tower_0/wh", 2e-2)):
            for label, got in (("converted", ours), ("installed", installed)):
                difference = float(np.abs(got[output] - reference[output]).max())
                assert difference < tolerance, (name, label, output, difference)
