#!/usr/bin/env bash
# A worker of the recipe search: takes the next unclaimed line "NAME flags..." of docs/results/recipe/trials.txt
# and runs it with trial.sh; the lines may grow while workers run. Two workers share the 2-core CPU:
#   nohup bash docs/results/recipe/queue.sh & nohup bash docs/results/recipe/queue.sh &
# Stops when every line is claimed and runs/recipe/STOP exists. Claims are folders (mkdir is atomic).
set -uo pipefail
mkdir -p runs/recipe
while :; do
  took=0
  while read -r name flags; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    mkdir "runs/recipe/$name.claim" 2>/dev/null || continue
    took=1
    echo "$(date +%T) start $name"
    # shellcheck disable=SC2086
    bash docs/results/recipe/trial.sh "$name" $flags > "runs/recipe/$name.log" 2>&1 || echo "$(date +%T) FAILED $name"
    echo "$(date +%T) end $name"
    break
  done < docs/results/recipe/trials.txt
  if [[ $took == 0 ]]; then [[ -e runs/recipe/STOP ]] && exit 0; sleep 30; fi
done
