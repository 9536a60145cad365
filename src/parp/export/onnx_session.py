"""Run an exported ONNX CTC folder with onnxruntime: ``parp transcribe --backend onnx``, the export's self-check
and the inference bench all go through :class:`OnnxCTC`, so they decode exactly alike.

The folder holds ``model.onnx`` (input ``input_values``: float32 [batch, samples]; output ``logits``: [batch,
frames, vocabulary]), ``vocab.json`` and ``preprocessor_config.json`` (sampling rate, per-utterance
normalisation): everything a decoder needs, no torch. One utterance runs at a time, unpadded, so every
feature-encoder norm sees the clip alone (the logits equal the torch model's on the same clip).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.audio import load_audio
from ..data.dataset import normalize_waveform
from ..data.text import Vocabulary
from ..errors import AudioError, ConfigError, ModelError

ONNX_FILE = "model.onnx"
FEATURES_FILE = "preprocessor_config.json"


def import_onnxruntime():
    """onnxruntime, or one line saying how to install it (it is the optional extra ``parp[onnx]``)."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX export and inference need onnxruntime: pip install 'parp[onnx]'") from None
    return onnxruntime


def session_options(threads: int | None = None):
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


class OnnxCTC:
    """An exported folder, ready to decode: ``logits(samples)`` and ``transcribe(samples)`` for one utterance."""

    def __init__(self, folder, threads: int | None = None):
        folder = Path(folder)
        if not (folder / ONNX_FILE).is_file():
            raise ModelError(f"{folder}: no {ONNX_FILE} (make one with: parp export onnx MODEL_DIR --output-dir "
                             f"{folder})")
        ort = import_onnxruntime()
        try:
            self.session = ort.InferenceSession(str(folder / ONNX_FILE), session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{folder / ONNX_FILE}: onnxruntime {ort.__version__} cannot load it ({first})") from None
        self.vocabulary = Vocabulary.load(folder)
        features = folder / FEATURES_FILE
        settings = json.loads(features.read_text(encoding="utf-8")) if features.is_file() else {}
        self.sampling_rate = int(settings.get("sampling_rate", 16000))
        self.do_normalize = bool(settings.get("do_normalize", True))
        self.folder = folder

    def logits(self, samples: np.ndarray) -> np.ndarray:
        """[frames, vocabulary] float32 logits of one utterance (mono samples at ``sampling_rate``)."""
        values = normalize_waveform(samples) if self.do_normalize else samples.astype(np.float32)
        return self.session.run(None, {"input_values": values[None]})[0][0]

    def transcribe(self, samples: np.ndarray) -> str:
        return self.vocabulary.decode_ids(self.logits(samples).argmax(-1))

    def transcribe_files(self, files: Sequence[str]) -> list[tuple[str, str]]:
        """(file, transcript); an unreadable file gets ``<error: reason>`` and the others still run."""
        results = []
        for path in files:
            try:
                results.append((path, self.transcribe(load_audio(path, self.sampling_rate))))
            except AudioError as exc:
                results.append((path, f"<error: {exc.reason}>"))
        return results
