"""Self-supervised objectives for the shared training loop: BEST-RQ masked prediction and wav2vec 2.0 contrastive.

Both follow the loop's ``Objective`` protocol (``collate`` / ``loss`` / ``evaluate`` / ``metric_for_best``) so
pretraining uses the same loop, checkpointing and resume as fine-tuning. Both mask spans of the CNN features with
wav2vec2's own ``masked_spec_embed`` and score only masked frames.

BEST-RQ (Chiu et al. 2022) is the default: its targets come from a frozen random projection of log-mel frames
(:mod:`parp.pretrain.features`), so there is no quantizer to learn or collapse and no negatives to sample, which
makes it cheaper per step and more stable for a tiny model trained for a few thousand CPU steps.
"""

from __future__ import annotations

import abc
import contextlib
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForPreTraining, Wav2Vec2Model
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

from ..errors import ConfigError
from ..records import write_record
from ..training.hooks import TrainingHook
from .features import RandomProjectionQuantizer, StackedLogMel, frame_lengths
from .model import SSLPretrainingModel

IGNORE = -100


def _unwrap(model):
    """The bare module under Accelerate/DDP wrappers (objectives call model-specific methods)."""
    while hasattr(model, "module"):
        model = model.module
    return model


@contextlib.contextmanager
def _numpy_seed(seed: int):
    """Fixed masks/negatives for validation without disturbing the training RNG stream."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


# ----------------------------------------------------------------------------------------------- objectives
class _MaskedObjective(abc.ABC):
    """Shared parts: waveform collation with wav2vec2's per-utterance normalisation, span masks, evaluation,
    export of the bare encoder."""

    metric_for_best = "loss"
    name = "base"

    def __init__(self, config: Wav2Vec2Config, mask_prob: float = 0.65, mask_length: int = 10,
                 min_masks: int = 2, sampling_rate: int = 16000, eval_seed: int = 1234):
        self.config = config
        self.mask_prob = mask_prob
        self.mask_length = mask_length
        self.min_masks = min_masks
        self.sampling_rate = sampling_rate
        self.eval_seed = eval_seed

    def _collate_waves(self, items: list[dict]):
        """Zero-mean/unit-variance each clip (what Wav2Vec2FeatureExtractor(do_normalize=True) does), pad right."""
        waves = [torch.as_tensor(np.asarray(item["input_values"], dtype=np.float32)) for item in items]
        waves = [(w - w.mean()) / torch.sqrt(w.var(unbiased=False) + 1e-7) for w in waves]
        lengths = torch.tensor([w.numel() for w in waves])
        input_values = torch.zeros(len(waves), int(lengths.max()))
        attention_mask = torch.zeros(len(waves), int(lengths.max()), dtype=torch.long)
        for i, w in enumerate(waves):
            input_values[i, : w.numel()] = w
            attention_mask[i, : w.numel()] = 1
        return waves, input_values, attention_mask, frame_lengths(self.config, lengths)

    def _frame_mask(self, batch) -> torch.Tensor:
        """``(batch, frames)`` bool: real (non-padding) CNN frames."""
        lengths = batch["frame_lengths"]
        n_frames = int(frame_lengths(self.config, torch.tensor(batch["input_values"].shape[1])))
        return torch.arange(n_frames, device=lengths.device)[None] < lengths[:, None]

    def _mask_spans(self, frame_mask: torch.Tensor) -> torch.Tensor:
        mask = _compute_mask_indices(
            tuple(frame_mask.shape), self.mask_prob, self.mask_length,
            attention_mask=frame_mask.long().cpu(), min_masks=self.min_masks,
        )
        return torch.from_numpy(mask).to(frame_mask.device) & frame_mask

    @abc.abstractmethod
    def _stats(self, model, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean loss over masked frames, number correct, number scored) for one batch."""

    @abc.abstractmethod
    def build_model(self, seed: int = 0) -> nn.Module:
        """A freshly initialised pretraining model (encoder + objective-specific head)."""

    def describe(self) -> dict:
        """Objective settings recorded in ``pretraining.json``."""
        return {"objective": self.name, "mask_prob": self.mask_prob, "mask_length": self.mask_length,
                "min_masks": self.min_masks}

    def export(self, model, directory) -> None:
        """Save only the encoder as a standard HF folder (+ 16 kHz feature extractor with do_normalize=True),
        so ``AutoModelForCTC.from_pretrained(folder, vocab_size=..., ignore_mismatched_sizes=True)`` loads it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _unwrap(model).wav2vec2.save_pretrained(str(directory), safe_serialization=True)
        Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=self.sampling_rate, padding_value=0.0, do_normalize=True,
            return_attention_mask=True,
        ).save_pretrained(str(directory))
        write_record(directory, "objective.json", self.describe())

    def loss(self, model, batch) -> torch.Tensor:
        return self._stats(model, batch)[0]

    @torch.no_grad()
    def evaluate(self, model, loader, accelerator=None) -> dict[str, float]:
        """Masked-frame loss and accuracy on held-out audio, with fixed masks so numbers are comparable."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        totals = torch.zeros(3, dtype=torch.float64, device=device)
        with _numpy_seed(self.eval_seed):
            for batch in loader:
                batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
                loss, correct, count = self._stats(model, batch)
                totals += torch.stack([loss.double() * count, correct.double(), count.double()])
        if accelerator is not None and getattr(accelerator, "num_processes", 1) > 1:
            totals = accelerator.reduce(totals, "sum")
        model.train(was_training)
        count = max(float(totals[2]), 1.0)
        return {"loss": float(totals[0]) / count, "accuracy": float(totals[1]) / count}


