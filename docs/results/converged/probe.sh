#!/usr/bin/env bash
# Issue 27, point 3: how many updates the unpruned model needs to converge, per language and data size.
# Each run trains with a long linear schedule (6000 updates) and stops itself after 8 validations (800 updates)
# without a lower validation CER; the curves are in each run's run.json ("history"). Resumable: rerun the same line.
# Usage: bash docs/results/converged/probe.sh LANG HOURS SEED [MORE FLAGS]   (from the repository root; one thread)
#   LANG: a folder of ../shared/data (mboshi, yo, rw, ...); HOURS: 0.167 (10 min), 1, ... or all.
#   Elsewhere (a GPU machine): DATA=runs/gpu-audio MANIFEST=manifest.tsv PARP="python -m parp" bash ...probe.sh ...
set -euo pipefail
(( $# == 2 )) && set -- mboshi "$@"  # the first probes were started as: probe.sh HOURS SEED
lang=$1 hours=$2 seed=$3
subset=(--train-hours "$hours")
[[ "$hours" == all ]] && subset=()
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# shellcheck disable=SC2086
exec ${PARP:-.venv/bin/parp} finetune --train-manifest "${DATA:-../shared/data}/$lang/${MANIFEST:-train.tsv}" \
  "${subset[@]}" --max-valid-utterances 200 --max-steps 6000 --eval-every 100 --early-stopping-patience 8 \
  --save-every 200 --seed "$seed" --no-progress --output-dir "runs/converged/probe/$lang-h$hours-seed$seed" "${@:4}"
