"""IMP (iterative magnitude pruning with rewinding to the pretrained weights).

Fine-tune once; then for each of ``imp_rounds`` rounds: prune a fraction of the remaining weights (so round r
reaches ``1 - (1 - s) ** (r / R)``), rewind the survivors to their pretrained values (the CTC head to its
initial values) and fine-tune with the mask fixed. R + 1 fine-tunings in all.

With ``--imp-checkpoint`` the run continues a finished IMP run at a lower sparsity instead of starting from the
dense fine-tuning: one trajectory then yields IMP at every sparsity it passes (as in the lottery-ticket papers),
and each point's cost counts every round before it.
"""

from pathlib import Path

from .context import MethodContext
from .hooks import FixedMaskHook
from .rewind import rewind, snapshot


def round_sparsities(target: float, rounds: int, start: float = 0.0) -> list[float]:
    """Sparsity after each round: every round keeps the same fraction of the weights that survived the last."""
    keep = (1 - target) / (1 - start)
    return [1 - (1 - start) * keep ** ((r + 1) / rounds) for r in range(rounds)]


def run(ctx: MethodContext):
    model = ctx.new_model()
    pretrained = snapshot(model)
    start, rounds_done = 0.0, 0
    if ctx.args.imp_checkpoint:
        earlier = ctx.continue_run(model, Path(ctx.args.imp_checkpoint), "imp", "--imp-checkpoint")
        start = earlier.section("prune")["sparsity"]
        rounds_done = sum(p.name.startswith("prune-") for p in earlier.phases)
    else:
        ctx.dense_finetune(model, "finetune-0")
    mask = None
    for r, sparsity in enumerate(round_sparsities(ctx.args.sparsity, ctx.args.imp_rounds, start),
                                 start=rounds_done + 1):
        # magnitudes of surviving weights only: already-pruned ones are exactly zero and rank first
        mask = ctx.timed_mask(f"prune-{r}", lambda s=sparsity: ctx.magnitude_mask(model, s))
        rewind(model, pretrained)
        ctx.finetune(model, f"finetune-{r}", [FixedMaskHook(mask)])
    return model, mask
