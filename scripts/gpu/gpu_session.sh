#!/usr/bin/env bash
# One lent GPU session (about 9.5 min on one H100/H200), ordered so that a cut-short session keeps the most:
#   1. the GPU tests (every method end to end on CUDA in bf16, CUDA masks = CPU masks, the 2:4 kernel path), while
#      the CPU cores synthesise issue 13's phone data with eSpeak NG (one process per language);
#   2. issue 13's 10-language phone sweep (docs/results/cross-language-phones-gpu/sweep.yaml): WORKERS one-process
#      sweep workers sharing the folder through claims plus one worker for the multilingual run, under MPS where it
#      starts, until DEADLINE seconds after the start; then the finished cells' records and masks are packed, and
#      the report is made from them on any machine (`parp report` reads nothing else);
#   3. bench/bench_inference.py on the quiet GPU in fp16 then bf16 (dense / unstructured / ffn / 2:4 kernels), in
#      the time left before LIMIT.
#
#   bash scripts/gpu/gpu_session.sh            # on the GPU machine, from the repository root; results under $OUT
#
# Needs there (scripts/gpu/make_gpu_carry.sh builds them; carry .whl .gpu/synth-whl .gpu/shim .gpu/phones-cells.tar.gz):
# the wheels of jiwer rapidfuzz soundfile cffi pycparser soxr in .whl/, espeakng-loader's in .gpu/synth-whl/ and, in
# .gpu/shim/, a stand-in for wordfreq holding the top-5000 lists parp synth reads (the real package is too large
# to carry); see docs/results/cross-language-phones-gpu/README.md. A .gpu/phones-cells.tar.gz (finished cells of an
# earlier session, from make_gpu_carry.sh) is unpacked before the sweep. Environment overrides (also for a trial on a
# CPU): DEADLINE, WORKERS, UTTS, CFG, BENCH_ARGS, TESTS (none: skip), BENCH (0: skip), MASKS (0: pack none),
# NO_WHEELS. The full transfer matrix of issue 13, after the first session's cells:
#   CFG=docs/results/cross-language-phones-gpu/transfer-all.yaml TESTS=none BENCH=0 MASKS=0 DEADLINE=480 \
#       bash scripts/gpu/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-runs/gpu-session/out}"
W=runs/gpu-session
mkdir -p "$OUT" "$W"
DEADLINE="${DEADLINE:-400}"   # the sweep stops here (seconds from the start)
LIMIT="${LIMIT:-575}"         # everything ends before this (the lease call's timeout is a little more)
WORKERS="${WORKERS:-12}"
UTTS="${UTTS:-1200}"
CFG="${CFG:-docs/results/cross-language-phones-gpu/sweep.yaml}"
BENCH_ARGS="${BENCH_ARGS:---device cuda --repeats 10 --batch 16}"
TESTS="${TESTS:-tests/test_cuda.py tests/test_evaluate_device.py tests/test_inference.py tests/test_sparsity_device.py}"
LANGS="es fr it ky nl ru sv tr tt zh"
PY="${PYTHON:-python3}"
log() { echo "[gpu-session ${SECONDS}s] $*" | tee -a "$W/session.log"; }

source scripts/gpu/gpu_wheels.sh
log "embedded encoder: $(grep -m1 -o '"steps": [0-9]*' src/parp/assets/parp-ssl-small/pretraining.json) pretraining updates"
# shellcheck disable=SC2046
install_wheels $(ls .gpu/synth-whl/*.whl 2>/dev/null) || exit 1
export PYTHONPATH="$PWD/src:$PWD/.gpu/shim${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
"$PY" -c "import parp, jiwer, soundfile, soxr, espeakng_loader, wordfreq, torch; print('torch', torch.__version__,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" || { log "imports failed"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee -a "$W/session.log"

# 3a first, in the background: the data takes a minute of the CPU cores while the GPU runs the tests and benches.
synth_pids=()
for l in $LANGS; do
    OMP_NUM_THREADS=1 "$PY" -m parp synth --out_dir "runs/synth-parts/$l" --languages "$l" --utterances_per_language \
        "$UTTS" --seed 0 --transcripts phones --no_progress > "$W/synth-$l.log" 2>&1 &
    synth_pids+=($!)
done

if [[ -f .gpu/phones-cells.tar.gz ]]; then
    tar xzf .gpu/phones-cells.tar.gz && log "restored $(tar tzf .gpu/phones-cells.tar.gz | grep -c run.json) finished cells"
fi

if [[ "$TESTS" != none ]]; then
    log "1. GPU tests"
    # shellcheck disable=SC2086
    timeout 240 "$PY" -m pytest -q -p no:cacheprovider -rs $TESTS > "$OUT/tests.log" 2>&1
    log "tests: $(tail -n 1 "$OUT/tests.log")"
fi

log "2. phone sweep: waiting for the data"
for p in "${synth_pids[@]}"; do wait "$p" || log "synth process $p failed"; done
mkdir -p runs/synth-phones
for l in $LANGS; do
    [[ -d "runs/synth-parts/$l/$l" ]] && mv "runs/synth-parts/$l/$l" runs/synth-phones/ \
        && cp "runs/synth-parts/$l/synth.json" "runs/synth-phones/synth-$l.json"
done
log "data: $(cat runs/synth-phones/*/train.tsv | wc -l) manifest lines"

