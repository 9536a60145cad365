"""Models: SSL speech encoders loaded as CTC models, tiny test configs, and the embedded default checkpoint."""

from pathlib import Path

from .load import ARCHITECTURES, load_ctc_model, load_finetuned_model, resolve_model_source, tiny_config, tiny_ctc_model

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def default_model_path() -> Path:
    """The small SSL checkpoint shipped inside the package (see its model card); used when no model is named."""
    return ASSETS / "parp-ssl-small"


__all__ = ["ARCHITECTURES", "default_model_path", "load_ctc_model", "load_finetuned_model", "resolve_model_source",
           "tiny_config", "tiny_ctc_model"]
