"""Full fine-tuning: the 0 % sparsity reference. No mask is kept (an all-ones mask is returned)."""

from ..sparsity import Mask
from .context import MethodContext


def run(ctx: MethodContext):
    model = ctx.new_model()
    ctx.finetune(model, "finetune")
    return model, Mask.ones(ctx.targets(model))
