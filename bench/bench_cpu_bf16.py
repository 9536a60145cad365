"""CPU fine-tuning step time of the embedded encoder in fp32 and under bf16 autocast (``--mixed_precision bf16``).

    python bench/bench_cpu_bf16.py [--threads 1] [--steps 6] [--rounds 3] [--batch-seconds 16]

Why: every experiment of parp that runs on the 2-core CPU fine-tunes this encoder, one thread per worker. CPUs with
native bf16 (AVX512-BF16, AMX) run bf16 matrix products about twice as fast as fp32; this prints what a whole
training step (forward, CTC loss, backward, AdamW) gains, with weights, gradients and optimizer kept in fp32 as
Accelerate's ``mixed_precision="bf16"`` does. The reference is the same steps in fp32, interleaved round by round
so load on a shared machine hits both alike; the figure is the best round of each. Batches: 16 s of real Mboshi
(../shared/data/mboshi) when present, else noise. Also printed: the first step's loss in both precisions (the
difference bf16 makes to the maths; whether it changes converged CER is an experiment, not a benchmark).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import transformers  # noqa: E402

from parp.models.load import default_model_path  # noqa: E402

MBOSHI = Path(os.environ.get("PARP_SHARED_DATA", REPO.parent / "shared" / "data")) / "mboshi" / "train.tsv"


def batch(seconds: float, clips: int = 4) -> torch.Tensor:
    """``clips`` clips of ``seconds / clips`` each: real Mboshi speech when it is there."""
    length = int(16000 * seconds / clips)
    if MBOSHI.is_file():
        rows = [line.split("\t")[0] for line in MBOSHI.read_text(encoding="utf-8").splitlines()[1:]]
        audio = np.concatenate([sf.read(MBOSHI.parent / path, dtype="float32")[0] for path in rows[:40]])
        return torch.from_numpy(audio[: clips * length].reshape(clips, length).copy())
    return torch.randn(clips, length, generator=torch.Generator().manual_seed(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round and precision")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-seconds", type=float, default=16.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    base = transformers.Wav2Vec2ForCTC.from_pretrained(default_model_path(), vocab_size=48, pad_token_id=0,
                                                        ctc_loss_reduction="mean")
    base.freeze_feature_encoder()
    x = batch(args.batch_seconds)
    labels = torch.randint(1, 48, (x.shape[0], int(args.batch_seconds * 3)), generator=torch.Generator().manual_seed(0))
    models = {"fp32": base, "bf16": copy.deepcopy(base)}
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in models.items()}

    def step(name: str) -> float:
        model = models[name]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
            loss = model(x, labels=labels).loss
        loss.backward()
        optimizers[name].step()
        optimizers[name].zero_grad()
        return float(loss.detach())

    first = {name: step(name) for name in models}  # same weights, same batch: the loss each precision computes
    best = {name: float("inf") for name in models}
    for _ in range(args.rounds):
        for name in models:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            best[name] = min(best[name], (time.perf_counter() - start) / args.steps)
    print(f"embedded encoder, {args.batch_seconds:g} s batches ({'Mboshi' if MBOSHI.is_file() else 'noise'}), "
          f"{args.threads} thread(s), best of {args.rounds} rounds x {args.steps} steps")
    print(f"first-step CTC loss: fp32 {first['fp32']:.4f}, bf16 {first['bf16']:.4f}")
    print(f"s per step: fp32 {best['fp32']:.3f}, bf16 {best['bf16']:.3f}; "
          f"bf16 speed-up vs fp32: {best['fp32'] / best['bf16']:.2f}x")


if __name__ == "__main__":
    main()
