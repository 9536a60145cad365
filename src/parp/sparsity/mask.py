"""The one mask abstraction every pruning method uses: ``{param_name: bool tensor}``, True = kept."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.numpy import load_file as _np_load_file
from safetensors.numpy import save_file as _np_save_file

from parp.errors import MaskError
from parp.sparsity.targets import resolve_parameters
from parp.sparsity.threshold import global_kth_smallest, keep_masks
from parp.sparsity.validation import validate_n_m, validate_sparsity

MASK_FORMAT = "parp-mask-packbits-v1"


def _num_to_prune(sparsity: float, numel: int) -> int:
    """Same rounding as torch.nn.utils.prune (``round(amount * n)``), so zero counts agree."""
    return int(round(sparsity * numel))


def pack_bits(keep: torch.Tensor) -> np.ndarray:
    """Bool tensor -> uint8 array, 8 weights a byte (row-major, big-endian bit order like np.packbits)."""
    return np.packbits(keep.detach().cpu().reshape(-1).numpy())


def unpack_bits(packed: np.ndarray, shape) -> torch.Tensor:
    numel = math.prod(shape)
    bits = np.unpackbits(packed, count=numel).view(np.bool_)
    return torch.from_numpy(bits.copy()).reshape(tuple(shape))


def _keep_largest(tensors: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Keep-masks pruning the ``round(sparsity * n)`` smallest |w| of the ``n`` weights of ``tensors`` together."""
    k = _num_to_prune(sparsity, sum(t.numel() for t in tensors))
    return keep_masks(tensors, global_kth_smallest(tensors, k)) if k else [torch.ones_like(t, dtype=torch.bool)
                                                                        for t in tensors]


# Mask.magnitude's ranking pools: True = one ranking over all tensors, False = one per tensor
_RANKING_POOLS = {"global": True, "layer": False}

_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


