"""MPI (magnitude pruning at initialisation) and the random-mask baseline.

MPI prunes the *pretrained* weights by magnitude and fine-tunes with that mask fixed: PARP without regrowth.
The random baseline does the same with a random mask of the same per-layer sparsity.
"""

from .context import MethodContext
from .hooks import FixedMaskHook


def run(ctx: MethodContext):
    model = ctx.new_model()
    mask = ctx.timed_mask("prune", lambda: ctx.magnitude_mask(model))
    ctx.finetune(model, "finetune", [FixedMaskHook(mask)])
    return model, mask


def run_random(ctx: MethodContext):
    model = ctx.new_model()
    mask = ctx.timed_mask("prune", lambda: ctx.random_mask(model))
    ctx.finetune(model, "finetune", [FixedMaskHook(mask)])
    return model, mask
