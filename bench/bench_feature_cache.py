"""CPU fine-tuning step and validation time of the embedded encoder with the feature cache vs without it.

    python bench/bench_feature_cache.py [--threads 1] [--steps 6] [--rounds 3] [--batch-seconds 16]

Why: fine-tuning keeps the CNN feature encoder frozen, yet recomputes its features for every clip in every epoch
and every validation; at 10 minutes or 1 hour of audio a run sees each clip dozens of times. ``--feature-cache-mb``
(on by default on the CPU) computes them once. The reference is the same steps without the cache, interleaved round
by round so load on a shared machine hits both alike; the figure is the best round of each, in the cache's steady
state (every clip seen before, as from the second epoch on). Also printed: whether the first step's loss and
gradients are identical with and without it (they must be: the cache is exact). Batches: 16 s of real Mboshi
(../shared/data/mboshi) with unequal clip lengths and an attention mask when present, else noise.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from embedded_steps import embedded_ctc_model, mboshi_audio, step_args  # puts src/ on the path

from parp.training.feature_cache import feature_cache  # noqa: E402


def batch(seconds: float, clips: int = 4) -> tuple[dict[str, torch.Tensor], str]:
    """``clips`` clips of unequal length, ``seconds`` of audio in all, zero-padded with an attention mask."""
    lengths = [int(16000 * seconds * share) for share in np.linspace(1.5, 0.5, clips) / clips]
    audio, source = mboshi_audio(sum(lengths))
    values = torch.zeros(clips, max(lengths))
    mask = torch.zeros(clips, max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        start = sum(lengths[:i])
        values[i, :n] = torch.from_numpy(audio[start: start + n].copy())
        mask[i, :n] = 1
    return {"input_values": values, "attention_mask": mask}, source


def main() -> None:
    args = step_args(__doc__.splitlines()[0], "setting")
    plain = embedded_ctc_model()
    cached = copy.deepcopy(plain)
    x, source = batch(args.batch_seconds)
    labels = torch.randint(1, 48, (x["input_values"].shape[0], int(args.batch_seconds * 3)),
                           generator=torch.Generator().manual_seed(0))
    models = {"uncached": plain, "cached": cached}
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in models.items()}

    def step(name: str, seed: int | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if seed is not None:  # dropout and SpecAugment (numpy in transformers) draw the same numbers on both sides
            torch.manual_seed(seed)
            np.random.seed(seed)
        model = models[name].train()
        loss = model(**x, labels=labels).loss
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        optimizers[name].step()
        optimizers[name].zero_grad()
        return loss.detach(), grads

    def validate(name: str) -> None:
        with torch.no_grad():
            models[name].eval()(**x)

    with feature_cache(cached, 1024) as cache:
        assert cache is not None, "the embedded encoder's CNN should be cacheable"
        first = {name: step(name, seed=0) for name in models}  # the cached side's first step is a miss: fills the cache
        exact = torch.equal(first["uncached"][0], first["cached"][0]) and all(
            torch.equal(a, b) for a, b in zip(first["uncached"][1], first["cached"][1]))
        best = {(kind, name): float("inf") for kind in ("train step", "validation") for name in models}
        for _ in range(args.rounds):
            for kind, run in (("train step", step), ("validation", validate)):
                for name in models:
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        run(name)
                    best[kind, name] = min(best[kind, name], (time.perf_counter() - start) / args.steps)
    print(f"embedded encoder, {args.batch_seconds:g} s batches of 4 unequal clips "
          f"({source}), {args.threads} thread(s), "
          f"best of {args.rounds} rounds x {args.steps}; cache {cache.hits} hits, {cache.misses} misses")
    print(f"first step identical with the cache (loss and every gradient): {exact}")
    for kind in ("train step", "validation"):
        print(f"s per {kind}: uncached {best[kind, 'uncached']:.3f}, cached {best[kind, 'cached']:.3f}; "
              f"speed-up vs uncached: {best[kind, 'uncached'] / best[kind, 'cached']:.2f}x")


if __name__ == "__main__":
    main()
