"""Loads learned models into their CPU runtimes, once per process, only when first used.

TFLite models run in Google's LiteRT interpreter (`ai-edge-litert`), ONNX models in
onnxruntime. Both imports happen here, inside the functions, so that commands which never
perceive a frame (library listing, `--help`, an already-indexed video) do not pay for them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from agent.errors import ModelError

log = logging.getLogger(__name__)
# Two cores on the reference laptop: one runtime thread each leaves mediapipe its own core.
_THREADS = max(1, min(2, (os.cpu_count() or 1) // 2))


class TfliteModel:
    """One TFLite graph with a single float input and a single output."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interpreter = Interpreter(model_path=str(path), num_threads=_THREADS)
        except (ValueError, RuntimeError) as error:
            raise ModelError(
                f"{path} is not a loadable TFLite model ({error}); reinstall it with "
                "`behavior-agent models install --force`"
            ) from None
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Outputs for a batch (the interpreter takes one item at a time)."""
        rows = []
        for item in batch:
            self._interpreter.set_tensor(self._input["index"], item[None].astype(np.float32))
            self._interpreter.invoke()
            rows.append(np.array(self._interpreter.get_tensor(self._output["index"])[0]))
        return np.stack(rows)


class OnnxModel:
    """One ONNX graph with a single input; returns all outputs."""

    def __init__(self, path: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _THREADS
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise ModelError(
                f"{path} is not a loadable ONNX model ({error}); reinstall it with "
                "`behavior-agent models install --force`"
            ) from None
        self._input = self._session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._session.run(None, {self._input: batch.astype(np.float32)})
