"""parp: Prune, Adjust and Re-Prune self-supervised speech models for low-resource ASR."""

__version__ = "0.1.0"
