"""Running a pruned model fast: the form that actually skips its zeros (neurons removed, 2:4 sparse kernels)."""

from parp.inference.fast import FastForm, fast_form
from parp.inference.semi_structured import is_2_4, semi_structured_unsupported, to_semi_structured_

__all__ = ["FastForm", "fast_form", "is_2_4", "semi_structured_unsupported", "to_semi_structured_"]
