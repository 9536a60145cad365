#!/usr/bin/env bash
# Issue 26, point 1: does every real language leave the CTC blank plateau with the default recipe? One short
# fine-tuning per language (400 updates, seed 0, the embedded encoder), scored on 100 utterances of its validation
# split. Not a baseline (not converged, one seed): a check that the text pipeline and the recipe learn each language.
#   bash docs/results/real-languages/smoke.sh LANG [LANG ...]     (from the repository root; one thread each)
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for lang in "$@"; do
    extra=()
    case $lang in
        tus) extra=(--token-unit ipa-phone --allow-unknown-chars) ;;   # IPA cut into phones (docs/data.md)
        qu | sw) extra=(--max-seconds 30) ;;                           # clips of 20-30 s (docs/data.md)
    esac
    "${PARP:-.venv/bin/parp}" finetune --train-manifest "../shared/data/$lang/train.tsv" --max-steps 400 \
        --eval-every 100 --save-every 200 --max-valid-utterances 100 --seed 0 --no-progress "${extra[@]}" \
        --output-dir "runs/real-languages/smoke/$lang"
done
