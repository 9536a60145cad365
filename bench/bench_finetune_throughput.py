"""Fine-tuning throughput (audio seconds per second) of parp's ``train()`` vs a plain transformers loop.

    python bench/bench_finetune_throughput.py [--device auto|cpu|cuda] [--precision auto|no|bf16] [--steps N]
        [--warmup N] [--batch-seconds S] [--repeats 2] [--quick]

Model: the wav2vec2-base shape (``Wav2Vec2Config()`` defaults: 12 layers, 768 hidden, 95 M parameters) with a
fresh CTC head, feature encoder frozen (``--quick``: a 2-layer toy, to check the script in seconds on a CPU).
Both sides start from the same weights and see the SAME batches (parp's LengthGroupedBatchSampler + CTCCollator,
seed 0, epoch by epoch as ``train()`` draws them), loaded the same way (a DataLoader over the same dataset and
collate function, moved to the device each step), so they do identical model and data work:

* parp:  ``parp.training.loop.train`` (Accelerate, grad clipping, LR schedule, loss logging, hooks).
* plain: ``loss = model(input_values, attention_mask, labels).loss; loss.backward();
  clip_grad_norm_(...); optimizer.step(); optimizer.zero_grad()`` with ``torch.optim.AdamW``.

Precision is identical on both sides: on a GPU (``--precision auto``) parp's loop runs Accelerate's
``mixed_precision="bf16"`` and the plain loop wraps its forward in ``torch.autocast(dtype=torch.bfloat16)``
(fp32 weights and optimizer on both); on a CPU both run fp32. Both sides clip gradients at ``--max-grad-norm``
(default 1.0, parp's default and the HF Trainer's; 0 = neither clips), so the ratio measures the loop's own
overhead, not a difference in the maths. Only the steps after ``--warmup`` are timed (parp's via a hook at
``on_step_end``), with the GPU synchronised at both ends of the timed window. Audio is real Mboshi
(../shared/data/mboshi) when present, else synthetic noise with the same length profile. The machine may be
shared: run with ``--repeats 2`` or more and read the spread, not one figure. Goal: parp/plain >= 0.97.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from parp.data.batching import LengthGroupedBatchSampler  # noqa: E402
from parp.data.dataset import SpeechDataset  # noqa: E402
from parp.data.manifest import Utterance  # noqa: E402
from parp.data.text import Vocabulary  # noqa: E402
from parp.training.ctc import CTCObjective  # noqa: E402
from parp.training.hooks import TrainingHook  # noqa: E402
from parp.training.loop import TrainConfig, train  # noqa: E402

SHARED = Path(os.environ.get("PARP_SHARED_DATA", REPO.parent / "shared" / "data"))
GOAL = 0.97
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


@dataclass
class ThroughputArgs:
    """The bench's flags; None = the device's default (CPU: 6 steps after 1 warm-up, 8 s batches; GPU: 20 after
    3, 64 s batches; --quick: 2 after 1, 4 s batches, toy model)."""

    device: str = "auto"
    precision: str = "auto"
    steps: int | None = None
    warmup: int | None = None
    batch_seconds: float | None = None
    repeats: int = 2
    max_grad_norm: float = 1.0
    quick: bool = False
    json: str | None = None

    def resolved(self) -> "ThroughputArgs":
        auto = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(auto if self.device == "auto" else self.device)
        steps, warmup, seconds = (2, 1, 4.0) if self.quick else (20, 3, 64.0) if device.type == "cuda" else (6, 1, 8.0)
        precision = self.precision
        if precision == "auto":
            precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
        return ThroughputArgs(str(device), precision, self.steps or steps, self.warmup if self.warmup is not None
                              else warmup, self.batch_seconds or seconds, self.repeats, self.max_grad_norm,
                              self.quick, self.json)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _utterances(n: int, max_seconds: float, workdir: Path) -> tuple[list[Utterance], str]:
    manifest = SHARED / "mboshi" / "train.tsv"
    if manifest.exists():
        with open(manifest, encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if 1.5 <= float(r["duration"]) <= max_seconds]
        rows = rows[:: max(1, len(rows) // n)][:n]
        return [Utterance(str(manifest.parent / r["path"]), r["text"], duration=float(r["duration"]))
                for r in rows], "mboshi"
    rng = np.random.default_rng(0)
    utts = []
    for i in range(n):
        seconds = float(rng.uniform(1.5, max_seconds))
        path = workdir / f"noise{i}.wav"
        sf.write(str(path), (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
        utts.append(Utterance(str(path), "a b c d e f g h i j"[: 2 * int(seconds * 2)].strip() or "a"))
    return utts, "synthetic noise"


def _model(vocab_size: int, quick: bool):
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=vocab_size, pad_token_id=0, ctc_loss_reduction="mean", ctc_zero_infinity=True,
                            **(TINY if quick else {}))
    return Wav2Vec2ForCTC(config)


def batches_train_draws(dataset, batch_seconds: float, count: int) -> list[list[int]]:
    """The first ``count`` batches ``train()`` draws (seed 0, one process), crossing epochs as it does."""
    sampler = LengthGroupedBatchSampler(dataset.durations, batch_seconds, shuffle=True, seed=0)
    order: list[list[int]] = []
    epoch = 0
    while len(order) < count:
        sampler.set_epoch(epoch)
        order += [list(b) for b in sampler.batches()]
        epoch += 1
    return order[:count]


class _StepClock(TrainingHook):
    """Times steps warmup+1 .. last inside parp's loop, synchronising the GPU only at the two ends."""

    name = "clock"

    def __init__(self, warmup: int, last: int, device: torch.device):
        self.warmup, self.last, self.device = warmup, last, device
        self.t0 = self.t1 = None

    def on_step_end(self, state) -> None:
        if state.step == self.warmup:
            _sync(self.device)
            self.t0 = time.perf_counter()
        if state.step == self.last:
            _sync(self.device)
            self.t1 = time.perf_counter()


