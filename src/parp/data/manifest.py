"""Corpus descriptions: TSV/CSV manifests on disk, or Hugging Face ``datasets`` corpora held in memory.

Both produce :class:`Utterance` lists, so everything downstream (splits, vocabulary, SpeechDataset) is the
same whichever way the user brings data.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile

from parp.data.audio import audio_info, load_audio, to_mono_resampled
from parp.errors import AudioError, ManifestError, ParpError

logger = logging.getLogger(__name__)


@dataclass
class Utterance:
    """One labelled recording.

    ``path`` always identifies the utterance (for logs and per-utterance result tables). When ``audio`` is
    set (Hugging Face corpora) it holds the float32 mono samples at ``sampling_rate`` and ``path`` is not
    read; otherwise the audio is decoded from ``path`` on demand.
    """

    path: str
    text: str
    speaker: str | None = None
    duration: float | None = None
    audio: np.ndarray | None = None
    sampling_rate: int | None = None

    def audio_seconds(self, default_rate: int = 16000) -> float:
        """The audio's true length: in-memory samples, else the file's header (AudioError when unreadable)."""
        if self.audio is not None:
            return len(self.audio) / (self.sampling_rate or default_rate)
        return audio_info(self.path).duration


_DELIMITERS = {".tsv": "\t", ".csv": ","}


def read_manifest(
    path: str | os.PathLike,
    audio_column: str = "path",
    text_column: str | None = "text",
    speaker_column: str | None = "speaker",
    duration_column: str | None = "duration",
) -> list[Utterance]:
    """Read a .tsv or .csv manifest with a header row; relative audio paths resolve against its folder.

    The audio and text columns are required (``text_column=None`` reads unlabelled audio, text ""). The
    speaker and duration columns are optional: when absent
    (or set to None) those fields stay None. TSV is read without quote processing, so transcripts may
    contain ``"`` characters verbatim.

    Raises:
        ManifestError: missing file, unknown extension, no header, missing required column, a row with too
            few fields, an empty audio path or a non-numeric duration.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    delimiter = _DELIMITERS.get(path.suffix.lower())
    if delimiter is None:
        raise ManifestError(f"{path}: manifest must be .tsv or .csv, got {path.suffix or 'no extension'!r}")
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return _read_rows(path, handle, delimiter, quoting, audio_column, text_column, speaker_column,
                              duration_column)
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start}); save the manifest as UTF-8") from None


def _read_rows(path, handle, delimiter, quoting, audio_column, text_column, speaker_column, duration_column):
    base = path.parent
    reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
    header = next(reader, None)
    if not header:
        raise ManifestError(f"{path}: empty manifest (a header row is required)")
    header = [name.strip() for name in header]
    for required in (audio_column, text_column):
        if required is not None and required not in header:
            raise ManifestError(
                f"{path}: missing column {required!r} (columns present: {', '.join(header)})"
            )
    audio_index = header.index(audio_column)
    text_index = header.index(text_column) if text_column is not None else None
    speaker_index = header.index(speaker_column) if speaker_column in header else None
    duration_index = header.index(duration_column) if duration_column in header else None
    needed = max(i for i in (audio_index, text_index, speaker_index, duration_index) if i is not None)
    utterances = []
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= needed:
            raise ManifestError(f"{path}:{line}: expected {len(header)} fields, found {len(row)}")
        if len(row) > len(header):  # silently dropping the rest would cut a transcript short
            raise ManifestError(f"{path}:{line}: expected {len(header)} fields, found {len(row)} "
                                f"(a {'tab' if delimiter == chr(9) else 'comma'} inside a transcript?)")
        audio = row[audio_index].strip()
        if not audio:
            raise ManifestError(f"{path}:{line}: empty {audio_column!r}")
        duration = None
        if duration_index is not None and row[duration_index].strip():
            try:
                duration = float(row[duration_index])
            except ValueError:
                raise ManifestError(
                    f"{path}:{line}: {duration_column!r} is not a number: {row[duration_index]!r}"
                ) from None
        speaker = (row[speaker_index].strip() or None) if speaker_index is not None else None
        audio_path = Path(audio)
        if not audio_path.is_absolute():
            audio_path = base / audio_path
        text = row[text_index].strip() if text_index is not None else ""
        utterances.append(Utterance(str(audio_path), text, speaker, duration))
    if not utterances:
        raise ManifestError(f"{path}: manifest has a header but no rows")
    return utterances


