"""PARP inside other people's training code: ``parp.integrations.transformers.PruningCallback`` for a
``transformers.Trainer`` / ``Seq2SeqTrainer`` script."""
