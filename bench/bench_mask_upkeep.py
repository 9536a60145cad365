"""Mask upkeep cost as a fraction of a fine-tuning step, wav2vec2-base shape on CPU (goal: <= 3 %).

Reference: one optimizer step of CTC fine-tuning (forward, backward, AdamW; CNN frozen) on a batch of
``--batch-seconds`` of audio. Measured against it:

* PARP: a magnitude re-prune (global threshold over ~85 M prunable weights + applying the mask) every
  ``--prune-every`` steps, amortised per step, plus the re-prune before each validation/save;
* fixed mask (OMP's second fine-tuning, IMP, MPI): re-zeroing the masked weights after every step.

    python bench/bench_mask_upkeep.py [--steps 3 --batch-seconds 8 --prune-every 50 --sparsity 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from parp.methods.hooks import FixedMaskHook, PARPHook
from parp.sparsity import Mask, prunable_parameters
from parp.training.hooks import LoopState


def time_step(model, optimizer, batch_seconds: float, batch_size: int = 2) -> float:
    samples = int(16000 * batch_seconds / batch_size)
    inputs = torch.randn(batch_size, samples)
    labels = torch.randint(3, 32, (batch_size, int(samples / 320 / 3)))
    t0 = time.perf_counter()
    loss = model(input_values=inputs, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-seconds", type=float, default=8.0)
    parser.add_argument("--prune-every", type=int, default=50)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=32, ctc_zero_infinity=True, mask_time_prob=0.0))
    model.freeze_feature_encoder()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    targets = prunable_parameters(model)
    n_prunable = sum(p.numel() for p in targets.values())
    print(f"wav2vec2-base shape: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
          f"{n_prunable / 1e6:.1f} M prunable; {torch.get_num_threads()} torch threads")

    time_step(model, optimizer, args.batch_seconds)  # warm-up
    step_times = [time_step(model, optimizer, args.batch_seconds) for _ in range(args.steps)]
    step = statistics.median(step_times)
    print(f"fine-tuning step ({args.batch_seconds:.0f} s audio): median {step:.3f} s over {args.steps} steps")

    state = LoopState(model=model, accelerator=None, config=None)
    parp = PARPHook(lambda m: Mask.magnitude(prunable_parameters(m), args.sparsity), args.prune_every)
    reprune_s = median_seconds(lambda: parp._reprune(state), args.repeats)
    fixed = FixedMaskHook(parp.mask)
    apply_s = median_seconds(lambda: fixed.on_step_end(state), args.repeats)

    parp_share = reprune_s / args.prune_every / step
    fixed_share = apply_s / step
    print(f"PARP re-prune (threshold + apply, {n_prunable / 1e6:.0f} M weights): median {reprune_s:.3f} s; "
          f"every {args.prune_every} steps = {100 * parp_share:.2f} % of step time (goal <= 3 %)")
    print(f"fixed mask re-zeroing after each step: median {apply_s * 1000:.1f} ms = {100 * fixed_share:.2f} % of "
          f"step time (goal <= 3 %)")
    print(f"ratio upkeep/step: PARP {parp_share:.4f}, fixed {fixed_share:.4f}")


if __name__ == "__main__":
    main()
