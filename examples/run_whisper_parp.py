#!/usr/bin/env python
"""Fine-tune Whisper with ``Seq2SeqTrainer`` (the shape of the Hugging Face Whisper fine-tuning notebook, with a TSV
manifest instead of ``datasets``), with PARP added in the lines marked ``# PARP``: the encoder's, the decoder's or
both stacks' attention projections and feed-forward linears (``--parp_targets encoder | decoder | layers``).

    python examples/run_whisper_parp.py --model_name_or_path openai/whisper-small \\
        --train_manifest ../shared/data/mboshi/train.tsv --output_dir runs/whisper-parp50 --max_steps 4000 \\
        --parp_sparsity 0.5 --parp_targets encoder
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import soundfile
import soxr
import torch
from transformers import (AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoTokenizer, HfArgumentParser,
                          Seq2SeqTrainer, Seq2SeqTrainingArguments)

from parp.integrations.transformers import PruningCallback  # PARP


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Whisper checkpoint: hub id or folder (tokenizer included)."})


@dataclass
class DataTrainingArguments:
    train_manifest: str = field(metadata={"help": "TSV with a header: path (relative to the TSV), text."})
    max_train_samples: int | None = field(default=None)


@dataclass
class PruningArguments:  # PARP
    parp_method: str = field(default="parp", metadata={"help": "parp | mpi | random | fixed"})
    parp_sparsity: float = field(default=0.5)
    parp_prune_every: int = field(default=50)
    parp_targets: str = field(default="encoder", metadata={"help": "encoder | decoder | layers (both)"})


class SpeechDataset(torch.utils.data.Dataset):
    def __init__(self, manifest, limit, feature_extractor, tokenizer):
        with open(manifest, newline="", encoding="utf-8") as f:
            self.rows = list(csv.DictReader(f, delimiter="\t"))[:limit]
        self.root, self.feature_extractor, self.tokenizer = Path(manifest).parent, feature_extractor, tokenizer

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        audio, rate = soundfile.read(self.root / self.rows[i]["path"], dtype="float32", always_2d=True)
        rate_wanted = self.feature_extractor.sampling_rate
        features = self.feature_extractor(soxr.resample(audio.mean(1), rate, rate_wanted), sampling_rate=rate_wanted)
        return {"input_features": features["input_features"][0],
                "labels": self.tokenizer(self.rows[i]["text"]).input_ids}


@dataclass
class DataCollatorSpeechSeq2SeqWithPadding:
    feature_extractor: object
    tokenizer: object
    decoder_start_token_id: int

    def __call__(self, items):
        batch = self.feature_extractor.pad([{"input_features": x["input_features"]} for x in items],
                                           return_tensors="pt")
        labels = self.tokenizer.pad({"input_ids": [x["labels"] for x in items]}, return_tensors="pt")
        ids = labels["input_ids"].masked_fill(labels["attention_mask"].ne(1), -100)
        if (ids[:, 0] == self.decoder_start_token_id).all():  # the model prepends it itself
            ids = ids[:, 1:]
        batch["labels"] = ids
        return batch


def main(argv=None) -> Seq2SeqTrainer:
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, PruningArguments, Seq2SeqTrainingArguments))
    model_args, data_args, prune_args, training_args = parser.parse_args_into_dataclasses(argv)
    feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    model = AutoModelForSpeechSeq2Seq.from_pretrained(model_args.model_name_or_path)
    pruning = PruningCallback(prune_args.parp_method, sparsity=prune_args.parp_sparsity,  # PARP
                              prune_every=prune_args.parp_prune_every, targets=prune_args.parp_targets)
    train_dataset = SpeechDataset(data_args.train_manifest, data_args.max_train_samples, feature_extractor, tokenizer)
    trainer = Seq2SeqTrainer(
        model=model, args=training_args, train_dataset=train_dataset,
        data_collator=DataCollatorSpeechSeq2SeqWithPadding(feature_extractor, tokenizer,
                                                           model.config.decoder_start_token_id),
        processing_class=feature_extractor, callbacks=[pruning])  # PARP: callbacks=[pruning]
    trainer.train()
    trainer.save_model()
    tokenizer.save_pretrained(training_args.output_dir)
    return trainer


if __name__ == "__main__":
    main(sys.argv[1:])
