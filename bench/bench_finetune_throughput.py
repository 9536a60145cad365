"""Fine-tuning throughput (audio seconds per second) of parp's ``train()`` vs a plain transformers loop.

    python bench/bench_finetune_throughput.py [--steps 6] [--warmup 1] [--batch-seconds 8] [--repeats 2]

Model: the wav2vec2-base shape (``Wav2Vec2Config()`` defaults: 12 layers, 768 hidden, 95 M parameters) with a
fresh CTC head, feature encoder frozen, on CPU, fp32. Both sides start from the same weights and see the SAME
batches (parp's LengthGroupedBatchSampler + CTCCollator, epoch 0, seed 0), so they do identical model work:

* parp:  ``parp.training.loop.train`` (Accelerate, grad clipping, LR schedule, loss logging, hooks).
* plain: ``loss = model(input_values, attention_mask, labels).loss; loss.backward();
  clip_grad_norm_(...); optimizer.step(); optimizer.zero_grad()`` with ``torch.optim.AdamW``.

Both sides clip gradients at ``--max-grad-norm`` (default 1.0, parp's default and the HF Trainer's; 0 = neither
clips), so the ratio measures the loop's own overhead, not a difference in the maths.
Only the steps after ``--warmup`` are timed (parp's via a hook at ``on_step_end``). Audio is real Mboshi
(../shared/data/mboshi) when present, else synthetic noise with the same length profile. The machine may be
shared: run with ``--repeats 2`` or more and read the spread, not one figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
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


def _model(vocab_size: int):
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=vocab_size, pad_token_id=0, ctc_loss_reduction="mean", ctc_zero_infinity=True)
    return Wav2Vec2ForCTC(config)


class _StepClock(TrainingHook):
    name = "clock"

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.t0 = self.t1 = None

    def on_step_end(self, state) -> None:
        now = time.perf_counter()
        if state.step == self.warmup:
            self.t0 = now
        self.t1 = now


def run_parp(state_dict, dataset, objective, batches, args, workdir: Path) -> float:
    model = _model(len(objective.vocabulary))
    model.load_state_dict(state_dict)
    clock = _StepClock(args.warmup)
    config = TrainConfig(output_dir=str(workdir / f"parp-{time.time_ns()}"), max_steps=args.warmup + args.steps,
                         learning_rate=1e-4, warmup_steps=0, max_grad_norm=args.max_grad_norm,
                         max_batch_seconds=args.batch_seconds, eval_every=0, save_every=0, log_every=10_000,
                         progress=False, mixed_precision="no", seed=0)
    train(model, dataset, None, config, objective, hooks=[clock])
    return clock.t1 - clock.t0


def run_plain(state_dict, dataset, objective, batches, args) -> float:
    model = _model(len(objective.vocabulary))
    model.load_state_dict(state_dict)
    model.freeze_feature_encoder()
    model.train()
    # the same optimizer settings as parp's loop (weight decay 0, betas 0.9/0.98, eps 1e-8), so only the loop differs
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.98),
                                  eps=1e-8, weight_decay=0.0)
    t0 = None
    for i, batch in enumerate(batches):
        if i == args.warmup:
            t0 = time.perf_counter()
        loss = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"],
                     labels=batch["labels"]).loss
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="Timed optimizer steps per side.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed steps first.")
    parser.add_argument("--batch-seconds", type=float, default=8.0, help="Audio-seconds budget per batch.")
    parser.add_argument("--repeats", type=int, default=2, help="Measurements per side (alternating).")
    parser.add_argument("--max-grad-norm", type=float, default=1.0,
                        help="Gradient clipping on both sides (parp's default 1.0; 0 = no clipping).")
    parser.add_argument("--json", default=None, help="Also write the figures to this file.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        utts, source = _utterances(200, min(args.batch_seconds, 6.0), workdir)
        vocabulary = Vocabulary.build(u.text for u in utts)
        dataset = SpeechDataset(utts, vocabulary).validate(progress=False)
        objective = CTCObjective(vocabulary)
        # exactly the batches train() draws in epoch 0 with seed 0
        sampler = LengthGroupedBatchSampler(dataset.durations, args.batch_seconds, shuffle=True, seed=0)
        order = sampler.batches()[: args.warmup + args.steps]
        if len(order) < args.warmup + args.steps:
            raise SystemExit("not enough utterances for that many steps in one epoch")
        batches = [objective.collate([dataset[i] for i in b]) for b in order]
        audio = sum(float(b["attention_mask"].sum()) / 16000 for b in batches[args.warmup:])
        state_dict = _model(len(vocabulary)).state_dict()
        print(f"wav2vec2-base shape, {sum(p.numel() for p in _model(len(vocabulary)).parameters()) / 1e6:.1f} M "
              f"params, {source} audio, {args.steps} timed steps after {args.warmup} warm-up, "
              f"{audio:.1f} audio-s timed per run, batch sizes {[len(b) for b in order]}, "
              f"torch threads {torch.get_num_threads()}", flush=True)
        results: dict[str, list[float]] = {"parp": [], "plain": []}
        for r in range(args.repeats):
            for side in ("parp", "plain"):
                seconds = (run_parp(state_dict, dataset, objective, batches, args, workdir) if side == "parp"
                           else run_plain(state_dict, dataset, objective, batches, args))
                results[side].append(audio / seconds)
                print(f"  run {r + 1} {side:<5}: {seconds:7.2f} s  ->  {audio / seconds:6.2f} audio-s/s", flush=True)
    best = {k: max(v) for k, v in results.items()}
    median = {k: float(np.median(v)) for k, v in results.items()}
    print(f"parp  : {best['parp']:.2f} audio-s/s (best), {median['parp']:.2f} (median)")
    print(f"plain : {best['plain']:.2f} audio-s/s (best), {median['plain']:.2f} (median)")
    print(f"ratio parp/plain: {best['parp'] / best['plain']:.3f} (best vs best), "
          f"{median['parp'] / median['plain']:.3f} (median vs median)   goal >= 0.95")
    if args.json:
        Path(args.json).write_text(json.dumps({"audio_seconds_per_second": results, "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
