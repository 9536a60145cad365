"""The one training loop and what runs around it: configuration, checkpoints, resume checks, output folders,
CTC fine-tuning."""
