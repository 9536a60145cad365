"""Experiments: sweeps over languages x methods x sparsities x seeds, the multilingual subnetwork, mask
comparison and ``parp demo``."""

from ..sparsity.overlap import random_iou
from .masks import compare_masks
from ..results import read_results, write_results
from .cells import collect_results
from .grid import SweepConfig, load_sweep_config
from .sweep import run_sweep

__all__ = ["SweepConfig", "collect_results", "compare_masks", "load_sweep_config", "random_iou", "read_results",
           "run_sweep", "write_results"]
