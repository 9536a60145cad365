import pytest
import torch

from parp.errors import MaskError
from parp.sparsity.threshold import global_kth_smallest, keep_masks


def _reference(tensors, k):
    mags = torch.cat([t.abs().reshape(-1) for t in tensors])
    v = torch.kthvalue(mags, k).values
    return v, int((mags < v).sum()), int((mags == v).sum())


@pytest.fixture(scope="module")
def tensors():
    gen = torch.Generator().manual_seed(0)
    cont = [torch.randn(300, 400, generator=gen) for _ in range(5)]
    ties = [torch.randint(-3, 4, (500, 200), generator=gen).float()]  # many exact ties, incl. zeros
    return cont + ties


# small sample sizes force the bracket path; max_candidates=1 forces the radix fallback / point mode
PATHS = [dict(), dict(sample_size=1 << 12), dict(sample_size=1 << 12, max_candidates=1)]


@pytest.mark.parametrize("kw", PATHS)
@pytest.mark.parametrize("fraction", [1e-6, 0.1, 0.5, 0.7, 0.9, 1.0])
def test_exact_kth_on_every_path(tensors, kw, fraction):
    total = sum(t.numel() for t in tensors)
    k = max(1, int(fraction * total))
    got = global_kth_smallest(tensors, k, **kw)
    value, below, equal = _reference(tensors, k)
    assert (got.value.item(), got.n_below, got.n_equal) == (value.item(), below, equal)
    keep = keep_masks(tensors, got)
    assert sum(int((~m).sum()) for m in keep) == k


def test_paths_are_exercised(tensors):
    total = sum(t.numel() for t in tensors)
    methods = {global_kth_smallest(tensors, int(f * total), **kw).method for f in (0.3, 0.9) for kw in PATHS}
    assert {"exact", "bracket", "radix"} <= methods | {"point"}


def test_tie_break_prunes_first_in_order():
    a, b = torch.ones(2, 3), torch.ones(4)
    keep = keep_masks([a, b], global_kth_smallest([a, b], 7))
    assert keep[0].sum() == 0 and keep[1].tolist() == [False, True, True, True]


def test_bad_k():
    with pytest.raises(MaskError):
        global_kth_smallest([torch.ones(3)], 4)
