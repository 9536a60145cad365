"""Models: SSL speech encoders loaded as CTC models, tiny test configs, and the embedded default checkpoint."""

from .arguments import ModelArguments
from .families import ARCHITECTURES, FAMILIES, check_cli_family, tiny_config, tiny_ctc_model
from .load import (ASSETS, default_model_path, encoder_identity, load_ctc_model, load_finetuned_model,
                   resolve_model_source)

__all__ = ["ARCHITECTURES", "ASSETS", "FAMILIES", "ModelArguments", "check_cli_family", "default_model_path",
           "encoder_identity", "load_ctc_model", "load_finetuned_model", "resolve_model_source", "tiny_config",
           "tiny_ctc_model"]
