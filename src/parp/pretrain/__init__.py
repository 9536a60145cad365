"""Self-supervised pretraining of a small wav2vec2-shaped encoder (BEST-RQ or wav2vec 2.0 contrastive), one
module per job."""
