#!/usr/bin/env bash
# Issue 27, point 3: how many updates the unpruned model needs to converge on Mboshi at 10 min and 1 h.
# Each run trains with a long linear schedule (6000 updates) and stops itself after 8 validations (800 updates)
# without a lower validation CER; the curves are in each run's run.json ("history"). Resumable: rerun the same line.
# Usage: bash docs/results/converged/probe.sh HOURS SEED   (run from the repository root; one thread per run)
set -euo pipefail
hours=$1 seed=$2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/parp finetune --train-manifest ../shared/data/mboshi/train.tsv --train-hours "$hours" \
  --max-valid-utterances 200 --max-steps 6000 --eval-every 100 --early-stopping-patience 8 --save-every 200 \
  --seed "$seed" --no-progress --output-dir "runs/converged/probe/mboshi-h$hours-seed$seed"
