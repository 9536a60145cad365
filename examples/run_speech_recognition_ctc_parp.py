#!/usr/bin/env python
"""Fine-tune a CTC speech model with transformers' Trainer, the shape of transformers'
``examples/pytorch/speech-recognition/run_speech_recognition_ctc.py`` (shortened: a TSV manifest instead of
``datasets``), with PARP added in the lines marked ``# PARP``.

    python examples/run_speech_recognition_ctc_parp.py --model_name_or_path facebook/wav2vec2-xls-r-300m \\
        --train_manifest ../shared/data/mboshi/train.tsv --output_dir runs/xlsr-parp50 --max_steps 4000 \\
        --parp_sparsity 0.5 --parp_prune_every 50

The data path is the model's own: ``AutoFeatureExtractor`` from the model folder gives ``input_values`` (wav2vec2,
HuBERT, WavLM, ...) or ``input_features`` (w2v-BERT 2.0, Parakeet, ...), its sampling rate and its normalisation.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import soundfile
import soxr
import torch
from transformers import (AutoFeatureExtractor, AutoModelForCTC, HfArgumentParser, Trainer, TrainingArguments,
                          Wav2Vec2CTCTokenizer)

from parp.integrations.transformers import PruningCallback  # PARP


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Pretrained encoder: hub id or folder with a feature extractor."})


@dataclass
class DataTrainingArguments:
    train_manifest: str = field(metadata={"help": "TSV with a header: path (relative to the TSV), text."})
    max_train_samples: int | None = field(default=None)
    chars_to_ignore: str = field(default=",?.!-;:\"“%‘”�'")


@dataclass
class PruningArguments:  # PARP
    parp_method: str = field(default="parp", metadata={"help": "parp | mpi | random | fixed"})
    parp_sparsity: float = field(default=0.5)
    parp_prune_every: int = field(default=50)
    parp_scope: str = field(default="global", metadata={"help": "global | layer | ffn | N:M"})


def read_manifest(path: str, limit: int | None, ignore: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:limit]
    table = str.maketrans("", "", ignore)
    return [{"path": str(Path(path).parent / r["path"]), "text": r["text"].lower().translate(table)} for r in rows]


def build_tokenizer(rows: list[dict], folder: Path) -> Wav2Vec2CTCTokenizer:
    chars = sorted({c for r in rows for c in r["text"]} - {" "})
    vocab = {"[PAD]": 0, "[UNK]": 1, "|": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="[UNK]", pad_token="[PAD]",
                                word_delimiter_token="|")


class SpeechDataset(torch.utils.data.Dataset):
    def __init__(self, rows, feature_extractor, tokenizer):
        self.rows, self.feature_extractor, self.tokenizer = rows, feature_extractor, tokenizer

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        audio, rate = soundfile.read(self.rows[i]["path"], dtype="float32", always_2d=True)
        audio = soxr.resample(audio.mean(1), rate, self.feature_extractor.sampling_rate)
        features = self.feature_extractor(audio, sampling_rate=self.feature_extractor.sampling_rate)
        name = self.feature_extractor.model_input_names[0]  # input_values or input_features
        return {name: features[name][0], "labels": self.tokenizer(self.rows[i]["text"]).input_ids}


@dataclass
class DataCollatorCTCWithPadding:
    feature_extractor: object
    tokenizer: Wav2Vec2CTCTokenizer

    def __call__(self, items):
        name = self.feature_extractor.model_input_names[0]
        batch = self.feature_extractor.pad([{name: x[name]} for x in items], padding=True, return_tensors="pt",
                                           return_attention_mask=True)
        labels = self.tokenizer.pad({"input_ids": [x["labels"] for x in items]}, padding=True, return_tensors="pt")
        batch["labels"] = labels["input_ids"].masked_fill(labels["attention_mask"].ne(1), -100)
        return batch


def main(argv=None) -> Trainer:
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, PruningArguments, TrainingArguments))
    model_args, data_args, prune_args, training_args = parser.parse_args_into_dataclasses(argv)
    rows = read_manifest(data_args.train_manifest, data_args.max_train_samples, data_args.chars_to_ignore)
    tokenizer = build_tokenizer(rows, Path(training_args.output_dir))
    feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.model_name_or_path)
    model = AutoModelForCTC.from_pretrained(model_args.model_name_or_path, vocab_size=len(tokenizer),
                                           pad_token_id=tokenizer.pad_token_id, ctc_loss_reduction="mean",
                                           ctc_zero_infinity=True, ignore_mismatched_sizes=True)
    pruning = PruningCallback(prune_args.parp_method, sparsity=prune_args.parp_sparsity,  # PARP
                              prune_every=prune_args.parp_prune_every, scope=prune_args.parp_scope)
    trainer = Trainer(model=model, args=training_args, train_dataset=SpeechDataset(rows, feature_extractor, tokenizer),
                      data_collator=DataCollatorCTCWithPadding(feature_extractor, tokenizer),
                      processing_class=feature_extractor, callbacks=[pruning])  # PARP: callbacks=[pruning]
    trainer.train()
    trainer.save_model()
    tokenizer.save_pretrained(training_args.output_dir)
    return trainer


if __name__ == "__main__":
    main(sys.argv[1:])
