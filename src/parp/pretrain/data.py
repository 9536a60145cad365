"""Unlabelled audio for self-supervised pretraining: manifests and/or folders, decoded once, cached as int16.

Pretraining reads every clip hundreds of times, so decoding Ogg/FLAC on each access would dominate a CPU run;
4.5 h of 16 kHz audio is ~520 MB as int16, which fits in memory. Long clips are cropped (randomly for
training) so one utterance cannot blow up a length-capped batch.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..data.audio import load_audio
from ..data.manifest import read_manifest
from ..errors import AudioError, ManifestError

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3")
MANIFEST_SUFFIXES = (".tsv", ".csv")


def manifest_paths(path: str | os.PathLike, audio_column: str = "path") -> list[str]:
    """Audio paths of a TSV/CSV manifest (relative ones resolved); unlabelled corpora need no text column."""
    return [u.path for u in read_manifest(path, audio_column=audio_column, text_column=None)]


def expand_sources(sources: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Turn manifests, folders (searched recursively for audio) and single audio files into one path list."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    paths: list[str] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            found = sorted(str(p) for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise ManifestError(f"{source}: folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            paths.extend(found)
        elif source.suffix.lower() in MANIFEST_SUFFIXES:
            paths.extend(manifest_paths(source))
        elif source.suffix.lower() in AUDIO_SUFFIXES:
            paths.append(str(source))
        else:
            raise ManifestError(f"{source}: not a manifest (.tsv/.csv), an audio folder or an audio file")
    return paths


class UnlabelledAudioDataset:
    """Audio clips for SSL pretraining; items are ``{"input_values": float32 array, "index": i}``.

    Args:
        sources: manifests (column ``path``), folders of audio, audio files, or a list of paths (see
            :func:`expand_sources`). Pass ``paths=`` instead to use an already-expanded list.
        sampling_rate: rate of the model (16 kHz for wav2vec2).
        max_seconds: longer clips are cropped to this length on every access (random crop when
            ``random_crop``, else the start), so ``durations`` never exceed it.
        min_seconds: shorter clips are dropped; masked prediction needs several 20 ms frames per clip.
        random_crop: a fresh random window each access (training); off gives a fixed window (validation).
        seed: seeds the crop positions.
        num_threads: decoding threads (libsndfile and soxr release the GIL).

    Unreadable clips are skipped with a one-line warning each and counted in ``skipped``.
    """

    def __init__(
        self,
        sources=(),
        sampling_rate: int = 16000,
        max_seconds: float = 15.0,
        min_seconds: float = 0.5,
        random_crop: bool = True,
        seed: int = 0,
        num_threads: int = 2,
        paths: Sequence[str] | None = None,
    ):
        self.sampling_rate = sampling_rate
        self.max_samples = int(round(max_seconds * sampling_rate))
        self.min_samples = int(round(min_seconds * sampling_rate))
        self.random_crop = random_crop
        self._rng = np.random.default_rng(seed)
        all_paths = list(paths) if paths is not None else expand_sources(sources)
        self.paths: list[str] = []
        self._audio: list[np.ndarray] = []
        self.skipped = 0
        self.too_short = 0
        with ThreadPoolExecutor(max(1, num_threads)) as pool:
            for path, result in zip(all_paths, pool.map(self._decode, all_paths)):
                if isinstance(result, AudioError):
                    logger.warning("skipping unreadable audio %s", result)
                    self.skipped += 1
                elif result.size < self.min_samples:
                    self.too_short += 1
                else:
                    self.paths.append(path)
                    self._audio.append(result)
        self.durations = [min(a.size, self.max_samples) / sampling_rate for a in self._audio]
        if self.skipped:
            logger.warning("%d of %d audio files were unreadable and skipped", self.skipped, len(all_paths))

    def _decode(self, path: str):
        try:
            audio = load_audio(path, self.sampling_rate)
        except AudioError as exc:
            return exc
        # int16 halves the cache; peak-normalise first only when the clip would clip.
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak > 1.0:
            audio = audio / peak
        return np.round(audio * 32767.0).astype(np.int16)

    @property
    def total_seconds(self) -> float:
        """Audio held in the cache (before cropping)."""
        return sum(a.size for a in self._audio) / self.sampling_rate

    def __len__(self) -> int:
        return len(self._audio)

    def __getitem__(self, index: int) -> dict:
        audio = self._audio[index]
        if audio.size > self.max_samples:
            start = int(self._rng.integers(0, audio.size - self.max_samples + 1)) if self.random_crop else 0
            audio = audio[start : start + self.max_samples]
        return {"input_values": audio.astype(np.float32) / 32767.0, "index": index}

    def subset(self, indices: Sequence[int], random_crop: bool | None = None) -> "UnlabelledAudioDataset":
        """A view on some items sharing the cache (used to hold out validation audio without re-decoding)."""
        view = object.__new__(UnlabelledAudioDataset)
        view.__dict__.update(self.__dict__)
        view.paths = [self.paths[i] for i in indices]
        view._audio = [self._audio[i] for i in indices]
        view.durations = [self.durations[i] for i in indices]
        view.random_crop = self.random_crop if random_crop is None else random_crop
        view._rng = np.random.default_rng(self._rng.integers(2**31))
        return view

    def split(self, valid_fraction: float, max_valid: int = 200, seed: int = 0):
        """Hold out a random ``valid_fraction`` (at most ``max_valid`` clips, at least one) as a fixed-crop set."""
        order = np.random.default_rng(seed).permutation(len(self))
        n_valid = min(max_valid, max(1, int(round(valid_fraction * len(self)))))
        if len(self) < 2:
            raise ManifestError("need at least 2 readable clips to hold out validation audio")
        valid, train = sorted(order[:n_valid].tolist()), sorted(order[n_valid:].tolist())
        return self.subset(train), self.subset(valid, random_crop=False)
