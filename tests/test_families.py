"""Every CTC family transformers registers for AutoModelForCTC, on a tiny random config of each (built offline).

The PARP scope of each family is checked against the documented per-layer count (README's family table); every
scope gives exact sparsity; neuron removal (--scope ffn) computes the same logits; the CLI's families run
fine-tune, PARP 50 %, evaluate, transcribe and both exports; the others are refused in one line naming the family.
"""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import synthetic_corpus, tiny_model_dir
from transformers import AutoModelForCTC
from transformers.models.auto.modeling_auto import MODEL_FOR_CTC_MAPPING_NAMES

from parp.errors import ModelError
from parp.export import load_compressed
from parp.export.compact import compact_ffn_
from parp.models import ARCHITECTURES, FAMILIES, load_ctc_model, load_finetuned_model, tiny_ctc_model
from parp.sparsity import Mask, prunable_parameters
from parp.sparsity.structured import ffn_mask, ffn_parameters

LAYERS = 2
# per encoder layer: (attention projections, feed-forward linears) of the PARP scope, as in the README's table
DOCUMENTED = {
    "wav2vec2": (4, 2), "hubert": (4, 2), "wavlm": (4, 2), "data2vec-audio": (4, 2), "unispeech": (4, 2),
    "unispeech-sat": (4, 2), "sew": (4, 2), "sew-d": (4, 2), "omniasr_ctc": (4, 2),
    "wav2vec2-conformer": (5, 4), "parakeet_ctc": (5, 4),  # + the relative-position projection; two FFN blocks
    "wav2vec2-bert": (4, 4), "lasr_ctc": (4, 4), "granite_speech5_ctc": (4, 4),
}
NEVER = ("lm_head", "ctc_head", "feature", "pos_conv", "subsampl", "conv_module", ".conv.", "norm", "gru_rel",
         "upsample", "input_linear", "encoder.out")


def _inputs(model, seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if model.main_input_name == "input_values":  # OmniASR: (batch, 1, samples)
        shape = (2, 1, 4000) if model.config.model_type == "omniasr_ctc" else (2, 4000)
        return {"input_values": torch.randn(*shape, generator=g)}
    if hasattr(model.config, "feature_projection_input_dim"):  # w2v-BERT: stacked filter banks
        width = model.config.feature_projection_input_dim
    else:  # Granite stacks 4 frames of mel bins into one input vector
        width = model.config.encoder_config.num_mel_bins * (4 if "granite" in model.config.model_type else 1)
    return {"input_features": torch.randn(2, 40, width, generator=g)}


@torch.no_grad()
def _logits(model, inputs) -> torch.Tensor:
    return model.eval()(**inputs).logits


def test_every_registered_ctc_family_is_known():
    assert set(FAMILIES) == set(MODEL_FOR_CTC_MAPPING_NAMES)
    assert set(DOCUMENTED) == set(FAMILIES)


@pytest.mark.parametrize("arch", sorted(FAMILIES))
def test_scope_is_the_documented_parameters_and_every_scope_is_exact(arch):
    model = tiny_ctc_model(arch, vocab_size=12)
    params = prunable_parameters(model)
    attention, ffn = DOCUMENTED[arch]
    assert len(params) == LAYERS * (attention + ffn)
    assert all(n.endswith(".weight") and p.dim() == 2 for n, p in params.items())
    assert not [n for n in params if any(s in n for s in NEVER)]
    for scope in ("global", "layer"):
        mask = Mask.magnitude(params, 0.5, scope=scope)
        assert mask.num_pruned() == round(0.5 * mask.numel()) if scope == "global" else mask.sparsity() == 0.5
    assert Mask.n_m(params, 2, 4).sparsity() == 0.5


@pytest.mark.parametrize("arch", sorted(FAMILIES))
def test_ffn_neuron_removal_keeps_the_logits_and_reloads_in_plain_transformers(arch, tmp_path):
    model = tiny_ctc_model(arch, vocab_size=12)
    params = ffn_parameters(model)
    assert len([n for n in params if n.endswith(".weight")]) == LAYERS * DOCUMENTED[arch][1]
    mask = ffn_mask(params, 0.5)
    mask.apply_(model)
    inputs = _inputs(model)
    expected = _logits(model, inputs)
    compact = compact_ffn_(copy.deepcopy(model), mask)
    assert sum(p.numel() for p in compact.parameters()) < sum(p.numel() for p in model.parameters())
    compact.save_pretrained(tmp_path)
    reloaded = AutoModelForCTC.from_pretrained(tmp_path)
    torch.testing.assert_close(_logits(reloaded, inputs), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(FAMILIES))
def test_parp_50_export_reloads_in_plain_transformers_with_the_same_logits(arch, tmp_path):
    from parp.export import save_compressed, save_pruned_model

    model = tiny_ctc_model(arch, vocab_size=12)
    mask = Mask.magnitude(prunable_parameters(model), 0.5)
    out = save_pruned_model(model, mask, tmp_path / "model")
    inputs = _inputs(model)
    reloaded = AutoModelForCTC.from_pretrained(out)
    torch.testing.assert_close(_logits(reloaded, inputs), _logits(model, inputs), rtol=0, atol=0)
    fresh = tiny_ctc_model(arch, vocab_size=12, seed=5)
    load_compressed(save_compressed(model, mask, tmp_path / "model.sparse.safetensors"), fresh)
    torch.testing.assert_close(_logits(fresh, inputs), _logits(model, inputs), rtol=0, atol=0)
    params = prunable_parameters(reloaded)
    assert sum(int((p == 0).sum()) for p in params.values()) == mask.num_pruned() == mask.numel() // 2


@pytest.mark.parametrize("arch", sorted(a for a in FAMILIES if FAMILIES[a].refused))
def test_cli_refuses_other_families_in_one_line_naming_them(arch, tmp_path):
    tiny_ctc_model(arch, vocab_size=12).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match=f"model family '{arch}'") as info:
        load_ctc_model(str(tmp_path), vocab_size=8)  # finetune, prune
    assert "\n" not in str(info.value) and "PruningCallback" in str(info.value)
    with pytest.raises(ModelError, match=f"model family '{arch}'"):
        load_finetuned_model(str(tmp_path))  # evaluate, transcribe


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthetic_corpus(tmp_path_factory.mktemp("corpus"), n=10)