class _SeenBatches(CTCObjective):
    """CTCObjective that notes the dataset indices of every batch it collates (on the host: no GPU sync)."""

    def __init__(self, vocabulary: Vocabulary):
        super().__init__(vocabulary)
        self.seen: list[list[int]] = []
        collate = self.collate

        def noting(items):
            self.seen.append([item["index"] for item in items])
            return collate(items)

        self.collate = noting


def run_parp(state_dict, dataset, objective, args: ThroughputArgs, workdir: Path) -> tuple[float, list]:
    device = torch.device(args.device)
    if device.type == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"  # Accelerate would otherwise take a visible GPU
    model = _model(len(objective.vocabulary), args.quick)
    model.load_state_dict(state_dict)
    clock = _StepClock(args.warmup, args.warmup + args.steps, device)
    config = TrainConfig(output_dir=str(workdir / f"parp-{time.time_ns()}"), max_steps=args.warmup + args.steps,
                         learning_rate=1e-4, warmup_steps=0, max_grad_norm=args.max_grad_norm,
                         max_batch_seconds=args.batch_seconds, eval_every=0, save_every=0, log_every=10_000,
                         progress=False, mixed_precision=args.precision, seed=0)
    parp_objective = _SeenBatches(objective.vocabulary)
    train(model, dataset, None, config, parp_objective, hooks=[clock])
    return clock.t1 - clock.t0, parp_objective.seen


def run_plain(state_dict, dataset, objective, order, args: ThroughputArgs) -> float:
    from torch.utils.data import DataLoader

    device = torch.device(args.device)
    model = _model(len(objective.vocabulary), args.quick)
    model.load_state_dict(state_dict)
    model.freeze_feature_encoder()
    model.to(device).train()
    torch.manual_seed(0)  # SpecAugment draws, as train()'s set_seed(0)
    # the same optimizer settings as parp's loop (weight decay 0, betas 0.9/0.98, eps 1e-8), so only the loop differs
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.98),
                                  eps=1e-8, weight_decay=0.0)
    loader = DataLoader(dataset, batch_sampler=order, collate_fn=objective.collate)
    bf16 = args.precision == "bf16"
    t0 = None
    for i, batch in enumerate(loader):
        if i == args.warmup:
            _sync(device)
            t0 = time.perf_counter()
        batch = {k: v.to(device) for k, v in batch.items() if k != "index"}
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            loss = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"],
                         labels=batch["labels"]).loss
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - t0