start_mps

multi() {  # the multilingual run for the given seeds (scoring only, for seeds whose run finished)
    "$PY" - "$CFG" "$@" <<'PY'
import sys
from pathlib import Path
from parp.experiments.grid import load_sweep_config, validate_sweep
from parp.experiments.multilingual import run_multilingual
config = load_sweep_config(sys.argv[1], seeds=[int(s) for s in sys.argv[2:]])
languages, _ = validate_sweep(config)
if config.multilingual:
    run_multilingual(config, languages, Path(config.output_dir))
PY
}
( multi 0 && multi 0 1 ) > "$W/multilingual.log" 2>&1 &
workers=($!)
for i in $(seq "$WORKERS"); do
    OMP_NUM_THREADS=1 "$PY" -m parp sweep --config "$CFG" > "$W/worker-$i.log" 2>&1 &
    workers+=($!)
    sleep 1
done
log "$WORKERS sweep workers and the multilingual worker started"
wait_for "$DEADLINE" "${workers[@]}"
RES=$("$PY" -c "from parp.experiments.grid import load_sweep_config as l; print(l('$CFG').output_dir)")
done_cells=$(find "$RES/cells" -name run.json 2>/dev/null | xargs grep -l '"completed"' 2>/dev/null | wc -l)
log "deadline: stopping workers ($done_cells cells finished)"
stop_all "${workers[@]}"

finished=$("$PY" - "$CFG" <<'PY'
import sys
from pathlib import Path
from parp.experiments.cells import Cell
from parp.experiments.grid import load_sweep_config
from parp.experiments.multilingual import MULTILINGUAL, multilingual_method
from parp.records import is_completed
config = load_sweep_config(sys.argv[1])
cell = lambda s: Cell(MULTILINGUAL, multilingual_method(config), 0.5, s).directory(Path(config.output_dir))
print(" ".join(str(s) for s in (0, 1) if is_completed(cell(s))))
PY
)
if [[ -n "$finished" ]]; then timeout 120 bash -c "$(declare -f multi); PY=$PY CFG=$CFG; multi $finished" \
    >> "$W/multilingual.log" 2>&1; fi
log "multilingual seeds finished: ${finished:-none}"
timeout 60 "$PY" -m parp sweep --config "$CFG" --collect_only > "$W/collect.log" 2>&1

# Records (small) in one archive; masks (600 KB each) in parts of at most 15 MB.
find "$RES" \( -name checkpoints -o -name logs \) -prune -o -type f \
    \( -name '*.json' -o -name '*.csv' -o -name '*.tsv' -o -name '*.md' \) -size -2M -print > "$W/records.list"
find runs/synth-phones -maxdepth 1 -name 'synth-*.json' >> "$W/records.list"
# transfer cells' masks last, and only while the masks stay under 48 MB (80 of them): the files back are capped
find "$RES" -path '*/checkpoints' -prune -o -type f -name mask.safetensors -print \
    | { [[ "${MASKS:-1}" == 0 ]] && cat > /dev/null || cat; } | awk '{print ($0 ~ /-from-/ ? 1 : 0) "\t" $0}' | sort -s -k1,1n | cut -f2 | head -n 80 > "$W/masks.list"
tar czf "$OUT/phones-records.tar.gz" -T "$W/records.list" "$W"/*.log 2>/dev/null
[[ -s "$W/masks.list" ]] && tar cf - -T "$W/masks.list" | split -b 15M - "$OUT/phones-masks.tar.part-"
log "done: $(ls "$OUT" | tr '\n' ' ')"

[[ "${BENCH:-1}" == 0 ]] && exit 0
log "3. inference bench (on the quiet GPU, in the time left)"
for dtype in float16 bfloat16; do
    left=$((LIMIT - SECONDS - 10))
    (( left < 30 )) && { log "bench $dtype: skipped, ${left}s left"; continue; }
    # shellcheck disable=SC2086
    timeout $(( left < 120 ? left : 120 )) "$PY" bench/bench_inference.py $BENCH_ARGS --dtype "$dtype" \
        --out "$W/inference-gpu-$dtype" > "$W/inference-gpu-$dtype.log" 2>&1
    log "bench $dtype: exit $?"
    tar czf "$OUT/inference-gpu.tar.gz" -C "$W" $(cd "$W" && ls -d inference-gpu-*) session.log
done
