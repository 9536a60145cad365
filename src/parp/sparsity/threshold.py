"""Exact k-th smallest magnitude over many tensors, without a full ``abs`` copy.

``torch.nn.utils.prune.global_unstructured`` concatenates every score into one tensor and runs ``topk``:
for wav2vec2-large (302 M weights) that is >13 GB and about a minute. Here the threshold is found by

1. sampling ~1 M magnitudes to bracket the k-th value in ``[lo, hi]`` (a few standard deviations wide);
2. one chunked pass (cache-sized chunks, reused buffers) counting ``|w| < lo`` and gathering the few
   ``|w|`` in the bracket; ``kthvalue`` among those gives the exact answer;
3. if the bracket missed (or a tie-heavy value would make the gather large), an exact two-level radix
   select on the int32 bits of ``|w|`` (non-negative float32 bits order like the floats) with ``bincount``.

Ties are resolved by the caller (:func:`keep_masks`): exactly ``k`` weights are pruned, and among the
weights equal to the threshold the first ones in (tensor order, flat index) are pruned.

Off the CPU (CUDA, or ``meta`` for shape checks) the same answer comes from device ops only
(:func:`_device_radix_select`): fixed-size histograms filled with ``index_add_``, ``cumsum`` and
``searchsorted``, so nothing is read back to the host per chunk; the counts stay 0-dim device tensors.
Every tensor either path allocates lives on its input's device.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import torch

from parp.errors import MaskError

DEFAULT_SAMPLE_SIZE = 1 << 20
DEFAULT_CHUNK_SIZE = 1 << 18  # 1 MiB of float32: temporaries stay in cache
DEFAULT_MAX_CANDIDATES = 1 << 24
DEVICE_CHUNK_SIZE = 1 << 23  # off the CPU: ~150 MB of temporaries per chunk, few kernel launches


@dataclass(frozen=True)
class Threshold:
    """The k-th smallest magnitude and how many magnitudes lie below / at it."""

    value: torch.Tensor  # 0-dim, dtype and device of the weights
    k: int
    n_below: int | torch.Tensor  # off the CPU: 0-dim int64 tensors on the weights' device (int() syncs)
    n_equal: int | torch.Tensor
    method: str  # "exact" | "bracket" | "point" | "radix" | "device" (which path found it; for benchmarks)

    @property
    def n_ties_pruned(self) -> int:
        """How many of the weights equal to ``value`` must be pruned so that exactly k are."""
        return self.k - self.n_below


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.detach().reshape(-1)


def _chunks(tensors: Sequence[torch.Tensor], chunk_size: int):
    for t in tensors:
        flat = _flat(t)
        for start in range(0, flat.numel(), chunk_size):
            yield flat[start : start + chunk_size]


def _exact_small(tensors, k: int) -> Threshold:
    mags = torch.cat([_flat(t).abs() for t in tensors])
    value = torch.kthvalue(mags, k).values
    n_below = int((mags < value).sum())
    n_equal = int((mags == value).sum())
    return Threshold(value, k, n_below, n_equal, "exact")


class _single_threaded_ops:
    """Run torch ops single-threaded while our own worker threads split the chunks.

    On a small shared CPU, per-op intra-op parallelism on cache-sized chunks spends most of its time in
    barriers (measured 2-50x slower under load); one chunk per worker thread has no barrier at all.
    """

    def __enter__(self):
        self.saved = torch.get_num_threads()
        torch.set_num_threads(1)
        return self.saved

    def __exit__(self, *exc):
        torch.set_num_threads(self.saved)


def _map_chunks(tensors, chunk_size, work):
    """Apply ``work(chunk, scratch) -> result`` to every chunk on N threads; results in chunk order."""
    return _map_items(list(_chunks(tensors, chunk_size)), work)


def _map_items(chunks, work):
    with _single_threaded_ops() as workers:
        workers = max(1, min(workers, len(chunks)))

        def run(worker):
            scratch = {}
            return [(i, work(chunks[i], scratch)) for i in range(worker, len(chunks), workers)]

        if workers == 1:
            pairs = run(0)
        else:
            with ThreadPoolExecutor(workers) as pool:
                pairs = [p for part in pool.map(run, range(workers)) for p in part]
    pairs.sort(key=lambda p: p[0])
    return [r for _, r in pairs]


def _scratch(scratch, key, n, dtype, device):
    buf = scratch.get(key)
    if buf is None or buf.numel() < n:
        buf = scratch[key] = torch.empty(n, dtype=dtype, device=device)
    return buf[:n]


def _count_u8(mask: torch.Tensor) -> int:
    return int(mask.view(torch.uint8).sum(dtype=torch.int32))  # ~4x faster than bool.sum()


def _count_range(tensors, lo, hi, chunk_size):
    """Return (#|w| < lo, #|w| <= hi) in one pass."""

    def work(chunk, scratch):
        m = chunk.numel()
        a = torch.abs(chunk, out=_scratch(scratch, "abs", m, chunk.dtype, chunk.device))
        flags = _scratch(scratch, "flags", m, torch.bool, chunk.device)
        return _count_u8(torch.lt(a, lo, out=flags)), _count_u8(torch.le(a, hi, out=flags))

    counts = _map_chunks(tensors, chunk_size, work)
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _gather_bracket(tensors, lo, hi, chunk_size, capacity):
    """One pass: count |w| < lo and collect |w| in [lo, hi] into one preallocated buffer.

    Returns (n_below_lo, candidates) or (n_below_lo, None) if more than ``capacity`` fall in the bracket.
    Writing into one buffer allocated here (not per-chunk results in the worker threads) matters: per-chunk
    results left ~1 GB of fragmented malloc arenas behind on 302 M weights.
    """
    dtype = tensors[0].dtype
    out = torch.empty(capacity, dtype=dtype, device=tensors[0].device)
    lock = threading.Lock()
    filled = [0]

    def work(chunk, scratch):
        m = chunk.numel()
        a = torch.abs(chunk, out=_scratch(scratch, "abs", m, dtype, chunk.device))
        within = _scratch(scratch, "within", m, torch.bool, chunk.device)
        n_lt = 0
        if lo is None:
            sel = torch.le(a, hi, out=within)
        else:
            lt = torch.lt(a, lo, out=_scratch(scratch, "below", m, torch.bool, chunk.device))
            n_lt = _count_u8(lt)
            if hi is None:
                sel = torch.logical_not(lt, out=within)
            else:
                # lt implies le (lo <= hi), so xor is "lo <= a <= hi"
                sel = torch.logical_xor(torch.le(a, hi, out=within), lt, out=within)
        n = _count_u8(sel)
        with lock:
            start = filled[0]
            filled[0] += n
        if start + n <= capacity and n:
            torch.masked_select(a, sel, out=out[start : start + n])
        return n_lt

    n_lt = sum(_map_chunks(tensors, chunk_size, work))
    if filled[0] > capacity:
        return n_lt, None
    return n_lt, out[: filled[0]]


def _radix_select(tensors, k: int, chunk_size: int) -> Threshold:
    """Exact k-th smallest |w| by a 15+16-bit histogram over float32 bits; memory bounded by a chunk."""
    dtype, device = tensors[0].dtype, tensors[0].device
    hist_hi = torch.zeros(1 << 15, dtype=torch.int64, device=device)
    for chunk in _chunks(tensors, chunk_size):
        bits = chunk.float().abs().view(torch.int32)
        hist_hi += torch.bincount(bits >> 16, minlength=1 << 15)
    cum = hist_hi.cumsum(0)
    top = int(torch.searchsorted(cum, k))  # first bin with cum >= k
    before = int(cum[top - 1]) if top > 0 else 0
    hist_lo = torch.zeros(1 << 16, dtype=torch.int64, device=device)
    for chunk in _chunks(tensors, chunk_size):
        bits = chunk.float().abs().view(torch.int32)
        hist_lo += torch.bincount(bits[(bits >> 16) == top] & 0xFFFF, minlength=1 << 16)
    cum_lo = hist_lo.cumsum(0)
    low = int(torch.searchsorted(cum_lo, k - before))
    n_below = before + (int(cum_lo[low - 1]) if low > 0 else 0)
    value = torch.tensor((top << 16) | low, dtype=torch.int32, device=device).view(torch.float32).to(dtype)
    return Threshold(value, k, n_below, int(hist_lo[low]), "radix")


def _cumulative(hist: torch.Tensor) -> torch.Tensor:
    """``[0, h0, h0+h1, ...]``: entry i counts everything in bins below i."""
    return torch.cat([hist.new_zeros(1), hist.cumsum(0)])


def _device_radix_select(tensors, k: int, chunk_size: int = DEVICE_CHUNK_SIZE) -> Threshold:
    """Exact k-th smallest |w| with device ops only: the accelerator path, also run on ``meta`` in tests.

    Same 15+16-bit radix select over float32 bits as :func:`_radix_select`, but every step stays on the device:
    histograms are filled with ``index_add_`` (``bincount`` reads its max back to the host), bins are found
    with ``cumsum`` + ``searchsorted`` against a device ``k``, and the result's counts are device tensors.
    Two passes over the weights, no gather, memory bounded by one chunk's temporaries.
    """
    dtype, device = tensors[0].dtype, tensors[0].device
    if dtype == torch.float64:  # float32 bits would round; rare enough for a plain exact select
        mags = torch.cat([_flat(t).abs() for t in tensors])
        value = torch.kthvalue(mags, k).values
        return Threshold(value, k, (mags < value).sum(), (mags == value).sum(), "device")
    one = torch.ones((), dtype=torch.int64, device=device)
    target = torch.full((1,), k, dtype=torch.int64, device=device)
    hist_hi = torch.zeros(1 << 15, dtype=torch.int64, device=device)
    for chunk in _chunks(tensors, chunk_size):
        bits = chunk.float().abs().view(torch.int32)
        hist_hi.index_add_(0, bits >> 16, one.expand(bits.numel()))
    top = torch.searchsorted(hist_hi.cumsum(0), target)  # first bin whose cumulative count reaches k
    before = _cumulative(hist_hi)[top]
    hist_lo = torch.zeros(1 << 16, dtype=torch.int64, device=device)
    for chunk in _chunks(tensors, chunk_size):
        bits = chunk.float().abs().view(torch.int32)
        hist_lo.index_add_(0, bits & 0xFFFF, ((bits >> 16) == top).to(torch.int64))
    low = torch.searchsorted(hist_lo.cumsum(0), target - before)
    n_below = (before + _cumulative(hist_lo)[low]).reshape(())
    value = ((top << 16) | low).to(torch.int32).view(torch.float32).to(dtype).reshape(())
    return Threshold(value, k, n_below, hist_lo[low].reshape(()), "device")


def global_kth_smallest(
    tensors: Sequence[torch.Tensor],
    k: int,
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    seed: int = 0,
) -> Threshold:
    """Exact k-th smallest (1-based) ``|w|`` over all elements of ``tensors``.

    ``sample_size`` / ``chunk_size`` / ``max_candidates`` only trade speed for memory; the answer is
    always exact. The sample is seeded so runs are reproducible (and the answer does not depend on it).
    """
    tensors = [t.detach() for t in tensors]
    if not tensors:
        raise MaskError("no tensors to threshold")
    if len({t.dtype for t in tensors}) != 1 or not tensors[0].is_floating_point():
        raise MaskError("all tensors to threshold must share one floating dtype")
    if len({t.device for t in tensors}) != 1:
        raise MaskError(f"all tensors to threshold must be on one device, got {sorted({str(t.device) for t in tensors})}")
    total = sum(t.numel() for t in tensors)
    if not 1 <= k <= total:
        raise MaskError(f"k must be in [1, {total}], got {k}")
    if tensors[0].device.type != "cpu":
        return _device_radix_select(tensors, k)
    if total <= 4 * sample_size:
        return _exact_small(tensors, k)

    # 1. Sample proportionally to tensor size and bracket the k-th value.
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for t in tensors:
        n = max(1, round(sample_size * t.numel() / total))
        idx = torch.randint(t.numel(), (n,), generator=gen, device="cpu").to(t.device)
        parts.append(_flat(t)[idx].abs())
    sample = torch.sort(torch.cat(parts)).values
    s = sample.numel()
    q = k / total
    pos = min(s - 1, max(0, math.ceil(q * s) - 1))
    margin = 6.0 * math.sqrt(s * q * (1 - q)) + 16
    i_lo, i_hi = math.floor(pos - margin), math.ceil(pos + margin)
    heavy = max(2, int(max_candidates / 8 * s / total))  # sample count that implies a huge tie

    def sample_count(v):
        return int(torch.searchsorted(sample, v, right=True) - torch.searchsorted(sample, v))

    target = sample[pos]
    if sample_count(target) >= heavy:
        # A value with huge multiplicity (typically 0.0 in an already pruned model): count, don't gather.
        n_lt, n_le = _count_range(tensors, target, target, chunk_size)
        if n_lt < k <= n_le:
            return Threshold(target.clone(), k, n_lt, n_le - n_lt, "point")
        return _radix_select(tensors, k, chunk_size)

    lo = sample[i_lo] if i_lo >= 0 else None
    hi = sample[i_hi] if i_hi < s else None
    # Move bracket ends off tie-heavy values so the gather stays small (target is strictly inside).
    if lo is not None and sample_count(lo) >= heavy:
        lo = sample[int(torch.searchsorted(sample, lo, right=True))]
    if hi is not None and sample_count(hi) >= heavy:
        hi = sample[int(torch.searchsorted(sample, hi)) - 1]

    # 2. One pass: count below the bracket, gather inside it.
    # Buffer for the gather: twice the sample's estimate of the bracket population (exactness does not
    # depend on it: an overflow falls back to the radix select).
    expected = (min(i_hi, s - 1) - max(i_lo, 0) + 1) / s * total
    capacity = int(min(max_candidates, 2 * expected + 4 * chunk_size))
    n_lt, found = _gather_bracket(tensors, lo, hi, chunk_size, capacity)
    if found is None or not (n_lt < k <= n_lt + found.numel()):
        return _radix_select(tensors, k, chunk_size)  # 3. the bracket missed: exact slow path
    value = torch.kthvalue(found, k - n_lt).values
    n_below = n_lt + int((found < value).sum())
    n_equal = int((found == value).sum())
    return Threshold(value, k, n_below, n_equal, "bracket")


def _device_keep_masks(tensors, threshold: Threshold) -> list[torch.Tensor]:
    """:func:`keep_masks` with device ops only: a tie is pruned while its rank among all ties (running count
    across tensors, kept on the device) is within the ties to prune."""
    value, prune_ties = threshold.value, threshold.n_ties_pruned
    seen = torch.zeros((), dtype=torch.int64, device=value.device)
    keep = []
    for t in tensors:
        a = t.detach().abs()
        tie = a == value
        rank = (seen + tie.reshape(-1).cumsum(0)).reshape(t.shape)  # 1-based rank among all ties so far
        keep.append(torch.gt(a, value).logical_or_(tie.logical_and_(rank > prune_ties)))
        seen = rank.reshape(-1)[-1] if t.numel() else seen
    return keep


def keep_masks(tensors: Sequence[torch.Tensor], threshold: Threshold) -> list[torch.Tensor]:
    """Bool keep-masks pruning exactly ``threshold.k`` weights; ties pruned first-in-order."""
    if tensors and tensors[0].device.type != "cpu":
        return _device_keep_masks(tensors, threshold)
    value = threshold.value
    keep = [torch.empty(t.shape, dtype=torch.bool, device=t.device) for t in tensors]
    pairs = [
        (chunk, out)
        for t, k in zip(tensors, keep)
        for chunk, out in zip(_flat(t).split(DEFAULT_CHUNK_SIZE), k.view(-1).split(DEFAULT_CHUNK_SIZE))
    ]

    def work(pair, scratch):
        chunk, out = pair
        a = torch.abs(chunk, out=_scratch(scratch, "abs", chunk.numel(), chunk.dtype, chunk.device))
        torch.gt(a, value, out=out)

    _map_items(pairs, work)
    surplus = threshold.n_equal - threshold.n_ties_pruned  # ties to keep: the LAST ones in order
    for t, mask in zip(reversed(tensors), reversed(keep)):
        if surplus <= 0:
            break
        ties = (t.detach().reshape(-1).abs() == value).nonzero().squeeze(1)
        take = ties[-surplus:] if ties.numel() > surplus else ties
        mask.view(-1)[take] = True
        surplus -= take.numel()
    return keep