def _cli_inputs(corpus, tmp_path, arch):
    from parp.data import DataArguments
    from parp.models import ModelArguments

    model_dir = tiny_model_dir(tmp_path / "encoder", arch)
    return DataArguments(train_manifest=str(corpus), valid_fraction=0.2), ModelArguments(model=str(model_dir))


def train(tmp_path, name, steps):
    from parp.training.loop import TrainConfig

    return TrainConfig(output_dir=str(tmp_path / name), max_steps=steps, learning_rate=5e-3, warmup_steps=0,
                       eval_every=0, save_every=0, max_batch_seconds=4, progress=False, lr_schedule="constant")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_cli_family_finetunes_prunes_evaluates_transcribes_and_exports(arch, corpus, tmp_path):
    from parp.evaluation.evaluate import EvaluateArguments, run_evaluate, transcribe
    from parp.methods import PruneArguments, run_prune
    from parp.training.finetune import run_finetune

    data, model_args = _cli_inputs(corpus, tmp_path, arch)
    finetuned = run_finetune(data, model_args, train(tmp_path, "finetune", 2))
    assert finetuned.train.steps == 2
    assert AutoModelForCTC.from_pretrained(finetuned.train.model_dir).config.model_type == arch
    summary = run_prune(data, model_args, train(tmp_path, "parp", 2),
                        PruneArguments(method="parp", sparsity=0.5, prune_every=1))
    assert summary["sparsity_achieved"] == 0.5

    exported = AutoModelForCTC.from_pretrained(tmp_path / "parp" / "model")  # plain transformers
    params = prunable_parameters(exported)
    zeros = sum(int((p == 0).sum()) for p in params.values())
    assert zeros == sum(p.numel() for p in params.values()) // 2
    assert len(params) == LAYERS * sum(DOCUMENTED[arch])
    inputs = _inputs(exported)
    fresh = AutoModelForCTC.from_pretrained(tmp_path / "parp" / "model")
    torch.nn.init.normal_(fresh.lm_head.weight)
    load_compressed(tmp_path / "parp" / "model.sparse.safetensors", fresh)
    torch.testing.assert_close(_logits(fresh, inputs), _logits(exported, inputs), rtol=0, atol=0)

    metrics = run_evaluate(EvaluateArguments(model=str(tmp_path / "parp" / "model"), manifest=str(corpus),
                                             output_dir=str(tmp_path / "eval"), progress=False, device="cpu"))
    assert 0 <= metrics["cer"] and (tmp_path / "eval" / "metrics.json").is_file()
    wav = next((corpus.parent / "audio").glob("*.wav"))
    assert len(transcribe(str(tmp_path / "parp" / "model"), [str(wav)], device="cpu")) == 1


