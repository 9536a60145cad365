#!/usr/bin/env bash
# Issue 27 on a lent GPU (docs/results/converged): the convergence probes and the converged grids, in one or two
# calls of ~9.5 min. Each call
#   1. decodes the audio it carried (scripts/gpu/gpu_audio.py decode; earlier calls' WAV stay while the machine is warm);
#   2. runs every probe (language x data size x seeds 0, 1; docs/results/converged/probe.sh) whose audio is here and
#      which has not finished, all at once under MPS: each stops itself after 8 validations without a lower CER;
#   3. reads N(d) off the finished probes (docs/results/converged/convergence.py) and runs every grid of PLAN whose
#      N(d) is known, WORKERS one-process sweep workers sharing each grid folder until DEADLINE;
#   4. packs the probes' and cells' records (run.json, results) and the cells' masks into $OUT.
#
#   here:  python scripts/gpu/gpu_audio.py encode                                          (Mboshi, ~23 MB)
#          python scripts/gpu/gpu_audio.py encode --corpora yo rw --carry .gpu/audio2      (~28 MB, copied as is)
#          bash scripts/gpu/make_gpu_carry.sh                                              (.whl)
#   there: bash scripts/gpu/gpu_converged.sh    call 1: carry [".whl", ".gpu/audio"]
#                                               call 2, at once (warm): carry [".whl", ".gpu/audio2"]
#   back here, per grid: parp sweep --config runs/gpu-converged/NAME.yaml --collect_only   (the YAML it ran, packed)
#
# A trial on a CPU: PYTHON=.venv/bin/python NO_WHEELS=1 DEADLINE=60 LIMIT=90 PROBE_STEPS=4 WORKERS=2 \
#                   bash scripts/gpu/gpu_converged.sh      (tiny probes, then the grids until the deadline)
# Environment overrides: DEADLINE, LIMIT, WORKERS, PLAN, PROBE_STEPS, NO_WHEELS, PYTHON.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-runs/gpu-converged/out}"
W=runs/gpu-converged
mkdir -p "$OUT" "$W"
DEADLINE="${DEADLINE:-500}"   # workers stop here (seconds from the start); packing follows
LIMIT="${LIMIT:-570}"
WORKERS="${WORKERS:-12}"
# grid name : language(s) : data sizes probed for it (the grid's own size)
PLAN="${PLAN:-mboshi-0.167h:mboshi:0.167 mboshi-1h:mboshi:1 real-1h:yo,rw:1 mboshi-all:mboshi:all}"
PY="${PYTHON:-python3}"
log() { echo "[gpu-converged ${SECONDS}s] $*" | tee -a "$W/session.log"; }

source scripts/gpu/gpu_wheels.sh
install_wheels && check_imports || exit 1

carried=(); for d in .gpu/audio .gpu/audio2; do [[ -d $d ]] && carried+=("$d"); done
if (( ${#carried[@]} )); then
    log "decoding ${carried[*]}"
    "$PY" scripts/gpu/gpu_audio.py decode --carry "${carried[@]}" >> "$W/decode.log" 2>&1 \
        || { log "decode failed"; tail -3 "$W/decode.log"; exit 1; }
fi
start_mps

# 2. probes: every (language, size) of the plan whose audio is here
probes=()
for entry in $PLAN; do
    IFS=: read -r _ langs size <<< "$entry"
    for lang in ${langs//,/ }; do
        [[ -f runs/gpu-audio/$lang/manifest.tsv ]] || continue
        for seed in 0 1; do
            run=runs/converged/probe/$lang-h$size-seed$seed
            grep -qs '"status": "completed"' "$run/run.json" && continue
            extra=(); [[ -n "${PROBE_STEPS:-}" ]] && extra=(--max-steps "$PROBE_STEPS" --eval-every 2 --save-every 0)
            DATA=runs/gpu-audio MANIFEST=manifest.tsv PARP="$PY -m parp" \
                bash docs/results/converged/probe.sh "$lang" "$size" "$seed" "${extra[@]}" \
                > "$W/probe-$lang-h$size-seed$seed.log" 2>&1 &
            probes+=($!)
        done
    done
done
log "${#probes[@]} probes running"
wait_for "$DEADLINE" "${probes[@]}"
"$PY" docs/results/converged/convergence.py runs/converged/probe "$W" > "$W/n.json" 2>> "$W/session.log"
log "N(d): $(cat "$W/n.json")"

# 3. grids whose N(d) is known: a copy of each grid's YAML that reads the carried audio and gives every language
#    its own N(d) (its max_steps), its own data options (allow_unknown_chars, ...) kept
workers=()
for entry in $PLAN; do
    IFS=: read -r name _ size <<< "$entry"
    config=$("$PY" scripts/gpu/grid_here.py "docs/results/converged/$name.yaml" "$W/n.json" "$size" "$W/$name.yaml")
    [[ -z "$config" ]] && { log "$name: no N(d) yet for all of its languages, not run"; continue; }
    log "$name: $config, $WORKERS workers"
    for i in $(seq "$WORKERS"); do
        OMP_NUM_THREADS=1 "$PY" -m parp sweep --config "$W/$name.yaml" > "$W/$name-worker-$i.log" 2>&1 &
        workers+=($!)
        sleep 1
    done
done
wait_for "$DEADLINE" "${workers[@]}"
log "deadline: stopping $(jobs -r | wc -l) processes"
stop_all "${probes[@]}" "${workers[@]}"

# 4. records (small) and masks back
find runs/converged \( -name checkpoints -o -name logs -o -name best -o -name gpu-audio \) -prune -o -type f \
    \( -name '*.json' -o -name '*.csv' -o -name '*.md' \) -size -2M -print > "$W/records.list"
tar czf "$OUT/converged-records.tar.gz" -T "$W/records.list" "$W"/*.log "$W"/*.json "$W"/*.png "$W"/*.yaml 2>/dev/null
find runs/converged -path '*/checkpoints' -prune -o -type f -name mask.safetensors -print | head -n 100 \
    > "$W/masks.list"
[[ -s "$W/masks.list" ]] && tar cf - -T "$W/masks.list" | split -b 15M - "$OUT/converged-masks.tar.part-"
log "done: $(ls "$OUT" | tr '\n' ' ')"
