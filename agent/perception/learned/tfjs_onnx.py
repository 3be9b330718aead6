"""Converts a TensorFlow.js graph model (model.json + weight shards) into an ONNX model.

Some learned models ship only as TFJS graph models inside npm packages. This converter covers
the operations of the convolutional detectors we use (conv, depthwise conv, bias/activation
fusions, squeeze-excitation means, bilinear upsampling, concatenation, element-wise maths),
cut at named output nodes so that post-processing runs in numpy. An unknown operation raises
`ConversionError` naming it rather than producing a wrong graph. TFJS tensors are NHWC; each
convolution-like node is wrapped in transposes to ONNX's NCHW, which onnxruntime's optimiser
folds away. The conversion runs once, at install time (see `install.py`), and is tested
against the original model run by TensorFlow.js itself.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17
_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]
_STORED_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANTIZED_DTYPES = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


class ConversionError(ValueError):
    """The TFJS graph uses something this converter does not translate."""


def read_weights(model_dir: Path, manifest: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """All weights of a TFJS model, dequantized to their original dtype, by name."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        blob = b"".join((model_dir / name).read_bytes() for name in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            stored = _QUANTIZED_DTYPES[quant["dtype"]] if quant else _STORED_DTYPES[spec["dtype"]]
            size = count * np.dtype(stored).itemsize
            raw = np.frombuffer(blob, dtype=stored, count=count, offset=offset).reshape(shape)
            offset += size
            if quant and quant["dtype"] != "float16":
                # Affine uint quantization: value = stored * scale + min.
                raw = raw.astype(np.float32) * quant["scale"] + quant["min"]
            weights[spec["name"]] = raw.astype(_STORED_DTYPES[spec["dtype"]])
    return weights


def _attr_list(node: dict, key: str) -> list:
    value = node.get("attr", {}).get(key, {}).get("list", {})
    return [int(i) for i in value.get("i", [])] or [
        base64.b64decode(s).decode() for s in value.get("s", [])
    ]


def _attr_str(node: dict, key: str, default: str = "") -> str:
    raw = node.get("attr", {}).get(key, {}).get("s")
    return base64.b64decode(raw).decode() if raw else default


def _attr_bool(node: dict, key: str) -> bool:
    return bool(node.get("attr", {}).get(key, {}).get("b", False))


def _source(ref: str) -> str:
    """'name', 'name:1' or '^name' (control input) → the producing node's name."""
    return ref.lstrip("^").split(":")[0]


