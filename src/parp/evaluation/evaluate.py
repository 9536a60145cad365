"""``parp evaluate`` and ``parp transcribe``: a fine-tuned model folder in, WER/CER (PER for phones) and transcripts out."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data.audio import load_audio
from ..data.batching import CTCCollator, LengthGroupedBatchSampler
from ..data.dataset import SpeechDataset, normalize_waveform
from ..data.manifest import read_manifest
from ..data.text import Vocabulary
from ..errors import AudioError, ConfigError, ModelError
from ..inference import fast_form
from ..models import audio_input, load_finetuned_model, resolve_model_source
from ..records import RunRecord
from .decode import BeamSearchDecoder, greedy_decode
from .inference import (DEVICE_HELP, PRECISION_HELP, batch_seconds, receptive_field_samples, resolve_device,
                        resolve_precision)
from .metrics import METRICS
from .predict import predict, score


@dataclass
class EvaluateArguments:
    model: str = field(default="runs/finetune/model", metadata={"help": "Fine-tuned model folder (with vocab.json)."})
    manifest: str | None = field(default=None, metadata={"help": "TSV/CSV manifest with audio paths and transcripts."})
    audio_column: str = field(default="path", metadata={"help": "Audio column of the manifest."})
    text_column: str = field(default="text", metadata={"help": "Transcript column of the manifest."})
    output_dir: str | None = field(default=None, metadata={"help": "Where metrics.json and the TSV go (default: the model folder's eval/)."})
    max_batch_seconds: float = field(default=120.0, metadata={"help": "Cap on audio seconds per batch."})
    max_utterances: int | None = field(default=None, metadata={"help": "Evaluate only the first N utterances."})
    beam_width: int = field(default=1, metadata={"help": "1 = greedy CTC; >1 = pyctcdecode beam search (parp[lm])."})
    kenlm_model: str | None = field(default=None, metadata={"help": "KenLM arpa/binary for beam search."})
    lm_alpha: float = field(default=0.5, metadata={"help": "LM weight for beam search."})
    lm_beta: float = field(default=1.0, metadata={"help": "Word insertion bonus for beam search."})
    device: str = field(default="auto", metadata={"help": DEVICE_HELP})
    precision: str = field(default="auto", metadata={"help": PRECISION_HELP})
    allow_unknown_chars: bool = field(default=True, metadata={
        "help": "Score references with characters the model never saw (they count as errors)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})


def load_model_and_vocabulary(model_dir: str, device: torch.device | str = "cpu",
                              dtype: torch.dtype | None = None) -> tuple[torch.nn.Module, Vocabulary]:
    """The model on ``device`` in its fast form for ``dtype`` (the autocast dtype; None: fp32), and its vocabulary."""
    source = resolve_model_source(model_dir)
    if not Path(source).is_dir():
        raise ModelError(f"--model {model_dir}: evaluate and transcribe need a local fine-tuned model folder")
    vocabulary = Vocabulary.load(source)
    model = load_finetuned_model(source)
    if model.config.vocab_size != len(vocabulary):
        raise ModelError(f"{model_dir}: the CTC head has {model.config.vocab_size} outputs but vocab.json has "
                         f"{len(vocabulary)} tokens; this folder was not saved by one fine-tuning run")
    return use_fast_form(model.to(device).eval(), source, dtype), vocabulary


def use_fast_form(model: torch.nn.Module, source, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A pruned model runs in the form that skips its zeros (call after moving it to its device)."""
    fast = fast_form(model, source, dtype)
    if fast.note:
        print(fast.note, file=sys.stderr)
    return fast.model


def make_decoder(vocabulary: Vocabulary, args: EvaluateArguments):
    if args.beam_width < 1:
        raise ConfigError(f"--beam-width must be at least 1, got {args.beam_width}")
    if args.beam_width == 1 and args.kenlm_model is None:
        return lambda logits, lengths: greedy_decode(logits, lengths, vocabulary)
    if vocabulary.unit == "phone":
        raise ConfigError("beam search and KenLM decode characters into words; a phone model decodes greedily "
                          "(--beam-width 1, no --kenlm-model)")
    return BeamSearchDecoder(vocabulary, max(args.beam_width, 2), args.kenlm_model, args.lm_alpha, args.lm_beta)