def measure(args: ThroughputArgs, log=print) -> dict:
    """Alternate parp and plain ``args.repeats`` times each; returns audio-s/s per run and the ratios."""
    args = args.resolved()
    if args.precision not in ("no", "bf16"):
        raise SystemExit(f"--precision must be auto, no or bf16, got {args.precision!r}")
    if args.warmup < 1 or args.steps < 1:
        raise SystemExit("--warmup and --steps must be at least 1 (the timed window starts after a warm-up step)")
    needed = args.warmup + args.steps
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        max_seconds = min(args.batch_seconds, 6.0)
        # enough utterances for the timed batches within about one epoch (mean clip about 3.5 s)
        utts, source = _utterances(max(16 if args.quick else 200, math.ceil(needed * args.batch_seconds / 3.0)),
                                   max_seconds, workdir)
        vocabulary = Vocabulary.build(u.text for u in utts)
        dataset = SpeechDataset(utts, vocabulary).validate(progress=False)
        objective = CTCObjective(vocabulary)
        order = batches_train_draws(dataset, args.batch_seconds, needed)
        for i in sorted({i for b in order for i in b}):
            dataset[i]  # decode once into the dataset's cache, so neither side pays for it in its timed window
        audio = sum(float(sum(dataset.durations[i] for i in b)) for b in order[args.warmup:])
        model = _model(len(vocabulary), args.quick)
        state_dict = model.state_dict()
        name = "toy (2 layers, --quick)" if args.quick else "wav2vec2-base shape"
        log(f"{name}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params, {source} audio, "
            f"device {args.device}, precision {args.precision}, {args.steps} timed steps after {args.warmup} "
            f"warm-up, {audio:.1f} audio-s timed per run, batch sizes {[len(b) for b in order]}, "
            f"torch threads {torch.get_num_threads()}")
        results: dict[str, list[float]] = {"parp": [], "plain": []}
        for r in range(args.repeats):
            for side in ("parp", "plain"):
                if side == "parp":
                    seconds, seen = run_parp(state_dict, dataset, objective, args, workdir)
                    if seen[: len(order)] != order:  # Accelerate's loader collates one batch ahead
                        raise SystemExit("parp's loop drew other batches than the plain loop: the ratio would "
                                         "compare different work")
                else:
                    seconds = run_plain(state_dict, dataset, objective, order, args)
                results[side].append(audio / seconds)
                log(f"  run {r + 1} {side:<5}: {seconds:7.2f} s  ->  {audio / seconds:8.2f} audio-s/s")
    best = {k: max(v) for k, v in results.items()}
    median = {k: float(np.median(v)) for k, v in results.items()}
    figures = {"audio_seconds_per_second": results, "best": best, "median": median,
               "ratio_best": best["parp"] / best["plain"], "ratio_median": median["parp"] / median["plain"],
               "goal": GOAL, "args": asdict(args)}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when visible) | cpu | cuda.")
    parser.add_argument("--precision", default="auto",
                        help="auto (bf16 autocast on a GPU, fp32 on a CPU) | no | bf16; the same on both sides.")
    parser.add_argument("--steps", type=int, default=None, help="Timed optimizer steps per side (CPU 6, GPU 20).")
    parser.add_argument("--warmup", type=int, default=None, help="Untimed steps first (CPU 1, GPU 3).")
    parser.add_argument("--batch-seconds", type=float, default=None,
                        help="Audio-seconds budget per batch (CPU 8, GPU 64).")
    parser.add_argument("--repeats", type=int, default=2, help="Measurements per side (alternating).")
    parser.add_argument("--max-grad-norm", type=float, default=1.0,
                        help="Gradient clipping on both sides (parp's default 1.0; 0 = no clipping).")
    parser.add_argument("--quick", action="store_true", help="Toy model, 2 steps: checks the script in seconds.")
    parser.add_argument("--json", default=None, help="Also write the figures to this file.")
    figures = measure(ThroughputArgs(**vars(parser.parse_args())), log=lambda line: print(line, flush=True))
    best, median = figures["best"], figures["median"]
    print(f"parp  : {best['parp']:.2f} audio-s/s (best), {median['parp']:.2f} (median)")
    print(f"plain : {best['plain']:.2f} audio-s/s (best), {median['plain']:.2f} (median)")
    print(f"ratio parp/plain: {figures['ratio_best']:.3f} (best vs best), {figures['ratio_median']:.3f} "
          f"(median vs median)   goal >= {GOAL}")


if __name__ == "__main__":
    main()
