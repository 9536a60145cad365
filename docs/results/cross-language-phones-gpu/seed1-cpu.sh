#!/usr/bin/env bash
# Issue 13, seed 1 of the transfer matrix on the CPU (seed1-cpu.yaml says why): phases of donor -> receiver pairs,
# each run by two one-thread `parp sweep` workers sharing the folder; a phase's donors' dense and OMP cells come
# with it (--only_cells adds the cells a transfer continues). Resumable: finished cells are skipped.
# Run from the repository root, with ../shared and the phone data of runs/synth-phones (parp synth, see README).
set -uo pipefail
CFG=docs/results/cross-language-phones-gpu/seed1-cpu.yaml
LOGS=runs/cross-language-phones-cpu/logs
PARP=${PARP:-.venv/bin/parp}
mkdir -p "$LOGS"
phase() {  # phase NAME DONOR:RECEIVER ...
    local name=$1 patterns=() pair
    shift
    for pair in "$@"; do patterns+=("${pair#*:}/transfer*-from-${pair%:*}/s0.5/seed1"); done
    echo "$(date -u +%FT%TZ) phase $name: $*"
    for w in 1 2; do
        OMP_NUM_THREADS=1 "$PARP" sweep --config "$CFG" --only_cells "${patterns[@]}" >> "$LOGS/$name-worker$w.log" 2>&1 &
    done
    wait
}
phase cycle1 ky:nl nl:ru ru:sv sv:tr tr:tt tt:zh zh:ky
phase cycle2 ky:ru nl:sv ru:tr sv:tt tr:zh tt:ky zh:nl
phase cycle3 ky:sv nl:tr ru:tt sv:zh tr:ky tt:nl zh:ru
phase it-row it:nl it:ru it:sv it:tr it:tt it:zh
echo "$(date -u +%FT%TZ) done"