def run_evaluate(args: EvaluateArguments) -> dict:
    """Decode a manifest, write ``metrics.json`` + ``predictions.tsv`` + ``run.json``; return the metrics."""
    if args.manifest is None:
        raise ConfigError("--manifest is required: the TSV/CSV file with the audio to score")
    if args.max_utterances is not None and args.max_utterances < 1:
        raise ConfigError(f"--max-utterances must be at least 1 (leave it out to evaluate everything), got "
                          f"{args.max_utterances}")
    device = resolve_device(args.device)
    dtype = resolve_precision(args.precision, device)
    model, vocabulary = load_model_and_vocabulary(args.model, device, dtype)
    decode = make_decoder(vocabulary, args)
    out = Path(args.output_dir) if args.output_dir else Path(resolve_model_source(args.model)) / "eval"
    record = RunRecord(out / "run.json", "evaluate", args)
    utterances = read_manifest(args.manifest, args.audio_column, args.text_column)
    if args.max_utterances:
        utterances = utterances[: args.max_utterances]
    audio = audio_input(args.model)  # the sampling rate and normalisation the model was trained with
    dataset = SpeechDataset(utterances, vocabulary, audio.sampling_rate, allow_unknown=args.allow_unknown_chars,
                            min_seconds=receptive_field_samples(model) / audio.sampling_rate, source=args.manifest,
                            normalize=audio.do_normalize).validate(args.progress)
    if len(dataset) == 0:
        first = f"; first: {dataset.skipped[0][0]}: {dataset.skipped[0][1]}" if dataset.skipped else ""
        raise ConfigError(f"--manifest {args.manifest}: no usable utterance to score ({len(dataset.skipped)} "
                          f"skipped{first})")
    sampler = LengthGroupedBatchSampler(dataset.durations, batch_seconds(model, args.max_batch_seconds),
                                        shuffle=False)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=CTCCollator(vocabulary.pad_id))
    failed: list = []  # decode faults after validation: skipped and counted
    with record.phase("decode") as phase:
        batches = tqdm(loader, desc="evaluate", unit="batch", disable=not args.progress)
        rows = predict(model, batches, vocabulary, decoder=decode, device=device, dtype=dtype, failed=failed,
                       reference=lambda index: dataset.normalizer(dataset.utterances[index].text))
        phase.update(utterances=len(rows), device=str(device), precision=str(dtype or torch.float32),
                     audio_seconds=round(float(sum(dataset.durations)), 3))
    if not rows:
        raise ConfigError(f"--manifest {args.manifest}: every utterance failed to decode ({len(failed)}; first: "
                          f"{failed[0][0]}: {failed[0][1]})" if failed else f"--manifest {args.manifest}: nothing "
                          f"was decoded")
    unit = vocabulary.unit
    utterance_metric = METRICS[unit][0]  # cer per utterance for characters, per for phones
    rates = score(rows, unit, per_utterance=True)
    rows = [{"path": dataset.utterances[r["index"]].path, "reference": r["reference"], "hypothesis": r["hypothesis"],
             utterance_metric: r[utterance_metric]} for r in rows]
    rows.sort(key=lambda r: r["path"])
    with open(out / "predictions.tsv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "reference", "hypothesis", utterance_metric], delimiter="\t",
                                quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writeheader()
        writer.writerows(rows)
    skipped = dataset.skipped + failed
    metrics = {**{name: rates[name] for name in METRICS[unit]}, "token_unit": unit, "utterances": len(rows),
               "skipped": len(skipped), "decoder": "greedy" if args.beam_width == 1 else "beam"}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    record.update("data", {"manifest": args.manifest, "utterances": len(rows), "skipped": len(skipped),
                           "skipped_files": [f"{p}: {r}" for p, r in skipped][:50]})
    record.update("metrics", metrics)
    record.finish()
    return {**metrics, "output_dir": str(out)}


def transcribe(model_dir: str, files: Sequence[str], device: str = "auto", precision: str = "auto",
               max_batch_seconds: float = 120.0) -> list[tuple[str, str]]:
    """(file, transcript) for each readable file, in the order given; unreadable ones get an error line.

    Files are decoded in length-sorted batches of at most ``max_batch_seconds`` of padded audio.
    """
    if not files:
        raise ConfigError("give one or more audio files to transcribe")
    if not max_batch_seconds > 0:
        raise ConfigError(f"--max-batch-seconds must be a positive number, got {max_batch_seconds!r}")
    folders = [f for f in files if Path(f).is_dir()]
    if folders:
        raise ConfigError(f"{folders[0]}: a folder; give the audio files themselves (e.g. {folders[0]}/*.wav)")
    where = resolve_device(device)
    dtype = resolve_precision(precision, where)
    model, vocabulary = load_model_and_vocabulary(model_dir, where, dtype)
    shortest = receptive_field_samples(model)
    results: list[str | None] = [None] * len(files)
    audio, slots = [], []
    front = audio_input(model_dir)  # the sampling rate and normalisation the model was trained with
    for i, path in enumerate(files):
        try:
            samples = load_audio(path, front.sampling_rate)
        except AudioError as exc:
            results[i] = f"<error: {exc.reason}>"
            continue
        if len(samples) < shortest:  # skipped and counted, like a too-short clip in training
            results[i] = (f"<error: too short ({len(samples) / front.sampling_rate:.4f} s; the model needs at least "
                          f"{shortest / front.sampling_rate:.4f} s)>")
            continue
        audio.append(normalize_waveform(samples) if front.do_normalize else samples)
        slots.append(i)
    sampler = LengthGroupedBatchSampler([len(a) / front.sampling_rate for a in audio],
                                        batch_seconds(model, max_batch_seconds),
                                        shuffle=False)
    collate = CTCCollator(vocabulary.pad_id)
    batches = (collate([{"input_values": audio[j], "labels": [], "index": j} for j in batch_indices])
               for batch_indices in sampler)
    for row in predict(model, batches, vocabulary, device=where, dtype=dtype):
        results[slots[row["index"]]] = row["hypothesis"]
    return list(zip(files, results))
