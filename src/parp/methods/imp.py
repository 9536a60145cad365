"""IMP (iterative magnitude pruning with rewinding to the pretrained weights).

Fine-tune once; then for each of ``imp_rounds`` rounds: prune a fraction of the remaining weights (so round r
reaches ``1 - (1 - s) ** (r / R)``), rewind the survivors to their pretrained values (the CTC head to its
initial values) and fine-tune with the mask fixed. R + 1 fine-tunings in all.
"""

from .base import MethodContext, rewind, snapshot
from .hooks import FixedMaskHook


def round_sparsities(target: float, rounds: int) -> list[float]:
    return [1 - (1 - target) ** ((r + 1) / rounds) for r in range(rounds)]


def run(ctx: MethodContext):
    model = ctx.new_model()
    pretrained = snapshot(model)
    ctx.dense_finetune(model, "finetune-0")
    mask = None
    for r, sparsity in enumerate(round_sparsities(ctx.args.sparsity, ctx.args.imp_rounds), start=1):
        # magnitudes of surviving weights only: already-pruned ones are exactly zero and rank first
        mask = ctx.timed_mask(f"prune-{r}", lambda s=sparsity: ctx.magnitude_mask(model, s))
        rewind(model, pretrained)
        ctx.finetune(model, f"finetune-{r}", [FixedMaskHook(mask)])
    return model, mask
