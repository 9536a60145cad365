"""Models: SSL speech encoders loaded as CTC models, tiny test configs, and the embedded default checkpoint."""

from .arguments import ModelArguments
from .features import AudioInput, audio_input, write_audio_input
from .families import ARCHITECTURES, FAMILIES, check_cli_family, tiny_config, tiny_ctc_model
from .load import (ASSETS, default_model_path, encoder_identity, load_ctc_model, load_finetuned_model,
                   resolve_model_source)

__all__ = ["ARCHITECTURES", "ASSETS", "AudioInput", "FAMILIES", "ModelArguments", "audio_input", "check_cli_family",
           "default_model_path", "encoder_identity", "load_ctc_model", "load_finetuned_model", "resolve_model_source",
           "tiny_config", "tiny_ctc_model", "write_audio_input"]
