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

import copy
import time

import torch
from embedded_steps import embedded_ctc_model, mboshi_audio, step_args


def batch(seconds: float, clips: int = 4) -> tuple[torch.Tensor, str]:
    """``clips`` clips of ``seconds / clips`` each: real Mboshi speech when it is there."""
    length = int(16000 * seconds / clips)
    audio, source = mboshi_audio(clips * length)
    return torch.from_numpy(audio.reshape(clips, length).copy()), source


def main() -> None:
    args = step_args(__doc__.splitlines()[0], "precision")
    base = embedded_ctc_model()
    x, source = batch(args.batch_seconds)
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
    print(f"embedded encoder, {args.batch_seconds:g} s batches ({source}), "
          f"{args.threads} thread(s), best of {args.rounds} rounds x {args.steps} steps")
    print(f"first-step CTC loss: fp32 {first['fp32']:.4f}, bf16 {first['bf16']:.4f}")
    print(f"s per step: fp32 {best['fp32']:.3f}, bf16 {best['bf16']:.3f}; "
          f"bf16 speed-up vs fp32: {best['fp32'] / best['bf16']:.2f}x")


if __name__ == "__main__":
    main()
