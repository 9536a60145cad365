"""``parp prune``'s own options (:class:`PruneArguments`) and their checks, all made before any data is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, MaskError
from ..records import read_run
from ..sparsity import validate_sparsity
from ..sparsity.scopes import sparsifier

METHOD_NAMES = ("parp", "omp", "imp", "mpi", "random", "none")


@dataclass
class PruneArguments:
    method: str = field(default="parp", metadata={
        "help": "parp | omp | imp | mpi | random | none (PARP-P': parp with --initial-mask)."})
    sparsity: float = field(default=0.5, metadata={"help": "Target fraction of prunable weights set to zero, in [0, 1)."})
    scope: str = field(default="global", metadata={
        "help": "Magnitude ranking: global (across all prunable layers, the paper's) | layer (per layer) | 2:4 (N:M, "
                "sparse kernels on GPU) | ffn (whole feed-forward neurons by L2 norm, the same number per layer; "
                "also exported with the neurons removed: a smaller, faster model) | heads (whole attention heads by "
                "L2 norm, the same number per layer; masking only)."})
    prune_every: int = field(default=50, metadata={
        "help": "PARP: re-prune to the target every N updates (official code: ~50-150); 0 = never during "
                "fine-tuning, the final re-prune only (recorded as prune_every 0)."})
    imp_rounds: int = field(default=3, metadata={"help": "IMP: number of prune/rewind/fine-tune rounds."})
    initial_mask: str | None = field(default=None, metadata={
        "help": "PARP-P': start PARP from this mask file (e.g. OMP on another language)."})
    include_bias: bool = field(default=False, metadata={"help": "Also prune the biases of the target linears."})
    prune_feature_projection: bool = field(default=False, metadata={"help": "Also prune the feature projection."})
    prune_feature_encoder: bool = field(default=False, metadata={"help": "Also prune the CNN feature encoder."})
    prune_pos_conv: bool = field(default=False, metadata={"help": "Also prune the positional convolution."})
    compressed_checkpoint: bool = field(default=True, metadata={
        "help": "Also write the compressed sparse checkpoint (bitmask + non-zero values)."})
    dense_checkpoint: str | None = field(default=None, metadata={
        "help": "OMP/IMP: output folder of a finished --method none run with the same data and schedule; its "
                "fine-tuned weights replace the identical first dense fine-tuning (its steps and time still count)."})
    imp_checkpoint: str | None = field(default=None, metadata={
        "help": "IMP: output folder of a finished IMP run at a lower sparsity with the same data and schedule; "
                "its rounds are reused (their steps and time still count) and --imp-rounds more rounds continue "
                "from its fine-tuned weights to --sparsity (one IMP trajectory through several sparsities)."})


def validate_prune_arguments(args: PruneArguments) -> None:
    if args.method not in METHOD_NAMES:
        raise ConfigError(f"--method must be one of {', '.join(METHOD_NAMES)}, got {args.method!r}")
    validate_sparsity(args.sparsity, "--sparsity")
    try:
        sparsifier(args.scope, "--scope").check_options(
            [flag for flag, on in (("--include-bias", args.include_bias),
                                   ("--prune-feature-projection", args.prune_feature_projection),
                                   ("--prune-feature-encoder", args.prune_feature_encoder),
                                   ("--prune-pos-conv", args.prune_pos_conv)) if on])
    except MaskError as exc:
        raise ConfigError(str(exc)) from None
    if args.prune_every < 0:
        raise ConfigError(f"--prune-every must be >= 0, got {args.prune_every}")
    if args.imp_rounds < 1:
        raise ConfigError(f"--imp-rounds must be at least 1, got {args.imp_rounds}")
    if args.initial_mask and args.method != "parp":
        raise ConfigError(f"--initial-mask starts PARP-P' and needs --method parp, got --method {args.method}")
    if args.initial_mask and not Path(args.initial_mask).is_file():
        raise ConfigError(f"--initial-mask {args.initial_mask}: file not found")
    if args.dense_checkpoint and args.method not in ("omp", "imp"):
        raise ConfigError(f"--dense-checkpoint replaces the dense fine-tuning of omp/imp, not of {args.method}")
    if args.imp_checkpoint and args.method != "imp":
        raise ConfigError(f"--imp-checkpoint continues an IMP run and needs --method imp, got --method {args.method}")
    if args.imp_checkpoint and args.dense_checkpoint:
        raise ConfigError("--imp-checkpoint and --dense-checkpoint exclude each other: the IMP run given already "
                          "holds the dense fine-tuning")
    if args.imp_checkpoint:
        _check_imp_start(Path(args.imp_checkpoint), args.sparsity)


def _check_imp_start(source: Path, target: float) -> None:
    """The IMP run to continue must have stopped below the target (a trajectory only prunes further)."""
    run = read_run(source)
    earlier = run.section("prune").get("sparsity") if run else None
    if not isinstance(earlier, (int, float)):
        raise ConfigError(f"--imp-checkpoint {source}: no readable run.json of a 'parp prune --method imp' run")
    if not earlier < target:
        raise ConfigError(f"--imp-checkpoint {source}: that run reached sparsity {earlier:g}; continuing it needs a "
                          f"higher --sparsity, got {target:g}")
