#!/usr/bin/env bash
# Run a queue of long jobs on this CPU, N at a time (default 2: one one-thread job per core), and keep what finishes.
#
#   nohup bash docs/results/cpu_queue.sh QUEUE_FILE [N] &
#
# QUEUE_FILE: one shell command a line, taken from the top when fewer than N parp jobs run (checked twice, 30 s
# apart, so a sweep between two of its phases is not mistaken for a free core); lines may be added or reordered while
# it runs. A file STOP next to QUEUE_FILE: start nothing more (running jobs go on). Logs: QUEUE_FILE.logs/.
# Every 5 minutes it also runs KEEP (default docs/results/keep.sh, if it exists): copying finished cells into the
# committed records folders, because on this project's machines runs/ does not outlive a session.
# Why not Ray (parp sweep --launcher ray)? Ray spreads one grid's cells; this mixes grids, probes and reruns, in an
# order chosen while they run.
set -uo pipefail
queue=$1 jobs=${2:-2}
cd "$(git rev-parse --show-toplevel)" || exit 1
export OMP_NUM_THREADS=1
logs=$queue.logs
mkdir -p "$logs"
low=0 last_keep=0
while true; do
  running=$(pgrep -fc "bin/parp (sweep|finetune)")
  if (( running < jobs )); then low=$((low + 1)); else low=0; fi
  if (( low >= 2 )) && [[ ! -e $(dirname "$queue")/STOP ]]; then
    line=$(head -n 1 "$queue")
    if [[ -n $line ]]; then
      sed -i 1d "$queue"
      echo "$(date -u +%FT%T) start: $line" >> "$logs/queue.log"
      nice -n 5 bash -c "$line" >> "$logs/$(echo "$line" | tr -c 'a-zA-Z0-9.' '_' | tail -c 60).log" 2>&1 &
      low=0
      sleep 20
    fi
  fi
  if (( $(date +%s) - last_keep >= 300 )) && [[ -f ${KEEP:-docs/results/keep.sh} ]]; then
    bash "${KEEP:-docs/results/keep.sh}" >> "$logs/keep.log" 2>&1
    last_keep=$(date +%s)
  fi
  sleep 30
done
