import pytest
import torch
import transformers

from parp.errors import MaskError
from parp.sparsity import prunable_parameters

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, conv_dim=(8, 8),
            conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2, vocab_size=12)
ARCHS = {
    "wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2ForCTC),
    "hubert": (transformers.HubertConfig, transformers.HubertForCTC),
    "wavlm": (transformers.WavLMConfig, transformers.WavLMForCTC),
    "data2vec-audio": (transformers.Data2VecAudioConfig, transformers.Data2VecAudioForCTC),
}


def tiny_model(arch):
    config_cls, model_cls = ARCHS[arch]
    torch.manual_seed(0)
    return model_cls(config_cls(**TINY))


@pytest.mark.parametrize("arch", list(ARCHS))
def test_default_scope_is_six_encoder_linears_per_layer(arch):
    model = tiny_model(arch)
    params = prunable_parameters(model)
    assert len(params) == TINY["num_hidden_layers"] * 6
    assert all(n.endswith(".weight") and "encoder.layers." in n for n in params)
    assert not any(s in n for n in params for s in ("lm_head", "feature", "pos_conv", "layer_norm", "gru_rel"))
    assert list(params) == [n for n, _ in model.named_parameters() if n in params]  # model order


@pytest.mark.parametrize("arch", list(ARCHS))
def test_optional_scopes(arch):
    model = tiny_model(arch)
    layers = TINY["num_hidden_layers"]
    assert len(prunable_parameters(model, include_bias=True)) == layers * 12
    assert len(prunable_parameters(model, include_feature_encoder=True)) == layers * 6 + 2
    assert len(prunable_parameters(model, include_feature_projection=True)) == layers * 6 + 1
    assert len(prunable_parameters(model, include_pos_conv=True)) > layers * 6
    assert "lm_head.weight" in prunable_parameters(model, extra_patterns=[r"^lm_head\.weight$"])
    assert len(prunable_parameters(model, exclude=[r"attention"])) == layers * 2


def test_wavlm_extra_attention_params_excluded_but_reachable():
    model = tiny_model("wavlm")
    assert not any("gru_rel_pos" in n for n in prunable_parameters(model))
    extra = prunable_parameters(model, extra_patterns=[r"gru_rel_pos_linear\.weight$"])
    assert sum("gru_rel_pos_linear" in n for n in extra) == TINY["num_hidden_layers"]


def test_nothing_matches_raises():
    with pytest.raises(MaskError, match="no prunable parameters"):
        prunable_parameters(torch.nn.Sequential(torch.nn.Linear(3, 3)))