class Mask:
    """Named keep-masks for a set of parameters.

    Built by the classmethods (``magnitude``, ``random``, ``n_m``, ``ones``) from a ``{name: tensor}`` dict,
    usually ``prunable_parameters(model)``. ``source`` is the file a loaded mask came from (for errors).
    """

    def __init__(self, masks: Mapping[str, torch.Tensor], metadata: dict | None = None, source=None):
        for name, m in masks.items():
            if m.dtype != torch.bool:
                raise MaskError(f"mask for {name!r} must be a bool tensor, got {m.dtype}")
        self.masks: dict[str, torch.Tensor] = dict(masks)
        self.metadata: dict = dict(metadata or {})
        self.source = None if source is None else str(source)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def ones(cls, params: Mapping[str, torch.Tensor]) -> "Mask":
        return cls({n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()})

    @classmethod
    def magnitude(cls, params: Mapping[str, torch.Tensor], sparsity: float, scope: str = "global") -> "Mask":
        """Prune the smallest |w|: exactly ``round(sparsity * n)`` weights, over all tensors (``scope="global"``)
        or per tensor (``"layer"``): the ranking pool; the scopes of ``--scope`` are ``parp.sparsity.scopes``."""
        sparsity = validate_sparsity(sparsity)
        if scope not in _RANKING_POOLS:
            raise MaskError(f"scope must be 'global' or 'layer', got {scope!r}")
        params = dict(params)
        if not params:
            raise MaskError("no parameters to build a mask for")
        names, tensors = list(params), [p.detach() for p in params.values()]
        pools = [tensors] if _RANKING_POOLS[scope] else [[t] for t in tensors]
        keep = [m for pool in pools for m in _keep_largest(pool, sparsity)]
        return cls(dict(zip(names, keep)))

    @classmethod
    def random(cls, params: Mapping[str, torch.Tensor], sparsity: float, seed: int = 0) -> "Mask":
        """Layer-wise random pruning of exactly ``round(sparsity * n)`` weights per tensor (seeded).

        Drawn from a CPU generator and then placed on each weight's device (once, at mask creation), so a seed
        gives the same mask on every device and every torch build.
        """
        sparsity = validate_sparsity(sparsity)
        gen = torch.Generator().manual_seed(int(seed))
        masks = {}
        for name, p in params.items():
            keep = torch.ones(p.numel(), dtype=torch.bool)
            k = _num_to_prune(sparsity, p.numel())
            keep[torch.randperm(p.numel(), generator=gen)[:k]] = False
            masks[name] = keep.reshape(p.shape).to(p.device)
        return cls(masks)

    @classmethod
    def random_like(cls, mask: "Mask", seed: int = 0) -> "Mask":
        """A random mask pruning exactly as many weights in each tensor as ``mask`` does (seeded).

        The control for a mask's *content*: it keeps the per-tensor (hence per-layer) sparsity profile that global
        magnitude pruning chose, and draws which weights go at random. Drawn on the CPU like :meth:`random`.
        """
        gen = torch.Generator().manual_seed(int(seed))
        masks = {}
        for name, keep in mask.masks.items():
            numel = keep.numel()
            drawn = torch.ones(numel, dtype=torch.bool)
            drawn[torch.randperm(numel, generator=gen)[:numel - int(keep.sum())]] = False
            masks[name] = drawn.reshape(keep.shape)
        return cls(masks)

    @classmethod
    def n_m(cls, params: Mapping[str, torch.Tensor], n: int = 2, m: int = 4) -> "Mask":
        """Keep the ``n`` largest |w| of every ``m`` consecutive weights along the input (last) dim.

        Ties keep the earlier weight (stable sort), so the result is deterministic; sparsity is exactly 1-n/m.
        """
        n, m = validate_n_m(n, m)
        masks = {}
        for name, p in params.items():
            if p.dim() < 2 or p.shape[-1] % m:
                raise MaskError(
                    f"N:M ({n}:{m}) needs the input dim divisible by {m}: {name!r} has shape {tuple(p.shape)}"
                )
            groups = p.detach().abs().reshape(-1, m)
            order = torch.sort(groups, dim=1, descending=True, stable=True).indices
            keep = torch.zeros_like(groups, dtype=torch.bool)
            keep.scatter_(1, order[:, :n], True)
            masks[name] = keep.reshape(p.shape)
        return cls(masks)

    # ---------------------------------------------------------------- applying
    def check_compatible(self, model_or_params) -> None:
        """Raise :class:`MaskError` naming the mask file, parameter and shapes if this mask does not fit."""
        params = resolve_parameters(model_or_params)
        where = f"mask file {self.source!r}" if self.source else "mask"
        for name, keep in self.masks.items():
            if name not in params:
                raise MaskError(f"{where} does not fit the model: the model has no parameter {name!r}")
            if tuple(params[name].shape) != tuple(keep.shape):
                raise MaskError(
                    f"{where} does not fit the model: parameter {name!r} has shape "
                    f"{tuple(params[name].shape)} in the model but {tuple(keep.shape)} in the mask"
                )

    @torch.no_grad()
    def apply_(self, model_or_params) -> None:
        """Zero the pruned weights in place.

        Multiplies the weights' *bit patterns* (an integer view) by the 0/1 mask: pruned weights become exactly
        +0.0 (no -0.0, no NaN from inf * 0), kept ones are untouched bit for bit, and it runs ~8x faster than
        ``masked_fill_`` on CPU (0.12 s vs 0.96 s for wav2vec2-base's 85 M prunable weights, one thread) — this
        runs after every optimizer step for fixed-mask methods.
        """
        params = resolve_parameters(model_or_params)
        self.check_compatible(params)
        for name, keep in self.masks.items():
            w = params[name]
            # a no-op when the mask was placed (``place_``); otherwise a copy per call, still correct
            w.view(_SAME_SIZE_INT[w.element_size()]).mul_(keep.to(w.device, non_blocking=True))

    # ---------------------------------------------------------------- set algebra and statistics
    def _check_same_names(self, other: "Mask") -> None:
        if self.masks.keys() != other.masks.keys():
            diff = sorted(self.masks.keys() ^ other.masks.keys())
            raise MaskError(f"masks cover different parameters (e.g. {diff[0]!r}): they come from different models")

    def __and__(self, other: "Mask") -> "Mask":
        """Kept in both (prunes the union of the pruned sets)."""
        self._check_same_names(other)
        return Mask({n: k & other.masks[n].to(k.device) for n, k in self.masks.items()})

    def __or__(self, other: "Mask") -> "Mask":
        self._check_same_names(other)
        return Mask({n: k | other.masks[n].to(k.device) for n, k in self.masks.items()})

    def __invert__(self) -> "Mask":
        return Mask({n: ~k for n, k in self.masks.items()})

    def __eq__(self, other) -> bool:
        return (isinstance(other, Mask) and self.masks.keys() == other.masks.keys()
                and all(torch.equal(k, other.masks[n].to(k.device)) for n, k in self.masks.items()))

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.masks[name]

    def __iter__(self):
        return iter(self.masks)

    def numel(self) -> int:
        return sum(k.numel() for k in self.masks.values())

    def num_pruned(self) -> int:
        return sum(k.numel() - int(k.sum()) for k in self.masks.values())

    def sparsity(self) -> float:
        """Fraction of masked (pruned) entries over all parameters."""
        total = self.numel()
        return self.num_pruned() / total if total else 0.0

    def per_layer(self) -> dict[str, float]:
        return {n: 1.0 - int(k.sum()) / k.numel() if k.numel() else 0.0 for n, k in self.masks.items()}

    def pruned_counts(self, other: "Mask") -> dict[str, tuple[int, int, int, int]]:
        """Per parameter: weights pruned by (both, either, this mask, the other) — what IoU and overlap come from."""
        self._check_same_names(other)
        rows = []
        for name, keep in self.masks.items():
            mine, theirs = ~keep, ~other.masks[name].to(keep.device)
            rows.append(torch.stack([(mine & theirs).sum(), (mine | theirs).sum(), mine.sum(), theirs.sum()]))
        if not rows:
            return {}
        device = rows[0].device  # one read-back for all parameters (a host sync per count costs on a GPU)
        table = torch.stack([r.to(device) for r in rows]).tolist()
        return {name: tuple(row) for name, row in zip(self.masks, table)}

    @staticmethod
    def _ratio(part: int, whole: int) -> float:
        return part / whole if whole else 1.0

    def iou(self, other: "Mask") -> float:
        """Intersection over union of the PRUNED sets, over all parameters (1.0 when both prune nothing)."""
        counts = self.pruned_counts(other).values()
        return self._ratio(sum(c[0] for c in counts), sum(c[1] for c in counts))

    def iou_per_layer(self, other: "Mask") -> dict[str, float]:
        return {n: self._ratio(c[0], c[1]) for n, c in self.pruned_counts(other).items()}

    def overlap(self, other: "Mask") -> float:
        """Fraction of ``other``'s pruned weights also pruned here (1.0 if ``other`` prunes nothing)."""
        counts = self.pruned_counts(other).values()
        return self._ratio(sum(c[0] for c in counts), sum(c[3] for c in counts))

    def summary(self) -> str:
        """Plain-text table: one row per parameter plus the total."""
        width = max([len(n) for n in self.masks] + [9])
        lines = [f"{'parameter':<{width}}  {'shape':>14}  {'kept':>12}  {'sparsity':>8}"]
        for n, k in self.masks.items():
            kept = int(k.sum())
            sp = 1 - kept / k.numel() if k.numel() else 0.0
            lines.append(f"{n:<{width}}  {str(tuple(k.shape)):>14}  {kept:>12}  {sp:>8.2%}")
        total = self.numel()
        lines.append(f"{'total':<{width}}  {'':>14}  {total - self.num_pruned():>12}  {self.sparsity():>8.2%}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Mask({len(self.masks)} tensors, {self.numel()} weights, sparsity={self.sparsity():.4f})"

    # ---------------------------------------------------------------- devices and ranks
    def to(self, device) -> "Mask":
        return Mask({n: k.to(device) for n, k in self.masks.items()}, self.metadata, self.source)

    def place_(self, model_or_params) -> "Mask":
        """Move each mask to its weight's device, in place; returns self.

        Masks loaded from files, checkpoints or a gloo broadcast arrive on the CPU; placing them once where the
        weights live keeps ``apply_`` (run after every optimizer step) free of host-to-device copies.
        """
        params = resolve_parameters(model_or_params)
        self.check_compatible(params)
        for name, keep in self.masks.items():
            self.masks[name] = keep.to(params[name].device)
        return self

    def broadcast_(self, src: int = 0) -> "Mask":
        """Make every rank hold rank ``src``'s mask (no-op unless torch.distributed is initialised)."""
        if not (dist.is_available() and dist.is_initialized()):
            return self
        backend = dist.get_backend()
        device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        for name in sorted(self.masks):
            keep = self.masks[name]
            buf = keep.to(device=device, dtype=torch.uint8)
            dist.broadcast(buf, src=src)
            self.masks[name] = buf.to(device=keep.device, dtype=torch.bool)
        return self

    # ---------------------------------------------------------------- files
    def save(self, path, metadata: dict | None = None) -> Path:
        """Safetensors file with one packed-bit uint8 tensor per parameter; shapes + metadata in the header."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.metadata, **(metadata or {})}
        tensors = {n: pack_bits(k) for n, k in self.masks.items()}
        header = {
            "format": MASK_FORMAT,
            "shapes": json.dumps({n: list(k.shape) for n, k in self.masks.items()}),
            "order": json.dumps(list(self.masks)),
            "metadata": json.dumps(meta, default=str),
        }
        _np_save_file(tensors, str(path), metadata=header)
        return path

    @classmethod
    def load(cls, path) -> "Mask":
        path = Path(path)
        if not path.is_file():
            raise MaskError(f"mask file {str(path)!r} does not exist")
        try:
            with safe_open(str(path), framework="np") as f:
                header = f.metadata() or {}
            if header.get("format") != MASK_FORMAT:
                raise MaskError(f"mask file {str(path)!r} is not a parp mask (format {header.get('format')!r})")
            shapes = json.loads(header["shapes"])
            order = json.loads(header["order"])
            arrays = _np_load_file(str(path))
        except MaskError:
            raise
        except Exception as exc:  # corrupt header / truncated file
            raise MaskError(f"mask file {str(path)!r} cannot be read: {exc}") from None
        masks = {}
        for name in order:
            if name not in arrays or name not in shapes:
                raise MaskError(f"mask file {str(path)!r} is damaged: it names {name!r} but holds no such tensor")
            try:
                if arrays[name].size != math.ceil(math.prod(shapes[name]) / 8):  # unpackbits would pad zeros
                    raise ValueError(f"{arrays[name].size} bytes stored")
                masks[name] = unpack_bits(arrays[name], shapes[name])
            except (ValueError, RuntimeError, TypeError) as exc:
                raise MaskError(f"mask file {str(path)!r} is damaged: {name!r} does not unpack to shape "
                                f"{shapes[name]} ({exc})") from None
        return cls(masks, json.loads(header.get("metadata", "{}")), source=path)
