"""Argument checks kept apart from the mask maths (as in ``torch.nn.utils.prune._validate_pruning_amount``)."""

from __future__ import annotations

import math
import numbers

from parp.errors import MaskError


def validate_sparsity(value, name: str = "sparsity") -> float:
    """Return ``value`` as a float in [0, 1) or raise :class:`MaskError` with one line naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MaskError(f"{name} must be a number in [0, 1), got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise MaskError(f"{name} must be a number in [0, 1), got NaN")
    if value < 0 or value >= 1:
        raise MaskError(f"{name} must be in [0, 1) (fraction of weights pruned), got {value}")
    return value


def validate_n_m(n, m) -> tuple[int, int]:
    """N:M needs integers with 0 < n < m (n kept out of every m)."""
    for label, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise MaskError(f"N:M sparsity needs integer {label}, got {v!r}")
    if not 0 < n < m:
        raise MaskError(f"N:M sparsity needs 0 < n < m, got n={n}, m={m}")
    return int(n), int(m)
