"""End-of-turn detection from the audio: Smart Turn v3 (pipecat's model), run with onnxruntime,
and the table from an agent's ``turn_detection`` to its detector.

Silence alone cannot tell "I'd like to book a table for... two" from a finished sentence; Smart
Turn listens to the intonation and rhythm of the last 8 seconds and says whether the turn sounds
complete. One engine, so one module; it becomes a package like stt/ and tts/ with its second.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from voice.engines.models import package_dir

SAMPLE_RATE = 16000
WINDOW_SECONDS = 8  # the model sees the last 8 s, zero-padded in front when shorter


class TurnDetector(Protocol):
    """Shared by the calls of a process; ``complete_probability`` may run in several threads."""

    def complete_probability(self, pcm16k: np.ndarray) -> float: ...


class TurnDetectorEngine(TurnDetector, Protocol):
    """A detector class as TURN_DETECTORS holds it."""

    @classmethod
    def from_setting(cls) -> TurnDetector:
        """The loaded model (the registry keeps one per process)."""
        ...


def _load_feature_extractor(path: Path) -> Callable[..., np.ndarray]:
    """pipecat's numpy copy of transformers' WhisperFeatureExtractor, the exact preprocessing the
    model was trained with. Loaded from its file: importing the ``pipecat`` package would pull in
    its dependencies (loguru, ...), which are not installed (the wheel comes in --no-deps)."""
    spec = importlib.util.spec_from_file_location("_smart_turn_whisper_features", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot load Smart Turn features from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute_whisper_log_mel_features


class SmartTurn:
    """Smart Turn v3. One per process: onnxruntime sessions are thread-safe."""

    def __init__(self, model_path: str, features_path: str, *, threads: int = 1) -> None:
        import onnxruntime  # here, not at the top: the system check imports the table at start

        self._features = _load_feature_extractor(Path(features_path))
        options = onnxruntime.SessionOptions()
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            model_path, options, providers=["CPUExecutionProvider"]
        )

    def complete_probability(self, pcm16k: np.ndarray) -> float:
        """Probability (0..1) that the speech in ``pcm16k`` (int16, 16 kHz, ending now) is a
        finished turn."""
        audio = pcm16k.astype(np.float32) / 32768.0
        size = SAMPLE_RATE * WINDOW_SECONDS
        audio = audio[-size:] if audio.size >= size else np.pad(audio, (size - audio.size, 0))
        features = self._features(audio, do_normalize=True)[np.newaxis]
        (probability,) = self.session.run(None, {"input_features": features})
        return float(np.asarray(probability).reshape(-1)[0])

    @staticmethod
    def files_dir() -> Path:
        """Smart Turn v3 ships inside the pipecat-ai wheel (installed --no-deps: only its files
        are used, pipecat itself is never imported)."""
        return package_dir("pipecat") / "audio" / "turn" / "smart_turn"

    @classmethod
    def from_setting(cls) -> SmartTurn:
        directory = cls.files_dir()
        return cls(
            str(directory / "data" / "smart-turn-v3.2-cpu.onnx"),
            str(directory / "_whisper_features.py"),
        )


# None: silence alone decides (turn_silence_ms), no model to load.
TURN_DETECTORS: dict[str, type[TurnDetectorEngine] | None] = {
    "silence": None,
    "smart_turn": SmartTurn,
}
