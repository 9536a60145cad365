"""Where a run's labelled speech comes from and how it is cleaned: ``DataArguments`` (the data flags of
``parp finetune`` / ``prune`` / ``sweep``) and ``load_utterances``, which turns them into training and validation
utterances."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import AudioError, ConfigError
from .manifest import Utterance, load_hf_corpus, read_manifest
from .splits import hours_subset, split_train_valid
from .text import DEFAULT_DROP_CHARS


@dataclass
class DataArguments:
    """Where the labelled speech comes from and how it is cleaned (mirrors the CLI)."""

    train_manifest: str | None = field(default=None, metadata={"help": "TSV/CSV manifest (audio path, transcript)."})
    valid_manifest: str | None = field(default=None, metadata={
        "help": "Validation manifest; if absent a seeded split of the training manifest is held out."})
    hf_dataset: str | None = field(default=None, metadata={
        "help": "Hugging Face dataset id or save_to_disk folder instead of a manifest (needs parp[hf])."})
    hf_config: str | None = field(default=None, metadata={"help": "Dataset config, e.g. a language code."})
    hf_train_split: str = field(default="train", metadata={"help": "Dataset split used for training."})
    hf_valid_split: str | None = field(default=None, metadata={"help": "Dataset split used for validation."})
    audio_column: str | None = field(default=None, metadata={
        "help": "Audio column (default: 'path' in manifests, 'audio' in HF datasets)."})
    text_column: str | None = field(default=None, metadata={
        "help": "Transcript column (default: 'text' in manifests, 'sentence' in HF datasets)."})
    speaker_column: str | None = field(default="speaker", metadata={"help": "Optional speaker column."})
    valid_fraction: float = field(default=0.1, metadata={"help": "Held-out fraction when no validation set."})
    split_seed: int = field(default=0, metadata={"help": "Seed of the held-out split (0 = the documented split)."})
    max_train_utterances: int | None = field(default=None, metadata={"help": "Seeded subset of the training set."})
    max_valid_utterances: int | None = field(default=None, metadata={"help": "Seeded subset of the validation set."})
    train_hours: float | None = field(default=None, metadata={
        "help": "Train on this many hours of the training set (e.g. 0.167 = 10 min, 1): a deterministic, "
                "speaker-balanced subset, nested (10 min inside 1 h inside all), the same for every method and "
                "seed, taken after the validation split (default: all)."})
    min_seconds: float = field(default=0.1, metadata={"help": "Drop shorter clips."})
    max_seconds: float = field(default=20.0, metadata={"help": "Drop longer clips."})
    lowercase: bool = field(default=True, metadata={"help": "Lowercase transcripts (diacritics are kept)."})
    drop_chars: str = field(default=DEFAULT_DROP_CHARS, metadata={"help": "Characters removed from transcripts."})
    allow_unknown_chars: bool = field(default=False, metadata={
        "help": "Map validation characters missing from the training vocabulary to [UNK] instead of failing."})
    token_unit: str | None = field(default=None, metadata={
        "help": "CTC output units: char (default: letters of the transcript) | phone (space-separated phones, "
                "e.g. --text_column phones of parp synth --transcripts phones; scored as PER; --lowercase and "
                "--drop_chars do not apply) | ipa-phone (IPA written without spaces between phones, e.g. East "
                "Tusom, cut into phones by ipatok: pip install 'parp[ipa]'; scored as PER). See docs/data.md."})


def _subset(utterances: list[Utterance], limit: int | None, seed: int) -> list[Utterance]:
    if limit is None or limit >= len(utterances):
        return utterances
    keep = np.sort(np.random.default_rng(seed).permutation(len(utterances))[:limit])
    return [utterances[i] for i in keep]


def load_utterances(args: DataArguments) -> tuple[list[Utterance], list[Utterance], str]:
    """Training and validation utterances, plus a short description of where they came from."""
    if args.hf_dataset:
        audio, text = args.audio_column or "audio", args.text_column or "sentence"
        train_utts = load_hf_corpus(args.hf_dataset, args.hf_config, args.hf_train_split, audio, text)
        valid_utts = (load_hf_corpus(args.hf_dataset, args.hf_config, args.hf_valid_split, audio, text)
                      if args.hf_valid_split else None)
        source = f"{args.hf_dataset}:{args.hf_config or ''}:{args.hf_train_split}"
    elif args.train_manifest:
        audio, text = args.audio_column or "path", args.text_column or "text"
        speaker = args.speaker_column
        train_utts = read_manifest(args.train_manifest, audio, text, speaker)
        valid_utts = read_manifest(args.valid_manifest, audio, text, speaker) if args.valid_manifest else None
        source = str(args.train_manifest)
    else:
        raise ConfigError("no training data: give --train-manifest FILE.tsv or --hf-dataset NAME")
    if valid_utts is None:
        train_utts, valid_utts = split_train_valid(train_utts, args.valid_fraction, seed=args.split_seed)
    if args.train_hours is not None:
        usable = [u for u in train_utts if args.min_seconds <= _seconds(u) <= args.max_seconds]
        train_utts = hours_subset(usable, args.train_hours, _seconds, seed=args.split_seed)
    train_utts = _subset(train_utts, args.max_train_utterances, args.split_seed)
    valid_utts = _subset(valid_utts, args.max_valid_utterances, args.split_seed)
    return train_utts, valid_utts, source


def _seconds(utterance: Utterance) -> float:
    """An utterance's duration: the manifest's, else the audio's (0 for a file that cannot be read: the dataset
    skips and counts it later)."""
    if utterance.duration is not None:
        return float(utterance.duration)
    try:
        return utterance.audio_seconds()
    except AudioError:  # unreadable audio is the dataset's to report
        return 0.0
