"""Models: SSL speech encoders loaded as CTC models, tiny test configs, and the embedded default checkpoint."""

from .arguments import ModelArguments
from .load import (ARCHITECTURES, ASSETS, default_model_path, encoder_identity, load_ctc_model, load_finetuned_model,
                   resolve_model_source, tiny_config, tiny_ctc_model)

__all__ = ["ARCHITECTURES", "ASSETS", "ModelArguments", "default_model_path", "encoder_identity", "load_ctc_model",
           "load_finetuned_model", "resolve_model_source", "tiny_config", "tiny_ctc_model"]
