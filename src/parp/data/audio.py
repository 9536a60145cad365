"""Audio decoding: any soundfile-readable file (wav/flac/ogg) -> float32 mono at the model's rate.

Every failure becomes an :class:`~parp.errors.AudioError` naming the file and saying what is wrong, so a
bad clip in a 4,000-utterance manifest is one readable line instead of a libsndfile traceback.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from parp.errors import AudioError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioInfo:
    """Header facts about an audio file, read without decoding the samples."""

    duration: float
    sampling_rate: int
    channels: int
    frames: int


def _check_file(path: Path) -> None:
    """Fail early with a specific reason; libsndfile's own messages for these cases are cryptic."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read duration, sample rate and channel count from the header (cheap: used to validate corpora)."""
    path = Path(path)
    _check_file(path)
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(path, f"cannot read audio header ({exc})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(path, "zero-length audio (0 samples)")
    return AudioInfo(
        duration=info.frames / info.samplerate,
        sampling_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
    )


def check_finite(samples: np.ndarray, path) -> None:
    """NaN or inf samples make every model output NaN: such a file is rejected like an undecodable one."""
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(path, f"{bad} of {samples.size} samples are not finite (NaN or inf)")


def to_mono_resampled(samples: np.ndarray, source_rate: int, sampling_rate: int, source=None) -> np.ndarray:
    """Downmix (channel mean) and resample with soxr; shared by file and in-memory (HF) audio.

    Channels that cancel out (one the inverse of another) downmix to silence: that is warned about.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        loud = samples.shape[1] > 1 and float(np.abs(samples).max(initial=0.0)) > 1e-4
        samples = samples.mean(axis=1, dtype=np.float32)
        if loud and float(np.abs(samples).max(initial=0.0)) <= 1e-4:
            logger.warning("%s: its channels cancel out: the mono downmix is silence", source or "audio")
    elif samples.ndim != 1:
        raise ValueError(f"audio must be 1-D or (frames, channels), got shape {samples.shape}")
    if source_rate != sampling_rate and samples.size:
        samples = soxr.resample(samples, source_rate, sampling_rate, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def load_audio(path: str | os.PathLike, sampling_rate: int = 16000) -> np.ndarray:
    """Decode ``path`` to a float32 mono array at ``sampling_rate`` (downmixed by mean, resampled with soxr).

    Raises:
        AudioError: missing, empty (0-byte), undecodable, zero-length (0 samples) or non-finite (NaN/inf) file.
    """
    path = Path(path)
    _check_file(path)
    try:
        samples, source_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(path, f"cannot decode audio ({exc})") from None
    if samples.shape[0] == 0:
        raise AudioError(path, "zero-length audio (0 samples)")
    check_finite(samples, path)
    return to_mono_resampled(samples, int(source_rate), sampling_rate, source=path)