@pytest.mark.parametrize("arch", ["wav2vec2-conformer", "sew-d"])
def test_cli_ffn_scope_on_two_block_and_bert_style_layers(arch, corpus, tmp_path):
    from parp.methods import PruneArguments, run_prune

    data, model_args = _cli_inputs(corpus, tmp_path, arch)
    summary = run_prune(data, model_args, train(tmp_path, "ffn", 2),
                        PruneArguments(method="parp", sparsity=0.5, prune_every=1, scope="ffn"))
    assert summary["sparsity_achieved"] == 0.5
    masked = AutoModelForCTC.from_pretrained(tmp_path / "ffn" / "model")
    compact = AutoModelForCTC.from_pretrained(summary["compact_model"])
    assert compact.config.intermediate_size == masked.config.intermediate_size // 2
    inputs = _inputs(masked)
    torch.testing.assert_close(_logits(compact, inputs), _logits(masked, inputs), rtol=1e-4, atol=1e-5)


def test_data_path_follows_the_models_own_feature_extractor(corpus, tmp_path):
    """A model whose extractor says 8 kHz without normalisation is fed 8 kHz raw samples, exports that setting, and
    evaluate / transcribe read it back; a filter-bank extractor is refused in one line."""
    import transformers

    from parp.evaluation.evaluate import EvaluateArguments, run_evaluate, transcribe
    from parp.methods import PruneArguments, run_prune
    from parp.models import audio_input
    from parp.training.finetune import prepare_finetune

    data, model_args = _cli_inputs(corpus, tmp_path, "wav2vec2")
    assert audio_input(model_args.model).sampling_rate == 16000  # no extractor saved: the defaults
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=8000, do_normalize=False).save_pretrained(model_args.model)
    setup = prepare_finetune(data, model_args, progress=False)
    item = setup.train_set[0]
    seconds = setup.train_set.durations[0]
    assert len(item["input_values"]) == pytest.approx(8000 * seconds, abs=2)
    assert float(item["input_values"].std()) < 0.5  # the corpus' noise has std 0.1: not normalised to 1
    summary = run_prune(data, model_args, train(tmp_path, "parp", 1), PruneArguments(method="parp", sparsity=0.5))
    saved = transformers.AutoFeatureExtractor.from_pretrained(summary["model"])  # plain transformers reads it
    assert (saved.sampling_rate, saved.do_normalize) == (8000, False)
    assert audio_input(summary["model"]).to_dict() == {"sampling_rate": 8000, "do_normalize": False}
    run_evaluate(EvaluateArguments(model=summary["model"], manifest=str(corpus), output_dir=str(tmp_path / "eval"),
                                   progress=False, device="cpu"))
    wav = next((corpus.parent / "audio").glob("*.wav"))
    assert len(transcribe(summary["model"], [str(wav)], device="cpu")) == 1

    transformers.SeamlessM4TFeatureExtractor().save_pretrained(model_args.model)
    with pytest.raises(ModelError, match="input_features, not raw waveforms") as info:
        prepare_finetune(data, model_args, progress=False)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("method, scope", [("omp", "global"), ("imp", "layer"), ("mpi", "2:4"), ("random", "ffn")])
def test_every_method_and_scope_on_a_conformer(method, scope, corpus, tmp_path):
    """Methods are family-agnostic recipes; the scope is what depends on the family: a conformer (two FFN blocks, a
    relative-position projection, a convolution module that stays dense) gets exact sparsity in each."""
    from parp.methods import PruneArguments, run_prune

    data, model_args = _cli_inputs(corpus, tmp_path, "wav2vec2-conformer")
    summary = run_prune(data, model_args, train(tmp_path, method, 1),
                        PruneArguments(method=method, sparsity=0.5, scope=scope, imp_rounds=2))
    assert summary["sparsity_achieved"] == 0.5
    mask = Mask.load(tmp_path / method / "model" / "mask.safetensors")
    assert not [n for n in mask if "conv_module" in n]
    assert len([n for n in mask if n.endswith(".weight")]) == LAYERS * (sum(DOCUMENTED["wav2vec2-conformer"])
                                                                         if scope != "ffn" else 4)


def test_parp_command_refuses_a_filter_bank_family_in_one_line(corpus, tmp_path, capsys):
    from parp.cli import main

    tiny_ctc_model("parakeet_ctc", vocab_size=12).save_pretrained(tmp_path / "parakeet")
    capsys.readouterr()  # the save's progress bar
    code = main(["finetune", "--train-manifest", str(corpus), "--model", str(tmp_path / "parakeet"),
                 "--output-dir", str(tmp_path / "out"), "--max-steps", "1", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and err.startswith("parp: error: "), err
    assert "'parakeet_ctc'" in err and "input_features" in err
