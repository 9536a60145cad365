"""Exports of a pruned model: a dense HF folder with zeros baked in, a compressed sparse checkpoint, or (whole
feed-forward neurons pruned) a smaller HF folder with those neurons removed."""

from parp.export.compact import compact_ffn_, save_compact_model
from parp.export.compressed import compressed_mask, compression_report, load_compressed, save_compressed
from parp.export.card import model_card, write_model_card
from parp.export.hf import save_pruned_model

__all__ = ["compact_ffn_", "compressed_mask", "compression_report", "load_compressed", "model_card",
           "save_compact_model", "save_compressed", "save_pruned_model", "write_model_card"]
