"""The model flags of ``parp finetune`` / ``prune``: which encoder, and the regularisation its config gets."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelArguments:
    """Which pretrained encoder a run starts from, and the regularisation its config gets (mirrors the CLI)."""

    model: str | None = field(default=None, metadata={
        "help": "Hub id (e.g. facebook/wav2vec2-xls-r-300m) or local folder; default: the embedded parp-ssl-small."})
    mask_time_prob: float = field(default=0.0, metadata={
        "help": "SpecAugment time-mask probability (0 = off: the recipe search found masking slows the short "
                "fine-tunings of the small embedded encoder; docs/results/recipe)."})
    mask_feature_prob: float = field(default=0.0, metadata={"help": "SpecAugment channel-mask probability."})
    layerdrop: float = field(default=0.0, metadata={"help": "LayerDrop probability."})
    dropout: float = field(default=0.0, metadata={"help": "Hidden/attention/activation dropout."})
    ctc_head_init: str = field(default="prior", metadata={
        "help": "CTC head bias at the start: prior (the log of each token's share of the training frames, the blank "
                "taking the frames no label needs: the model starts where the blank plateau is instead of spending "
                "its first updates learning it; docs/results/recipe) | random (transformers' init)."})