@dataclass
class _Builder:
    """Accumulates ONNX nodes and initializers while walking the TFJS graph."""

    constants: dict[str, np.ndarray]
    nodes: list = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    counter: int = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}__{self.counter}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers[name] = np.asarray(value)
        return name

    def add(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        from onnx import helper

        output = output or self.fresh(op)
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def tensor(self, ref: str) -> str:
        """The ONNX name for a TFJS input reference; constants become initializers."""
        name = _source(ref)
        if name in self.constants and name not in self.initializers:
            self.const(name, self.constants[name])
        index = ref.split(":")[1] if ":" in ref else "0"
        return name if index == "0" else f"{name}:{index}"


def _conv(b: _Builder, node: dict, depthwise: bool) -> str:
    """Conv2D / DepthwiseConv2dNative (optionally fused with bias and an activation), NHWC."""
    x, w_name = b.tensor(node["input"][0]), _source(node["input"][1])
    if w_name not in b.constants:
        raise ConversionError(f"{node['name']}: convolution weights must be constant")
    if _attr_str(node, "data_format", "NHWC") != "NHWC":
        raise ConversionError(f"{node['name']}: only NHWC convolutions are supported")
    kernel = b.constants[w_name]
    height, width, channels_in, out_or_mult = kernel.shape
    if depthwise:
        weight = kernel.transpose(2, 3, 0, 1).reshape(channels_in * out_or_mult, 1, height, width)
        group = channels_in
    else:
        weight = kernel.transpose(3, 2, 0, 1)
        group = 1
    strides = _attr_list(node, "strides")[1:3] or [1, 1]
    dilations = _attr_list(node, "dilations")[1:3] or [1, 1]
    attrs: dict[str, Any] = {"strides": strides, "dilations": dilations, "group": group}
    padding = _attr_str(node, "padding", "VALID")
    if padding == "SAME":
        attrs["auto_pad"] = "SAME_UPPER"
    elif padding == "EXPLICIT":
        pads = _attr_list(node, "explicit_paddings")
        attrs["pads"] = [pads[2], pads[4], pads[3], pads[5]]
    elif padding != "VALID":
        raise ConversionError(f"{node['name']}: padding {padding!r} is not supported")
    inputs = [b.add("Transpose", [x], perm=_NHWC_TO_NCHW)]
    inputs.append(b.const(f"{node['name']}__weight", weight.astype(np.float32)))
    fused = _attr_list(node, "fused_ops") if node["op"].startswith(("_Fused", "Fused")) else []
    extra = [_source(ref) for ref in node["input"][2:] if not ref.startswith("^")]
    if fused and fused[0] == "BiasAdd":
        inputs.append(b.const(f"{node['name']}__bias", b.constants[extra[0]].astype(np.float32)))
        fused = fused[1:]
    elif fused and fused[0] != "BiasAdd":
        raise ConversionError(f"{node['name']}: fused op {fused[0]!r} is not supported")
    y = b.add("Conv", inputs, **attrs)
    for activation in fused:
        y = _activation(b, node, activation, y, extra[1:])
    return b.add("Transpose", [y], node["name"], perm=_NCHW_TO_NHWC)


def _activation(b: _Builder, node: dict, op: str, x: str, args: list[str]) -> str:
    if op == "Relu":
        return b.add("Relu", [x])
    if op == "Relu6":
        low = b.const(b.fresh("zero"), np.array(0.0, np.float32))
        high = b.const(b.fresh("six"), np.array(6.0, np.float32))
        return b.add("Clip", [x, low, high])
    if op == "Elu":
        return b.add("Elu", [x])
    if op == "Sigmoid":
        return b.add("Sigmoid", [x])
    if op == "LeakyRelu":
        alpha = node.get("attr", {}).get("leakyrelu_alpha", {}).get("f", 0.2)
        return b.add("LeakyRelu", [x], alpha=float(alpha))
    if op == "Prelu":
        slope = b.constants[args[0]].astype(np.float32).reshape(1, -1, 1, 1)
        return b.add("PRelu", [x, b.const(b.fresh("slope"), slope)])
    raise ConversionError(f"{node['name']}: fused activation {op!r} is not supported")


def _resize_bilinear(b: _Builder, node: dict) -> str:
    x = b.tensor(node["input"][0])
    size = _source(node["input"][1])
    if size not in b.constants:
        raise ConversionError(f"{node['name']}: ResizeBilinear needs a constant output size")
    if _attr_bool(node, "align_corners"):
        mode = "align_corners"
    elif _attr_bool(node, "half_pixel_centers"):
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    nchw = b.add("Transpose", [x], perm=_NHWC_TO_NCHW)
    # Output sizes [N, C, H, W]: batch and channels from the input, H and W from the graph.
    shape = b.add("Shape", [nchw])
    starts = b.const(b.fresh("start"), np.array([0], np.int64))
    ends = b.const(b.fresh("end"), np.array([2], np.int64))
    batch_channels = b.add("Slice", [shape, starts, ends])
    height_width = b.const(b.fresh("hw"), b.constants[size].astype(np.int64).reshape(2))
    sizes = b.add("Concat", [batch_channels, height_width], axis=0)
    y = b.add(
        "Resize",
        [nchw, "", "", sizes],
        mode="linear",
        coordinate_transformation_mode=mode,
    )
    return b.add("Transpose", [y], node["name"], perm=_NCHW_TO_NHWC)


_ELEMENTWISE = {
    "Add": "Add",
    "AddV2": "Add",
    "Sub": "Sub",
    "Mul": "Mul",
    "RealDiv": "Div",
    "Maximum": "Max",
    "Minimum": "Min",
}
_UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Identity": "Identity", "Tanh": "Tanh"}


def _translate(b: _Builder, node: dict) -> None:
    op, name = node["op"], node["name"]
    inputs = [ref for ref in node.get("input", []) if not ref.startswith("^")]
    if op in ("Conv2D", "_FusedConv2D"):
        _conv(b, node, depthwise=False)
    elif op in ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
        _conv(b, node, depthwise=True)
    elif op in _ELEMENTWISE:
        b.add(_ELEMENTWISE[op], [b.tensor(ref) for ref in inputs], name)
    elif op in _UNARY:
        b.add(_UNARY[op], [b.tensor(inputs[0])], name)
    elif op == "Relu6":
        _activation_named(b, node, inputs)
    elif op == "Mean":
        axes = b.constants[_source(inputs[1])].astype(np.int64).reshape(-1).tolist()
        keep = int(_attr_bool(node, "keep_dims"))
        b.add("ReduceMean", [b.tensor(inputs[0])], name, axes=axes, keepdims=keep)
    elif op == "ConcatV2":
        axis = int(b.constants[_source(inputs[-1])])
        b.add("Concat", [b.tensor(ref) for ref in inputs[:-1]], name, axis=axis)
    elif op == "ResizeBilinear":
        _resize_bilinear(b, node)
    else:
        raise ConversionError(
            f"{name}: TFJS op {op!r} is not supported by this converter; cut the graph before "
            "it (pass other output names) or add a translation in agent/perception/learned/"
            "tfjs_onnx.py"
        )


def _activation_named(b: _Builder, node: dict, inputs: list[str]) -> None:
    y = _activation(b, node, "Relu6", b.tensor(inputs[0]), [])
    b.add("Identity", [y], node["name"])


def _needed(graph: dict[str, dict], outputs: list[str]) -> list[str]:
    """Nodes the outputs depend on, in topological order (inputs before users)."""
    order: list[str] = []
    state: dict[str, int] = {}
    for root in outputs:
        stack = [(root, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name):
                continue
            if name not in graph:
                raise ConversionError(f"the graph has no node named {name!r}")
            state[name] = 1
            stack.append((name, True))
            for ref in graph[name].get("input", []):
                if not ref.startswith("^") and not state.get(_source(ref)):
                    stack.append((_source(ref), False))
    return order


def convert(
    model_json: Path,
    outputs: list[str],
    input_shape: list[int] | None = None,
    output_rank: int = 4,
):
    """The ONNX ModelProto of the TFJS graph at `model_json`, cut at `outputs` (node names).

    `input_shape` fixes the placeholder's shape (e.g. [1, 512, 512, 3]); by default it is taken
    from the graph, with unknown sizes left dynamic. Outputs are declared as float tensors of
    `output_rank` dimensions of any size.
    """
    from onnx import TensorProto, checker, helper, numpy_helper

    model_json = Path(model_json)
    spec = json.loads(model_json.read_text(encoding="utf-8"))
    graph = {node["name"]: node for node in spec["modelTopology"]["node"]}
    constants = read_weights(model_json.parent, spec["weightsManifest"])
    for node in graph.values():
        if node["op"] == "Const" and node["name"] not in constants:
            raise ConversionError(f"constant {node['name']!r} has no stored weight")
    builder = _Builder(constants)
    placeholders = []
    for name in _needed(graph, outputs):
        node = graph[name]
        if node["op"] == "Placeholder":
            placeholders.append(node)
        elif node["op"] != "Const":
            _translate(builder, node)
    if len(placeholders) != 1:
        raise ConversionError(f"expected one input placeholder, found {len(placeholders)}")
    placeholder = placeholders[0]
    dims = input_shape or [
        int(d.get("size", -1)) for d in placeholder["attr"]["shape"]["shape"]["dim"]
    ]
    inputs = [
        helper.make_tensor_value_info(
            placeholder["name"], TensorProto.FLOAT, [d if d > 0 else None for d in dims]
        )
    ]
    outputs_info = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * output_rank)
        for name in outputs
    ]
    initializers = [numpy_helper.from_array(v, name=k) for k, v in builder.initializers.items()]
    onnx_graph = helper.make_graph(
        builder.nodes, model_json.stem, inputs, outputs_info, initializer=initializers
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="behavior-agent tfjs_onnx",
    )
    model.ir_version = 8
    checker.check_model(model)
    return model
