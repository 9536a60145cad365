"""The mask engine off the CPU: exact on CPU tensors via the device path, device-correct on ``meta``.

``meta`` tensors have no data, so any op the engine runs on them must produce ``meta`` outputs; a scratch
buffer, histogram or output created on the CPU (the bug that crashed every method on CUDA) shows up here as a
CPU-device op output, and any host read-back (``int()``, ``.item()``) raises.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from parp.methods.hooks import FixedMaskHook, PARPHook
from parp.sparsity import Mask
from parp.sparsity.threshold import _device_keep_masks, _device_radix_select, global_kth_smallest, keep_masks
from parp.training.hooks import LoopState


class OutputDevices(TorchDispatchMode):
    """Records (op, device) of every tensor an aten op returns."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.seen.append((str(func), t.device.type))
        return out

    def off(self, device: str):
        return [(op, d) for op, d in self.seen if d != device]


@pytest.fixture(scope="module")
def tensors():
    gen = torch.Generator().manual_seed(0)
    cont = [torch.randn(300, 400, generator=gen) for _ in range(4)]
    ties = [torch.randint(-3, 4, (500, 200), generator=gen).float(), torch.zeros(7, 16)]  # ties incl. zeros
    return cont + ties


def _reference(tensors, k):
    mags = torch.cat([t.abs().reshape(-1).float() for t in tensors])
    v = torch.kthvalue(mags, k).values
    return v.item(), int((mags < v).sum()), int((mags == v).sum())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("fraction", [1e-6, 0.1, 0.5, 0.7, 0.9, 1.0])
def test_device_path_exact_and_same_masks_as_cpu_path(tensors, dtype, fraction):
    ts = [t.to(dtype) for t in tensors]
    total = sum(t.numel() for t in ts)
    k = max(1, int(fraction * total))
    got = _device_radix_select(ts, k, chunk_size=5000)  # many chunks: the running device counts must add up
    assert (got.value.item(), int(got.n_below), int(got.n_equal)) == _reference(ts, k)
    assert got.value.dtype == dtype
    keep = _device_keep_masks(ts, got)
    assert sum(int((~m).sum()) for m in keep) == k
    cpu = keep_masks(ts, global_kth_smallest(ts, k))
    assert all(torch.equal(a, b) for a, b in zip(keep, cpu))  # same tie-break: first ties in order pruned


def test_device_tie_break_prunes_first_in_order():
    a, b = torch.ones(2, 3), torch.ones(4)
    keep = _device_keep_masks([a, b], _device_radix_select([a, b], 7))
    assert keep[0].sum() == 0 and keep[1].tolist() == [False, True, True, True]


def _meta_params():
    gen = torch.Generator().manual_seed(1)
    shapes = {"a.weight": (64, 32), "b.weight": (32, 64), "c.weight": (16, 32)}
    return {n: torch.randn(s, generator=gen).to("meta") for n, s in shapes.items()}


BUILDERS = {
    "global": lambda p: Mask.magnitude(p, 0.5),
    "layer": lambda p: Mask.magnitude(p, 0.5, scope="layer"),
    "random": lambda p: Mask.random(p, 0.5, seed=3),
    "2:4": lambda p: Mask.n_m(p, 2, 4),
    "ones": lambda p: Mask.ones(p),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_mask_builder_stays_on_meta(name):
    params = _meta_params()
    with OutputDevices() as mode:
        mask = BUILDERS[name](params)
        mask.apply_(params)
    assert {k.device.type for k in mask.masks.values()} == {"meta"}
    if name != "random":  # random draws on a CPU generator by design (same mask on every device), then places
        assert mode.seen and mode.off("meta") == []


def test_threshold_on_meta_allocates_nothing_elsewhere():
    params = list(_meta_params().values())
    with OutputDevices() as mode:
        thr = global_kth_smallest(params, 1000)
        keep = keep_masks(params, thr)
    assert mode.seen and mode.off("meta") == []
    assert thr.value.device.type == thr.n_below.device.type == "meta"
    assert [k.device.type for k in keep] == ["meta"] * 3 and [k.shape for k in keep] == [p.shape for p in params]


def test_mixed_devices_one_clear_error():
    from parp.errors import MaskError

    with pytest.raises(MaskError, match="one device"):
        global_kth_smallest([torch.ones(3), torch.ones(3, device="meta")], 2)


def test_loaded_mask_placed_once_then_no_copies_per_step(tmp_path):
    cpu = {n: torch.randn(p.shape) for n, p in _meta_params().items()}
    Mask.magnitude(cpu, 0.5).save(tmp_path / "m.safetensors")
    params = _meta_params()
    loaded = Mask.load(tmp_path / "m.safetensors")
    with OutputDevices() as mode:
        loaded.apply_(params)
    assert any("_to_copy" in op for op, _ in mode.seen)  # unplaced: a host-to-device copy per apply
    loaded.place_(params)
    assert {k.device.type for k in loaded.masks.values()} == {"meta"}
    with OutputDevices() as mode:
        loaded.apply_(params)
    assert not any("_to_copy" in op or "copy_" in op for op, _ in mode.seen)


def _meta_model():
    with torch.device("meta"):
        return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Linear(64, 32))


def _weights(model):
    return {n: p for n, p in model.named_parameters() if n.endswith("weight")}


def test_hooks_place_restored_and_initial_masks_on_the_weights_device():
    model = _meta_model()
    state = LoopState(model=model, accelerator=None, config=None)
    cpu_mask = Mask({n: torch.rand(p.shape) > 0.5 for n, p in _weights(model).items()})

    fixed = FixedMaskHook(Mask(dict(cpu_mask.masks)))  # e.g. an IMP round's mask, or one restored on resume
    fixed.on_train_begin(state)
    assert {k.device.type for k in fixed.mask.masks.values()} == {"meta"}

    parp = PARPHook(lambda m: Mask.magnitude(_weights(m), 0.5), prune_every=2, initial_mask=Mask(dict(cpu_mask.masks)))
    parp.on_train_begin(state)  # PARP-P': --initial-mask comes from a file, on the CPU
    assert {k.device.type for k in parp.mask.masks.values()} == {"meta"}

    resumed = PARPHook(lambda m: Mask.magnitude(_weights(m), 0.5), prune_every=2)
    resumed.load_state_dict({**{f"mask.{n}": k.to(torch.uint8) for n, k in cpu_mask.masks.items()},
                             "started": True})
    resumed.on_train_begin(state)
    assert {k.device.type for k in resumed.mask.masks.values()} == {"meta"}

    fresh = PARPHook(lambda m: Mask.magnitude(_weights(m), 0.5), prune_every=2)
    with OutputDevices() as mode:
        fresh.on_train_begin(state)  # the first prune: computed and applied on the weights' device
    assert {k.device.type for k in fresh.mask.masks.values()} == {"meta"} and mode.off("meta") == []
