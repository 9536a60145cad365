"""SpeechDataset: utterances -> normalised model inputs and CTC labels, with up-front validation.

Decoding Ogg every epoch on two CPU cores costs more than the forward pass of a small model, so decoded
audio is cached in memory as int16 (2 bytes/sample: 4 h at 16 kHz is about 460 MB). With DataLoader
workers each worker holds its own cache; with ``num_workers=0`` there is one.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from parp.data.audio import check_finite, load_audio, to_mono_resampled
from parp.data.manifest import Utterance
from parp.data.text import TextNormalizer, Vocabulary
from parp.errors import AudioError

logger = logging.getLogger(__name__)

#: (kernel, stride) of the convolutional feature encoder shared by wav2vec2 / HuBERT / WavLM /
#: data2vec-audio: one frame per 20 ms. Used to reject transcripts CTC cannot align to their audio.
FEATURE_ENCODER_CONV = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))


def encoder_frames(n_samples: int) -> int:
    """Number of encoder output frames for ``n_samples`` input samples."""
    for kernel, stride in FEATURE_ENCODER_CONV:
        n_samples = (n_samples - kernel) // stride + 1
        if n_samples <= 0:
            return 0
    return n_samples


def ctc_min_frames(labels: Sequence[int]) -> int:
    """Frames CTC needs for ``labels``: one per label plus a blank between each repeated pair."""
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return len(labels) + repeats


def normalize_waveform(samples: np.ndarray) -> np.ndarray:
    """Zero-mean unit-variance per utterance, as Wav2Vec2FeatureExtractor(do_normalize=True) does."""
    samples = samples.astype(np.float32, copy=False)
    return ((samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)).astype(np.float32)


class SpeechDataset:
    """Map-style dataset of ``{"input_values", "labels", "index"}`` items for CTC fine-tuning.

    ``input_values`` is float32, already zero-mean/unit-variance normalised per utterance (our processors use
    ``do_normalize=True``); ``labels`` are vocabulary ids; ``index`` is the position in this dataset, so
    ``dataset.utterances[index]`` gives the utterance back (for per-utterance result tables).

    Call :meth:`validate` before training: it drops unreadable, empty, zero-length, out-of-range and
    un-alignable items. A file that still fails to decode in ``__getitem__`` (truncated past its header,
    non-finite samples, changed on disk since) yields ``{"index", "path", "failed": reason}`` instead of
    samples: the collator drops it from the batch and whoever consumes the batch counts it, so one bad file
    never stops a run (nor every resume of it at the same step).

    Raises:
        TextError: at construction, if transcripts contain characters the vocabulary lacks (listing them),
            unless ``allow_unknown`` maps them to ``[UNK]``.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        vocabulary: Vocabulary,
        sampling_rate: int = 16000,
        normalizer: TextNormalizer | None = None,
        min_seconds: float = 0.1,
        max_seconds: float | None = None,
        allow_unknown: bool = False,
        source: str = "transcripts",
        cache_audio: bool = True,
        normalize: bool = True,
    ):
        self.vocabulary = vocabulary
        self.normalize = normalize  # the model's feature extractor's do_normalize
        self.sampling_rate = sampling_rate
        self.normalizer = normalizer or vocabulary.normalizer
        self.min_seconds = min_seconds
        self.max_seconds = max_seconds
        self.cache_audio = cache_audio
        self.source = source
        self.skipped: list[tuple[str, str]] = []
        utterances = list(utterances)
        texts = [self.normalizer(u.text) for u in utterances]
        vocabulary.check(texts, source=source, allow_unknown=allow_unknown)
        self.utterances = utterances
        self.labels = [vocabulary.encode(text, allow_unknown=True) for text in texts]
        self._durations: list[float | None] = [u.duration for u in utterances]
        self._cache: dict[int, np.ndarray] = {}
        self.failed: dict[int, str] = {}  # items that failed to decode after validation (this process only)

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def durations(self) -> list[float]:
        """Seconds per item (from validation, the manifest, in-memory audio or the file header)."""
        for i, duration in enumerate(self._durations):
            if duration is None:
                self._durations[i] = self.utterances[i].audio_seconds(self.sampling_rate)
        return list(self._durations)

    def _check(self, i: int) -> tuple[str | None, float | None]:
        """Reason to drop item ``i`` (None if usable) and its true duration."""
        utterance = self.utterances[i]
        if utterance.audio is not None and len(utterance.audio) == 0:
            return "zero-length audio (0 samples)", None
        try:
            duration = utterance.audio_seconds(self.sampling_rate)
        except AudioError as exc:
            return exc.reason, None
        if not self.labels[i]:
            return "empty transcript after normalisation", duration
        if duration < self.min_seconds:
            return f"too short ({duration:.3f} s < {self.min_seconds} s)", duration
        if self.max_seconds is not None and duration > self.max_seconds:
            return f"too long ({duration:.2f} s > {self.max_seconds} s)", duration
        frames = encoder_frames(int(round(duration * self.sampling_rate)))
        needed = ctc_min_frames(self.labels[i])
        if needed > frames:
            return f"transcript too long for the audio ({needed} CTC frames needed, {frames} available)", duration
        return None, duration

    def validate(self, progress: bool = True) -> "SpeechDataset":
        """Read every header, drop unusable items (recorded in ``self.skipped`` as (path, reason)); returns self.

        Logs one warning per dropped file and a summary line, so a bad corpus is visible but not fatal.
        """
        keep = []
        for i in tqdm(range(len(self)), desc=f"checking {self.source}", disable=not progress, leave=False):
            reason, duration = self._check(i)
            if reason is None:
                keep.append(i)
                self._durations[i] = duration
            else:
                path = self.utterances[i].path
                self.skipped.append((path, reason))
                logger.warning("skipping %s: %s", path, reason)
        if len(keep) < len(self):
            logger.warning("%s: dropped %d of %d utterances (see warnings above)",
                           self.source, len(self) - len(keep), len(self))
            self.utterances = [self.utterances[i] for i in keep]
            self.labels = [self.labels[i] for i in keep]
            self._durations = [self._durations[i] for i in keep]
            self._cache = {new: self._cache[old] for new, old in enumerate(keep) if old in self._cache}
        return self

    def audio(self, i: int) -> np.ndarray:
        """Float32 mono samples of item ``i`` at ``sampling_rate``, before normalisation (cached as int16)."""
        cached = self._cache.get(i)
        if cached is not None:
            return cached.astype(np.float32) / 32767.0
        utterance = self.utterances[i]
        if utterance.audio is not None:
            samples = np.asarray(utterance.audio, dtype=np.float32)
            check_finite(samples, utterance.path or f"item {i}")
            if utterance.sampling_rate not in (None, self.sampling_rate):
                return to_mono_resampled(samples, utterance.sampling_rate, self.sampling_rate, utterance.path)
            return samples
        samples = load_audio(utterance.path, self.sampling_rate)
        if not self.cache_audio:
            return samples
        # Return the quantised samples on the first read too, so every epoch sees identical input.
        self._cache[i] = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
        return self._cache[i].astype(np.float32) / 32767.0

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} utterances")
        if i not in self.failed:
            try:
                samples = self.audio(i)
            except AudioError as exc:
                self.failed[i] = exc.reason
                logger.warning("skipping %s: %s", self.utterances[i].path, exc.reason)
        if i in self.failed:
            return {"index": i, "path": str(self.utterances[i].path), "failed": self.failed[i]}
        values = normalize_waveform(samples) if self.normalize else samples.astype(np.float32)
        return {"input_values": values, "labels": list(self.labels[i]), "index": i}
