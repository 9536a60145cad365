import math

import pytest
import torch

from parp.errors import MaskError
from parp.sparsity import (Mask, apply_mask, magnitude_mask, measure_sparsity, nm_mask, prunable_parameters,
                           random_mask, validate_sparsity)
from test_sparsity_targets import tiny_model


def params(seed=0, ties=False):
    gen = torch.Generator().manual_seed(seed)
    make = (lambda s: torch.randint(-2, 3, s, generator=gen).float()) if ties else (
        lambda s: torch.randn(s, generator=gen))
    return {"a.weight": make((16, 24)), "b.weight": make((40, 8)), "c.weight": make((8, 12))}


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.73, 0.9])
def test_magnitude_exact_counts(ties, sparsity):
    p = params(ties=ties)
    total = sum(t.numel() for t in p.values())
    g = Mask.magnitude(p, sparsity, scope="global")
    assert g.num_pruned() == round(sparsity * total)
    lay = Mask.magnitude(p, sparsity, scope="layer")
    for n, t in p.items():
        assert t.numel() - int(lay[n].sum()) == round(sparsity * t.numel())
    # every pruned |w| <= every kept |w|
    mags = torch.cat([t.abs().reshape(-1) for t in p.values()])
    keep = torch.cat([g[n].reshape(-1) for n in p])
    if 0 < keep.sum() < keep.numel():
        assert mags[~keep].max() <= mags[keep].min()


def test_magnitude_deterministic_tie_break():
    p = params(ties=True)
    m1, m2 = Mask.magnitude(p, 0.5), Mask.magnitude({n: t.clone() for n, t in p.items()}, 0.5)
    assert m1 == m2
    flat = {n: torch.ones_like(t) for n, t in p.items()}
    first = Mask.magnitude(flat, 0.5)
    order = torch.cat([first[n].reshape(-1) for n in flat])
    k = first.num_pruned()
    assert not order[:k].any() and order[k:].all()  # the first ones in (param, flat index) order are pruned


def test_random_exact_and_seeded():
    p = params()
    m = Mask.random(p, 0.6, seed=3)
    for n, t in p.items():
        assert t.numel() - int(m[n].sum()) == round(0.6 * t.numel())
    assert m == Mask.random(p, 0.6, seed=3) and m != Mask.random(p, 0.6, seed=4)


@pytest.mark.parametrize("ties", [False, True])
def test_n_m(ties):
    p = params(ties=ties)
    m = Mask.n_m(p, 2, 4)
    assert m.sparsity() == 0.5
    for n, t in p.items():
        groups = m[n].reshape(-1, 4)
        assert (groups.sum(1) == 2).all()
        mags = t.abs().reshape(-1, 4)
        kept_min = torch.where(groups, mags, torch.inf).min(1).values
        pruned_max = torch.where(~groups, mags, -torch.inf).max(1).values
        assert (pruned_max <= kept_min).all()
    assert Mask.n_m(p, 1, 4).sparsity() == 0.75
    with pytest.raises(MaskError, match="divisible"):
        Mask.n_m({"x": torch.ones(3, 6)}, 2, 4)


def test_apply_zeros_exactly_masked_and_measure():
    model = tiny_model("wav2vec2")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask = magnitude_mask(model, 0.6)
    apply_mask(model, mask)
    for n, p in model.named_parameters():
        if n in mask.masks:
            assert torch.equal(p[~mask[n]], torch.zeros_like(p[~mask[n]]))
            assert torch.equal(p[mask[n]], before[n][mask[n]])
        else:
            assert torch.equal(p, before[n])
    measured = measure_sparsity(model)
    assert measured.zeros == mask.num_pruned() and math.isclose(measured.overall, mask.sparsity())


def test_set_algebra_iou_overlap():
    p = params()
    m = Mask.magnitude(p, 0.5)
    assert m.iou(m) == 1.0 and m.overlap(m) == 1.0
    comp = ~m
    assert m.iou(comp) == 0.0 and m.overlap(comp) == 0.0
    assert all(v == 0.0 for v in m.iou_per_layer(comp).values())
    assert (m & comp).sparsity() == 1.0 and (m | comp).sparsity() == 0.0
    r = Mask.random(p, 0.5, seed=0)
    assert 0 < m.iou(r) < 1 and (m & r).num_pruned() >= max(m.num_pruned(), r.num_pruned())
    assert "total" in m.summary() and set(m.per_layer()) == set(p)


def test_save_load_round_trip(tmp_path):
    m = Mask.random(params(), 0.37, seed=1)
    path = m.save(tmp_path / "m.safetensors", metadata={"method": "random", "sparsity": 0.37})
    back = Mask.load(path)
    assert back == m and list(back) == list(m)
    assert back.metadata == {"method": "random", "sparsity": 0.37}
    assert path.stat().st_size < m.numel() // 8 + 2000  # packed bits


def test_incompatible_mask_file_names_file_and_param(tmp_path):
    model = tiny_model("wav2vec2")
    other = tiny_model("hubert")
    path = magnitude_mask(other, 0.5).save(tmp_path / "hubert_mask.safetensors")
    with pytest.raises(MaskError, match=r"hubert_mask\.safetensors.*no parameter 'hubert\."):
        Mask.load(path).apply_(model)
    p = params()
    bad = Mask.magnitude(p, 0.5)
    bad.masks["a.weight"] = torch.ones(3, 3, dtype=torch.bool)
    bad.save(tmp_path / "bad.safetensors")
    with pytest.raises(MaskError, match=r"bad\.safetensors.*'a\.weight' has shape \(16, 24\).*\(3, 3\)"):
        Mask.load(tmp_path / "bad.safetensors").check_compatible(p)
    with pytest.raises(MaskError, match="does not exist"):
        Mask.load(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan"), "0.5", None, True])
def test_invalid_sparsity_one_clear_error(value):
    with pytest.raises(MaskError, match="sparsity") as info:
        Mask.magnitude(params(), value)
    assert "\n" not in str(info.value)
    with pytest.raises(MaskError, match="target_sparsity"):
        validate_sparsity(value, name="target_sparsity")


def test_functional_front_and_to():
    model = tiny_model("hubert")
    assert random_mask(model, 0.5, seed=0).sparsity() == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(MaskError):
        nm_mask(model)  # intermediate_size 37 is not divisible by 4
    m = nm_mask(model, exclude=[r"output_dense"])
    assert m.sparsity() == 0.5 and m.to("cpu") == m
    assert set(magnitude_mask(model, 0.5, scope="layer").masks) == set(prunable_parameters(model))
