"""The fast form of a pruned model folder: neurons removed (--scope ffn), 2:4 kernels on GPU, else as loaded."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from parp.cli import main
from parp.data.text import Vocabulary
from parp.evaluation.evaluate import load_model_and_vocabulary
from parp.export import save_pruned_model
from parp.inference import fast_form, is_2_4, semi_structured_unsupported
from parp.models import tiny_ctc_model
from parp.sparsity import Mask, magnitude_mask, nm_mask
from parp.sparsity.structured import ffn_mask, ffn_parameters

VOCAB = Vocabulary(["[PAD]", "[UNK]", "|", "a", "b", "k", "m", "o"])


def _folder(tmp_path, make_mask, **overrides):
    model = tiny_ctc_model("wav2vec2", vocab_size=len(VOCAB), seed=0, **overrides).eval()
    mask = make_mask(model)
    out = save_pruned_model(model, mask, tmp_path / "model")  # applies the mask
    VOCAB.save(out)
    return model, mask, out


def _reload(out):
    from transformers import AutoModelForCTC

    return AutoModelForCTC.from_pretrained(out).eval()


def test_ffn_folder_runs_with_its_neurons_removed_and_the_same_outputs(tmp_path):
    masked, _, out = _folder(tmp_path, lambda m: ffn_mask(ffn_parameters(m), 0.5))
    fast = fast_form(_reload(out), out)
    assert fast.form == "ffn-compact" and fast.note is None
    assert fast.model.config.intermediate_size == 32
    x = torch.randn(2, 4000)
    with torch.no_grad():
        torch.testing.assert_close(fast.model(x).logits, masked(x).logits, rtol=1e-5, atol=1e-5)
    # evaluate/transcribe load it that way without being asked
    model, _ = load_model_and_vocabulary(str(out))
    assert model.config.intermediate_size == 32


def test_unstructured_and_unpruned_folders_run_as_loaded(tmp_path):
    _, _, out = _folder(tmp_path / "a", lambda m: magnitude_mask(m, 0.5))
    fast = fast_form(_reload(out), out)
    assert (fast.form, fast.note, fast.model.config.intermediate_size) == ("masked", None, 64)
    _, _, out = _folder(tmp_path / "b", lambda m: Mask.ones(ffn_parameters(m)))
    assert fast_form(_reload(out), out).form == "dense"
    (out / "mask.safetensors").unlink()
    assert fast_form(_reload(out), out).form == "dense"


def test_is_2_4_recognises_only_the_pattern():
    model = tiny_ctc_model("wav2vec2", seed=0)
    assert is_2_4(nm_mask(model, 2, 4)) and is_2_4(nm_mask(model, 1, 4))
    assert not is_2_4(magnitude_mask(model, 0.5)) and not is_2_4(nm_mask(model, 4, 8))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message printed where no GPU exists")
def test_2_4_folder_on_cpu_falls_back_with_one_line(tmp_path, capsys):
    assert semi_structured_unsupported("cpu", torch.float16) == "they need a CUDA GPU, the model is on cpu"
    _, _, out = _folder(tmp_path, lambda m: nm_mask(m, 2, 4))
    fast = fast_form(_reload(out), out)
    assert fast.form == "masked"
    assert fast.note == ("parp: note: 2:4 sparse kernels not used (they need a CUDA GPU, the model is on cpu); "
                         "running the dense masked model")
    audio = tmp_path / "a.wav"
    sf.write(audio, (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32), 16000)
    capsys.readouterr()
    assert main(["transcribe", str(out), str(audio)]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [fast.note]
    assert captured.out.startswith(f"{audio}\t")


def _gpu_2_4_ready() -> bool:
    return torch.cuda.is_available() and semi_structured_unsupported("cuda", torch.float16) is None


@pytest.mark.skipif(not _gpu_2_4_ready(), reason="2:4 sparse kernels need a CUDA GPU of compute capability 8.0+")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_2_4_folder_on_gpu_runs_sparse_kernels_with_the_masked_models_outputs(tmp_path, dtype):
    from torch.sparse import SparseSemiStructuredTensor

    shape = dict(hidden_size=256, intermediate_size=1024, num_attention_heads=4, num_hidden_layers=2)
    masked, _, out = _folder(tmp_path, lambda m: nm_mask(m, 2, 4), **shape)
    masked = masked.to("cuda", dtype)
    fast = fast_form(_reload(out).to("cuda", dtype), out)
    assert fast.form == "2:4-sparse" and fast.note is None
    layer = fast.model.wav2vec2.encoder.layers[0]
    assert isinstance(layer.feed_forward.intermediate_dense.weight, SparseSemiStructuredTensor)
    x = torch.randn(2, 16000, device="cuda", dtype=dtype)
    with torch.no_grad():
        expected = masked(x).logits.float()
        got = fast.model(x).logits.float()
    torch.testing.assert_close(got, expected, rtol=5e-2, atol=5e-2)
