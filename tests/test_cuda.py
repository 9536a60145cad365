"""Every method end to end on a CUDA GPU, bf16, with exact exported sparsity; skipped where no GPU exists.

Run by ``bench/gpu_check.sh``. Device placement is also checked without a GPU (``test_sparsity_device.py``).
"""

from __future__ import annotations

import pytest
import torch
from helpers import synthetic_corpus, tiny_model_dir

from parp.data import DataArguments
from parp.methods import PruneArguments, run_prune
from parp.models import ModelArguments, load_finetuned_model
from parp.sparsity import Mask, measure_sparsity, prunable_parameters
from parp.sparsity.threshold import global_kth_smallest
from parp.training.loop import TrainConfig

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    return synthetic_corpus(root / "data", n=16), tiny_model_dir(root / "model")


def _prune(corpus, out, method, **kw):
    manifest, model = corpus
    return run_prune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                     ModelArguments(model=str(model), mask_time_prob=0.0),
                     TrainConfig(output_dir=str(out), max_steps=4, warmup_steps=0, eval_every=2, save_every=2,
                                 mixed_precision="bf16", progress=False),
                     PruneArguments(method=method, sparsity=0.5, prune_every=2, imp_rounds=2, **kw))


@pytest.mark.parametrize("method", ["none", "parp", "omp", "imp", "mpi", "random"])
def test_every_method_on_cuda_exports_exact_sparsity(corpus, tmp_path, method):
    summary = _prune(corpus, tmp_path / method, method)
    target = 0.0 if method == "none" else 0.5
    model = load_finetuned_model(summary["model"])
    assert measure_sparsity(model).overall == pytest.approx(target, abs=1e-6)
    if method != "none":
        mask = Mask.load(tmp_path / method / "model" / "mask.safetensors")
        assert mask.sparsity() == pytest.approx(0.5, abs=1e-6)


def test_parp_p_prime_from_a_mask_file_on_cuda(corpus, tmp_path):
    _prune(corpus, tmp_path / "omp", "omp")
    summary = _prune(corpus, tmp_path / "pp", "parp", initial_mask=str(tmp_path / "omp" / "model" / "mask.safetensors"))
    assert summary["method"] == "parp-p'"
    assert measure_sparsity(load_finetuned_model(summary["model"])).overall == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_masks_equal_cpu_masks(dtype):
    gen = torch.Generator().manual_seed(0)
    params = {f"w{i}": torch.randn(512, 1024, generator=gen).to(dtype) for i in range(12)}
    params["ties"] = torch.randint(-2, 3, (1024, 1024), generator=gen).to(dtype)
    cuda = {n: p.cuda() for n, p in params.items()}
    for scope in ("global", "layer"):
        on_gpu = Mask.magnitude(cuda, 0.7, scope=scope)
        assert {k.device.type for k in on_gpu.masks.values()} == {"cuda"}
        assert on_gpu.to("cpu") == Mask.magnitude(params, 0.7, scope=scope)
    assert Mask.n_m(cuda).to("cpu") == Mask.n_m(params) and Mask.random(cuda, 0.3).to("cpu") == Mask.random(params, 0.3)
    k = 4_000_000
    got = global_kth_smallest(list(cuda.values()), k)
    mags = torch.cat([p.abs().reshape(-1).float() for p in params.values()])
    assert got.value.item() == torch.kthvalue(mags, k).values.item()


def test_loaded_masks_placed_on_the_gpu():
    from parp.models import tiny_ctc_model

    model = tiny_ctc_model("wav2vec2").cuda()
    mask = Mask.magnitude({n: p.cpu() for n, p in prunable_parameters(model).items()}, 0.5)  # "loaded" on CPU
    mask.place_(model)
    assert {k.device.type for k in mask.masks.values()} == {"cuda"}
