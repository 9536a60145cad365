"""PARP: Prune the pretrained weights, Adjust (one fine-tuning in which pruned weights may grow back, with a
magnitude re-prune to the target every ``prune_every`` updates), Re-Prune at the end to exactly the target.

PARP-P' is the same with ``--initial-mask``: the first mask comes from a file (e.g. OMP on another language).
Default ``prune_every=50``: the official code re-pruned every ~50-150 updates; on our short low-resource
schedules (hundreds to a few thousand updates) 50 leaves room for many adjust/re-prune cycles, and upkeep is cheap.
"""

from ..errors import MaskError
from ..sparsity import Mask
from .context import MethodContext
from .hooks import PARPHook


def run(ctx: MethodContext):
    model = ctx.new_model()
    initial = None
    if ctx.args.initial_mask:
        initial = Mask.load(ctx.args.initial_mask)
        targets = ctx.targets(model)
        initial.check_compatible(targets)
        missing = sorted(set(targets) - set(initial.masks))
        if missing:  # a partial mask would only fail at the first re-prune, after minutes of training
            raise MaskError(f"--initial-mask {ctx.args.initial_mask} covers {len(initial.masks)} of the "
                            f"{len(targets)} parameters this run prunes (missing e.g. {missing[0]!r}); make it "
                            f"with the same --scope/--include-bias/--prune-* options")
    hook = PARPHook(ctx.mask_factory(), ctx.args.prune_every, initial_mask=initial,
                    adjusting_part=ctx.sparsifier.adjusting_part)
    ctx.finetune(model, "finetune", [hook])
    return model, hook.mask