def _decode_hf_audio(value, sampling_rate: int, where: str) -> np.ndarray:
    """Decode a ``datasets`` audio cell ourselves (bytes/path/array), avoiding datasets' torchcodec backend."""
    if isinstance(value, dict) and value.get("array") is not None:
        array = np.asarray(value["array"], dtype=np.float32)
        source_rate = value.get("sampling_rate")
        if source_rate is None:
            raise AudioError(where, "in-memory audio has no 'sampling_rate'")
        if array.size == 0:
            raise AudioError(where, "zero-length audio (0 samples)")
        return to_mono_resampled(array, int(source_rate), sampling_rate)
    if isinstance(value, dict) and value.get("bytes"):
        try:
            samples, source_rate = soundfile.read(io.BytesIO(value["bytes"]), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(where, f"cannot decode audio ({exc})") from None
        if samples.shape[0] == 0:
            raise AudioError(where, "zero-length audio (0 samples)")
        return to_mono_resampled(samples, int(source_rate), sampling_rate)
    audio_path = value.get("path") if isinstance(value, dict) else value
    if isinstance(audio_path, str) and audio_path:
        return load_audio(audio_path, sampling_rate)
    raise AudioError(where, "audio cell has neither samples, bytes nor a path")


def load_hf_corpus(
    name: str | os.PathLike,
    config: str | None = None,
    split: str = "train",
    audio_column: str = "audio",
    text_column: str = "sentence",
    cache_dir: str | None = None,
    speaker_column: str | None = None,
    sampling_rate: int = 16000,
) -> list[Utterance]:
    """Load a Hugging Face corpus (hub id or a ``save_to_disk`` folder) as in-memory Utterances.

    Audio is decoded here (with soundfile, not datasets' optional torchcodec backend), downmixed and
    resampled to ``sampling_rate`` once, so training never touches ``datasets`` again. This holds the whole
    split in RAM as float32, which suits low-resource corpora (a few hours); larger ones belong in a manifest.
    Undecodable rows are skipped with a warning, like :meth:`SpeechDataset.validate` does for files.

    Raises:
        ParpError: ``datasets`` is not installed (``pip install parp[hf]``).
        ManifestError: the corpus, split or a column is missing.
    """
    try:
        import datasets
    except ImportError:
        raise ParpError("loading Hugging Face corpora needs the 'datasets' package: pip install parp[hf]") from None

    label = f"{name}" + (f" ({config})" if config else "") + f" [{split}]"
    try:
        if Path(name).is_dir():
            corpus = datasets.load_from_disk(str(name))
        else:
            corpus = datasets.load_dataset(str(name), config, split=split, cache_dir=cache_dir)
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise ManifestError(f"{label}: cannot load dataset ({exc})") from None
    if isinstance(corpus, datasets.DatasetDict):
        if split not in corpus:
            raise ManifestError(f"{label}: no split {split!r} (splits present: {', '.join(corpus)})")
        corpus = corpus[split]
    columns = list(corpus.column_names)
    for required in (audio_column, text_column) + ((speaker_column,) if speaker_column else ()):
        if required not in columns:
            raise ManifestError(f"{label}: missing column {required!r} (columns present: {', '.join(columns)})")
    if isinstance(corpus.features[audio_column], datasets.Audio):
        corpus = corpus.cast_column(audio_column, datasets.Audio(decode=False))

    utterances = []
    skipped = 0
    for index, row in enumerate(corpus):
        cell = row[audio_column]
        cell_path = cell.get("path") if isinstance(cell, dict) else cell if isinstance(cell, str) else None
        where = f"{name}[{split}][{index}]" + (f" ({cell_path})" if cell_path else "")
        try:
            audio = _decode_hf_audio(cell, sampling_rate, where)
        except AudioError as exc:
            logger.warning("skipping %s", exc)
            skipped += 1
            continue
        speaker = row[speaker_column] if speaker_column else None
        utterances.append(
            Utterance(
                path=where,
                text=str(row[text_column] or "").strip(),
                speaker=None if speaker is None else str(speaker),
                duration=len(audio) / sampling_rate,
                audio=audio,
                sampling_rate=sampling_rate,
            )
        )
    if skipped:
        logger.warning("%s: skipped %d of %d rows with unusable audio", label, skipped, len(corpus))
    if not utterances:
        raise ManifestError(f"{label}: no usable rows")
    return utterances


def filter_by_duration(
    utterances: Iterable[Utterance], min_seconds: float | None = None, max_seconds: float | None = None
) -> list[Utterance]:
    """Keep utterances within [min_seconds, max_seconds]; those with unknown duration are kept.

    Unknown durations are left to :meth:`SpeechDataset.validate`, which reads the headers anyway.
    """
    kept = []
    for utterance in utterances:
        duration = utterance.duration
        if duration is not None:
            if min_seconds is not None and duration < min_seconds:
                continue
            if max_seconds is not None and duration > max_seconds:
                continue
        kept.append(utterance)
    return kept