class BestRQObjective(_MaskedObjective):
    """BEST-RQ: predict the random-projection codeword of each masked 20 ms frame (cross-entropy)."""

    name = "best-rq"

    def __init__(self, config: Wav2Vec2Config, codebook_size: int = 1024, codebook_dim: int = 16,
                 num_codebooks: int = 1, seed: int = 0, quantizer: RandomProjectionQuantizer | None = None,
                 **kwargs):
        super().__init__(config, **kwargs)
        self.features = StackedLogMel(self.sampling_rate)
        self.quantizer = quantizer or RandomProjectionQuantizer(
            self.features.dim, codebook_size, codebook_dim, num_codebooks, seed
        )

    def build_model(self, seed: int = 0) -> SSLPretrainingModel:
        torch.manual_seed(seed)
        encoder = Wav2Vec2Model(self.config)
        k, v = self.quantizer.num_codebooks, self.quantizer.codebook_size
        return SSLPretrainingModel(encoder, nn.Linear(self.config.hidden_size, k * v), k)

    def describe(self) -> dict:
        return {**super().describe(), "codebook_size": self.quantizer.codebook_size,
                "num_codebooks": self.quantizer.num_codebooks, "codebook_dim": self.quantizer.codebooks.shape[-1],
                "quantizer_seed": self.quantizer.seed, "features": "80 log-mel, 25 ms / 10 ms, 2 stacked, CMVN"}

    def export(self, model, directory) -> None:
        """Encoder folder plus ``quantizer.safetensors``, so targets can be regenerated to continue pretraining."""
        super().export(model, directory)
        self.quantizer.save(Path(directory) / "quantizer.safetensors")

    def targets(self, wave: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(n_frames, num_codebooks)`` codeword ids of one normalised clip, aligned to its CNN frames."""
        ids = self.quantizer(self.features(wave))[:n_frames]
        if ids.shape[0] < n_frames:  # only for clips shorter than one CNN receptive field
            ids = torch.cat([ids, ids.new_full((n_frames - ids.shape[0], ids.shape[1]), IGNORE)])
        return ids

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        waves, input_values, attention_mask, lengths = self._collate_waves(items)
        n_frames = int(frame_lengths(self.config, torch.tensor(input_values.shape[1])))
        targets = torch.full((len(waves), n_frames, self.quantizer.num_codebooks), IGNORE, dtype=torch.long)
        for i, (wave, length) in enumerate(zip(waves, lengths.tolist())):
            targets[i, :length] = self.targets(wave, length)
        return {"input_values": input_values, "attention_mask": attention_mask, "targets": targets,
                "frame_lengths": lengths}

    def _stats(self, model, batch):
        frame_mask = self._frame_mask(batch)
        masked = self._mask_spans(frame_mask)
        logits = model(batch["input_values"], attention_mask=batch["attention_mask"], mask_time_indices=masked)
        targets = batch["targets"].masked_fill(~masked[..., None], IGNORE)
        loss = nn.functional.cross_entropy(logits.flatten(0, 2).float(), targets.flatten(), ignore_index=IGNORE)
        scored = targets != IGNORE
        correct = ((logits.argmax(-1) == targets) & scored).sum()
        return loss, correct, scored.sum()


class ContrastiveObjective(_MaskedObjective):
    """wav2vec 2.0: identify the quantised CNN feature of each masked frame among sampled distractors.

    Uses ``Wav2Vec2ForPreTraining`` as is (Gumbel-softmax quantiser, diversity loss); the loss is divided by
    the number of masked frames so learning rates are comparable with BEST-RQ. Pass :meth:`hooks` to the loop:
    the Gumbel temperature must be annealed with the update count.
    """

    name = "wav2vec2"

    def __init__(self, config: Wav2Vec2Config, max_gumbel_temp: float = 2.0, min_gumbel_temp: float = 0.5,
                 anneal_steps: int = 2000, **kwargs):
        super().__init__(config, **kwargs)
        self.max_gumbel_temp = max_gumbel_temp
        self.min_gumbel_temp = min_gumbel_temp
        self.anneal_steps = max(1, anneal_steps)

    def build_model(self, seed: int = 0) -> Wav2Vec2ForPreTraining:
        torch.manual_seed(seed)
        model = Wav2Vec2ForPreTraining(self.config)
        model.set_gumbel_temperature(self.max_gumbel_temp)
        return model

    def describe(self) -> dict:
        return {**super().describe(), "num_negatives": self.config.num_negatives,
                "codevectors": f"{self.config.num_codevector_groups}x{self.config.num_codevectors_per_group}",
                "gumbel_temperature": [self.max_gumbel_temp, self.min_gumbel_temp, self.anneal_steps]}

    def gumbel_temperature(self, step: int) -> float:
        """Exponential decay from max to min over ``anneal_steps`` updates (the paper's schedule assumes 400 k
        updates; a short run would never reach near-hard codes)."""
        decay = (self.min_gumbel_temp / self.max_gumbel_temp) ** (1.0 / self.anneal_steps)
        return max(self.min_gumbel_temp, self.max_gumbel_temp * decay**step)

    def hooks(self) -> list:
        objective = self

        class GumbelTemperature(TrainingHook):
            """Sets the quantiser temperature from the loop's step, so resume lands on the same value."""

            name = "gumbel_temperature"

            def on_train_begin(self, state):
                _unwrap(state.model).set_gumbel_temperature(objective.gumbel_temperature(state.step))

            def on_step_end(self, state):
                _unwrap(state.model).set_gumbel_temperature(objective.gumbel_temperature(state.step))

        return [GumbelTemperature()]

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        _, input_values, attention_mask, lengths = self._collate_waves(items)
        return {"input_values": input_values, "attention_mask": attention_mask, "frame_lengths": lengths}

    def _stats(self, model, batch):
        bare = _unwrap(model)
        frame_mask = self._frame_mask(batch)
        masked = self._mask_spans(frame_mask)
        negatives = _sample_negative_indices(
            tuple(frame_mask.shape), bare.config.num_negatives, mask_time_indices=frame_mask.cpu().numpy()
        )
        negatives = torch.from_numpy(negatives).long().to(masked.device)
        out = model(batch["input_values"], attention_mask=batch["attention_mask"], mask_time_indices=masked,
                    sampled_negative_indices=negatives)
        count = masked.sum()
        loss = out.loss / count.clamp(min=1)
        correct = torch.zeros((), device=masked.device)
        if not bare.training:
            quantized = out.projected_quantized_states
            b, t, d = quantized.shape
            neg = quantized.reshape(-1, d)[negatives.view(-1)].view(b, t, -1, d).permute(2, 0, 1, 3)
            logits = bare.compute_contrastive_logits(
                quantized[None], neg, out.projected_states, bare.config.contrastive_logits_temperature
            )  # (1 + negatives, batch, frames)
            logits[1:][(quantized[None] == neg).all(-1)] = float("-inf")  # as HF does: a copy of the positive
            correct = ((logits[0] > logits[1:].max(0).values) & masked).sum()
        return loss, correct, count


OBJECTIVES = {"best-rq": BestRQObjective, "wav2vec2": ContrastiveObjective}


def make_objective(name: str, config: Wav2Vec2Config, **kwargs):
    """``"best-rq"`` or ``"wav2vec2"`` (aliases: ``bestrq``, ``contrastive``)."""
    key = {"bestrq": "best-rq", "contrastive": "wav2vec2"}.get(name, name)
    if key not in OBJECTIVES:
        raise ConfigError(f"unknown pretraining objective {name!r}: choose best-rq or wav2vec2")
    return OBJECTIVES[key](config, **kwargs)
