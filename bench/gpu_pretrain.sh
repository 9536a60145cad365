#!/usr/bin/env bash
# One lent-GPU call for the results issue's item 1: pretrain the embedded architecture longer than the checkpoint in
# ../shared/checkpoints/parp-ssl-small-h200 (2257 updates, 183 s on an H200), with the same recipe and audio, then
# fine-tune it and the embedded encoder side by side on Mboshi with the default recipe (1200 updates, seed 0), so
# the lower validation CER decides which becomes the embedded default (on the CPU, after the call).
#
#   here:  python bench/gpu_audio.py encode     (Mboshi train + FSDD as Opus in .gpu/audio, ~30 MB; ~4 min on 2 idle
#                                                cores; a trial on the CPU: --limit 40, then PT_STEPS=4 FT_STEPS=4
#                                                BATCH_SECONDS=20 NO_WHEELS=1 PYTHON=.venv/bin/python)
#          bash bench/make_gpu_carry.sh         (wheels in .whl; espeakng_loader is not needed by this call)
#   there: bash bench/gpu_pretrain.sh           (carry [".whl", ".gpu/audio"], not all of .gpu:
#                                                the tree itself is ~26 MB of the 64 MiB a call takes)
#
# Results under $OUT: pretrain-records.tar.gz (both runs' records, logs, loss curve) and model-fp16.safetensors plus
# the new encoder's config (fp16 to pass the 16 MiB file limit; stored back as fp32, a round trip the card states).
# Environment overrides (also for a trial on a CPU): PT_STEPS, PT_MINUTES, FT_STEPS, BATCH_SECONDS, NO_WHEELS.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu-pretrain/out}"
W=runs/gpu-pretrain
mkdir -p "$OUT" "$W"
PT_STEPS="${PT_STEPS:-3600}"        # ~12 updates/s measured on an H200 at 320 s batches: ~5 min
PT_MINUTES="${PT_MINUTES:-5.5}"     # a guard: the run ends as at max_steps if the GPU is slower
FT_STEPS="${FT_STEPS:-1200}"
BATCH_SECONDS="${BATCH_SECONDS:-320}"
PY="${PYTHON:-python3}"
log() { echo "[gpu-pretrain ${SECONDS}s] $*" | tee -a "$W/session.log"; }

source bench/gpu_wheels.sh
install_wheels || exit 1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c "import parp, jiwer, soundfile, torch; print('torch', torch.__version__,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" | tee -a "$W/session.log" \
    || { log "imports failed"; exit 1; }

log "decoding the carried audio"
"$PY" bench/gpu_audio.py decode > "$W/decode.log" 2>&1 || { log "decode failed"; tail -3 "$W/decode.log"; exit 1; }
M=runs/gpu-audio/mboshi/manifest.tsv
F=runs/gpu-audio/fsdd/manifest.tsv

log "pretraining: up to $PT_STEPS updates or $PT_MINUTES min"
"$PY" -m parp pretrain --sources "$M" "$F" --output_dir "$W/pt" --objective best-rq --max_steps "$PT_STEPS" \
    --max_minutes "$PT_MINUTES" --warmup_steps 200 --learning_rate 1e-3 --lr_schedule cosine \
    --max_batch_seconds "$BATCH_SECONDS" --eval_every 400 --save_every 800 --log_every 20 --max_valid_clips 100 \
    --num_workers 6 --seed 0 --no_progress > "$W/pretrain.log" 2>&1
log "pretrain: exit $? ($(tail -n 1 "$W/pretrain.log"))"
[[ -f "$W/pt/model/model.safetensors" ]] || { log "no pretrained model"; tar czf "$OUT/pretrain-records.tar.gz" "$W"/*.log; exit 1; }

log "fine-tuning both encoders on Mboshi ($FT_STEPS updates, the default recipe, seed 0), side by side"
pids=()
for arm in embedded new; do
    model=()
    [[ $arm == new ]] && model=(--model "$W/pt/model")
    "$PY" -m parp finetune "${model[@]}" --train_manifest "$M" --max_valid_utterances 150 --seed 0 \
        --max_steps "$FT_STEPS" --eval_every 300 --save_every 0 --no_progress --output_dir "$W/ft-$arm" \
        > "$W/ft-$arm.log" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for arm in embedded new; do log "ft-$arm: $(grep -o '"cer": [0-9.]*' "$W/ft-$arm/run.json" 2>/dev/null | tail -n 1)"; done

"$PY" - "$W/pt/model" "$OUT" <<'PY'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
src, out = Path(sys.argv[1]), Path(sys.argv[2])
weights = load_file(src / "model.safetensors")
save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()}, out / "model-fp16.safetensors")
for name in ("config.json", "preprocessor_config.json"):
    if (src / name).is_file():
        shutil.copy(src / name, out / name)
PY
find "$W" \( -name checkpoints -o -name model -o -name model-compact -o -name best \) -prune -o -type f \
    \( -name '*.json' -o -name '*.log' -o -name '*.png' -o -name '*.tsv' -o -name '*.md' \) -size -4M -print \
    | grep -v gpu-audio | tar czf "$OUT/pretrain-records.tar.gz" -T -
log "done: $(ls "$OUT" | tr '\n' ' ')"
