"""Silero VAD, run with onnxruntime (its wheel ships the onnx model; no torch)."""

from __future__ import annotations

import numpy as np
import onnxruntime

from voice.engines.models import package_dir

WINDOW = 512  # samples at 16 kHz: 32 ms, the window the model was trained on
_CONTEXT = 64  # samples of the previous window the model expects in front of each one


class SileroModel:
    """The loaded model; shared by every call of a process (onnxruntime sessions are thread-safe)."""

    def __init__(self, path: str) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            path, options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def from_setting(cls) -> SileroModel:
        return cls(str(package_dir("silero_vad") / "data" / "silero_vad_16k_op15.onnx"))


class SileroVad:
    """Speech probability per 32 ms window. Per call: it keeps the model's recurrent state."""

    def __init__(self, model: SileroModel) -> None:
        self.model = model
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT), dtype=np.float32)
        self._sr = np.array(16000, dtype=np.int64)

    def probability(self, window: np.ndarray) -> float:
        """``window``: 512 int16 samples at 16 kHz."""
        audio = (window.astype(np.float32) / 32768.0).reshape(1, -1)
        x = np.concatenate([self._context, audio], axis=1)
        out, self._state = self.model.session.run(
            None, {"input": x, "state": self._state, "sr": self._sr}
        )
        self._context = x[:, -_CONTEXT:]
        return float(out[0][0])
