"""OMP (one-shot magnitude pruning): fine-tune, prune the fine-tuned weights, fine-tune again with the mask
fixed. Two fine-tunings: the cost PARP halves."""

from .context import MethodContext
from .hooks import FixedMaskHook


def run(ctx: MethodContext):
    model = ctx.new_model()
    ctx.dense_finetune(model, "finetune-1")
    mask = ctx.timed_mask("prune", lambda: ctx.magnitude_mask(model))
    ctx.finetune(model, "finetune-2", [FixedMaskHook(mask)])
    return model, mask
