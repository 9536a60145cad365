"""The CTC fine-tuning objective plugged into the one training loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from accelerate.utils import gather_object

from ..data.batching import CTCCollator
from ..data.dataset import SpeechDataset, encoder_frames
from ..data.text import Vocabulary
from ..evaluation.metrics import METRICS
from ..evaluation.predict import predict, score
from ..models.features import AudioInput, write_audio_input

CTC_HEAD_INITS = ("random", "prior")


def init_head_bias_to_prior(model: torch.nn.Module, train_set: SpeechDataset) -> torch.Tensor:
    """Set the CTC head's bias to the log of each token's share of the training frames (the blank gets every
    frame no label needs), so the untrained model already predicts the frame-level prior. Returns the bias."""
    head = model.lm_head
    counts = torch.zeros(head.out_features, dtype=torch.float64)
    for labels in train_set.labels:
        counts += torch.bincount(torch.as_tensor(labels, dtype=torch.long), minlength=head.out_features).double()
    frames = sum(encoder_frames(round(seconds * train_set.sampling_rate)) for seconds in train_set.durations)
    blank = model.config.pad_token_id
    counts[blank] = max(frames - counts.sum().item(), 1.0)
    prior = (counts + 1.0) / (counts.sum() + head.out_features)  # add-one: a token never seen keeps a finite bias
    with torch.no_grad():
        head.bias.copy_(prior.log().to(head.bias.dtype))
    return head.bias.detach().clone()


class CTCObjective:
    """CTC loss for training; greedy-decoded WER/CER (PER for phones) for validation; HF folder + processor for export."""

    metric_for_best = "cer"  # "per" on an instance with a phone vocabulary

    def __init__(self, vocabulary: Vocabulary, sampling_rate: int = 16000,
                 decoder: Callable[[torch.Tensor, list[int]], list[str]] | None = None, normalize: bool = True):
        self.vocabulary = vocabulary
        self.metric_for_best = METRICS[vocabulary.unit][0]
        self.sampling_rate = sampling_rate
        self.normalize = normalize
        self.collate = CTCCollator(pad_token_id=vocabulary.pad_id)
        self.decoder = decoder
        self.decode_failures: dict[str, str] = {}  # path -> reason, for files that failed mid-run

    def note_failures(self, batch: dict) -> bool:
        """Count the batch's files that failed to decode; False when nothing in it is usable."""
        for path, reason in batch.get("failed", ()):
            self.decode_failures.setdefault(path, reason)
        return "input_values" in batch

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if not self.note_failures(batch):
            # every file of the batch failed: a zero loss still reaches every parameter, so the step (and
            # the gradient all-reduce of other processes) goes on as usual
            return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        return model(input_values=batch["input_values"], attention_mask=batch.get("attention_mask"),
                     labels=batch["labels"]).loss

    def evaluate(self, model: torch.nn.Module, loader, accelerator) -> dict[str, float]:
        rates = score(self.predict(model, loader, accelerator), self.vocabulary.unit)
        return {"per": rates["per"]} if self.vocabulary.unit == "phone" else {"wer": rates["wer"], "cer": rates["cer"]}

    def predict(self, model: torch.nn.Module, loader, accelerator) -> list[dict[str, Any]]:
        """Per-utterance ``{index, reference, hypothesis}`` over the whole (possibly sharded) loader."""
        failed: list = []
        rows = predict(model, loader, self.vocabulary, decoder=self.decoder, failed=failed)
        for path, reason in failed:
            self.decode_failures.setdefault(path, reason)
        if accelerator is not None and accelerator.num_processes > 1:
            rows = gather_object(rows)
            seen, unique = set(), []  # even_batches may repeat a few items on the last batch
            for row in rows:
                if row["index"] not in seen:
                    seen.add(row["index"])
                    unique.append(row)
            rows = unique
        return sorted(rows, key=lambda r: (r["index"] is None, r["index"]))

    def export(self, model: torch.nn.Module, directory: Path) -> None:
        directory = Path(directory)
        model.save_pretrained(str(directory), safe_serialization=True)
        self.save_processor(directory)

    def save_processor(self, directory: Path) -> None:
        """Vocabulary and processor files, with the model's own sampling rate and normalisation."""
        self.vocabulary.save(directory, sampling_rate=self.sampling_rate)
        write_audio_input(directory, AudioInput(self.sampling_rate, self.normalize))
