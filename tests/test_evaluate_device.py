"""Decoding on a chosen device in length batches: the same transcripts batched or not, one-line device errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from parp.cli import main
from parp.data.text import Vocabulary
from parp.evaluation.evaluate import load_model_and_vocabulary, transcribe
from parp.evaluation.inference import batch_seconds, ctc_logits, resolve_device
from parp.models import tiny_ctc_model


def _model_dir(root, norm: str):
    vocabulary = Vocabulary.build(["a b c d e f g h"])
    # 2 groups of 16 channels in the positional conv, not tiny_config's 4 of 8: PyTorch's CPU bf16 grouped conv1d
    # returns garbage with 8 channels per group and an even kernel (relative error ~1 under torch 2.11 and 2.13;
    # real encoders have 16-64 channels per group, where it is exact to bf16 rounding, as
    # test_bf16_grouped_conv_of_real_encoder_shapes_is_accurate checks), which failed the bf16 check below on torch 2.11
    model = tiny_ctc_model("wav2vec2", vocab_size=len(vocabulary), seed=0, feat_extract_norm=norm,
                           do_stable_layer_norm=norm == "layer", num_conv_pos_embedding_groups=2)
    with torch.no_grad():  # a random head predicts blank everywhere; spread its outputs so decoding has text
        model.lm_head.weight.mul_(50)
    model.save_pretrained(root)
    vocabulary.save(root)
    return root


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    paths = []
    for i, seconds in enumerate([0.6, 1.7, 1.1, 0.9, 2.3, 1.2]):  # unequal lengths: real padding in a batch
        path = root / f"c{i}.wav"
        sf.write(path, (0.3 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_batched_transcripts_equal_one_by_one(tmp_path, clips, norm):
    model_dir = _model_dir(tmp_path / norm, norm)
    batched = transcribe(str(model_dir), clips, device="cpu", max_batch_seconds=100.0)
    single = transcribe(str(model_dir), clips, device="cpu", max_batch_seconds=1e-6)
    assert [p for p, _ in batched] == clips  # results come back in the order given, not length order
    assert batched == single
    assert any(text for _, text in batched)  # something was decoded (not all blanks), so equality means something


def test_layer_norm_model_batches_and_logits_match(tmp_path, clips):
    model, _ = load_model_and_vocabulary(str(_model_dir(tmp_path / "m", "layer")))
    model.eval()
    assert batch_seconds(model, 30.0) == 30.0
    waves = [torch.from_numpy(sf.read(p, dtype="float32")[0]) for p in clips[:3]]
    longest = max(len(w) for w in waves)
    values = torch.zeros(len(waves), longest)
    mask = torch.zeros(len(waves), longest, dtype=torch.long)
    for i, w in enumerate(waves):
        values[i, : len(w)], mask[i, : len(w)] = w, 1
    cpu = torch.device("cpu")
    logits, lengths = ctc_logits(model, values, mask, cpu, None)
    for i, w in enumerate(waves):
        alone, (n,) = ctc_logits(model, w[None], torch.ones(1, len(w), dtype=torch.long), cpu, None)
        assert lengths[i] == n
        torch.testing.assert_close(logits[i, :n], alone[0, :n], atol=1e-4, rtol=1e-4)
    bf16, _ = ctc_logits(model, values, mask, cpu, torch.bfloat16)  # the GPU's autocast path, run on the CPU
    assert bf16.dtype == torch.float32
    for i, n in enumerate(lengths):  # frames past an utterance's length are padding: never decoded, not compared
        assert (bf16[i, :n] - logits[i, :n]).abs().max() < 0.25 * logits[i, :n].abs().max()


@pytest.mark.parametrize("channels, groups", [(256, 16), (768, 16)])  # parp-ssl-small, wav2vec2-base
def test_bf16_grouped_conv_of_real_encoder_shapes_is_accurate(channels, groups):
    """The positional conv of real encoders is outside the CPU bf16 kernel bug the tiny test model avoids above."""
    torch.manual_seed(0)
    x, w = torch.randn(2, channels, 60), 0.05 * torch.randn(channels, channels // groups, 64)
    exact = torch.nn.functional.conv1d(x.double(), w.double(), padding=32, groups=groups)
    bf16 = torch.nn.functional.conv1d(x.bfloat16(), w.bfloat16(), padding=32, groups=groups).double()
    assert (bf16 - exact).abs().max() < 0.02 * exact.abs().max()


def test_group_norm_model_decodes_one_utterance_per_batch(tmp_path):
    model, _ = load_model_and_vocabulary(str(_model_dir(tmp_path / "g", "group")))
    assert batch_seconds(model, 30.0) < 1e-3


def test_cuda_device_without_a_gpu_is_one_line(tmp_path, clips, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --device cuda is valid here")
    model_dir = _model_dir(tmp_path / "m", "layer")
    capsys.readouterr()  # saving the model prints a progress bar
    assert main(["transcribe", str(model_dir), clips[0], "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("parp: error: --device cuda")
    assert resolve_device("auto").type == "cpu"
