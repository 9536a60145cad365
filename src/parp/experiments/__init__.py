"""Experiments: sweeps over languages x methods x sparsities x seeds, the multilingual subnetwork, mask
comparison and ``parp demo``."""

from .masks import compare_masks, random_iou
from .sweep import SweepConfig, collect_results, load_sweep_config, read_results, run_sweep, write_results

__all__ = ["SweepConfig", "collect_results", "compare_masks", "load_sweep_config", "random_iou", "read_results",
           "run_sweep", "write_results"]
