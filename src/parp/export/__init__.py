"""Exports of a pruned model: a dense HF folder with zeros baked in, or a compressed sparse checkpoint."""

from parp.export.compressed import compressed_mask, compression_report, load_compressed, save_compressed
from parp.export.hf import save_pruned_model

__all__ = ["compressed_mask", "compression_report", "load_compressed", "save_compressed", "save_pruned_model"]
