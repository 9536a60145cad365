#!/usr/bin/env bash
# One recipe trial: a Mboshi CTC fine-tuning on one torch thread, sized by updates (not minutes, so that a busy machine changes the wall time, not the result)
# (the results issue's CPU budget per fine-tuning), record in runs/recipe/NAME/run.json.
# Usage: bash docs/results/recipe/trial.sh NAME [prune] [parp finetune flags...]   (a finished trial is not rerun;
# "prune" first runs `parp prune` with the same data and schedule instead of `parp finetune`)
set -euo pipefail
name=$1; shift
command=finetune
if [ "${1:-}" = prune ]; then command=prune; shift; fi
out=runs/recipe/$name
if [ -f "$out/run.json" ] && grep -q '"status": "completed"' "$out/run.json"; then echo "$name: done"; exit 0; fi
OMP_NUM_THREADS=1 .venv/bin/parp "$command" --train_manifest ../shared/data/mboshi/train.tsv \
  --max_valid_utterances 150 --seed 0 --save_every 300 --no_progress \
  --output_dir "$out" "$@"
