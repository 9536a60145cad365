#!/usr/bin/env bash
# Copy finished cells and probes of the running experiments into their committed records folders (run by
# cpu_queue.sh every 5 minutes; by hand before a session ends). Copies only: committing is left to the session.
# Each sweep: collect its finished cells (parp sweep --collect_only), merge them into the records folder
# (keep_records.py), score their models on the validation utterances early stopping never saw (unselected.py).
set -uo pipefail
cd "$(git rev-parse --show-toplevel)" || exit 1
export OMP_NUM_THREADS=1
parp=${PARP:-.venv/bin/parp} python=${PYTHON:-.venv/bin/python}
# "CONFIG [EXTRA FLAGS]" "RECORDS [--masks: keep the pruned cells' masks too, for the mask analyses]"
sweeps=(
  "docs/results/converged/mboshi-0.167h.yaml --max_steps 1400" docs/results/converged/records/mboshi-0.167h
  "docs/results/converged/mboshi-1h.yaml --max_steps 2200" docs/results/converged/records/mboshi-1h
  docs/results/converged/real-1h.yaml docs/results/converged/records/real-1h
  "docs/results/converged/mboshi-all.yaml --max_steps 4600" docs/results/converged/records/mboshi-all
  docs/results/real-languages/probes-1h.yaml docs/results/real-languages/records/1h
  docs/results/real-languages/cross-1h.yaml "docs/results/real-languages/records/cross-1h --masks"
  "docs/results/real-languages/baselines-all.yaml" docs/results/real-languages/records/all
)
for ((i = 0; i < ${#sweeps[@]}; i += 2)); do
  config=${sweeps[i]} records=${sweeps[i + 1]%% *} keep_flags=${sweeps[i + 1]#"$records"}
  out=$(awk '/^output_dir:/ {print $2}' "${config%% *}")
  [[ -d $out/cells ]] || continue
  # shellcheck disable=SC2086
  $parp sweep --config $config --collect_only > /dev/null || continue
  (( $(wc -l < "$out/results.csv") > 1 )) || continue
  $python docs/results/keep_records.py "$out" "$records" $keep_flags > /dev/null \
    && nice -n 5 $python docs/results/converged/unselected.py "$out" "$records/unselected.csv"
done
for probe in runs/converged/probe/*/; do
  [[ -f $probe/run.json ]] && grep -q '"status": "completed"' "$probe/run.json" || continue
  mkdir -p "docs/results/converged/records/probe/$(basename "$probe")"
  cp "$probe/run.json" "docs/results/converged/records/probe/$(basename "$probe")/"
done
