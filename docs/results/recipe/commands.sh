# The results issue's recipe search and the embedded-checkpoint verification, as run (2-core CPU, no GPU).
# Every trial is one line of trials.txt (name + flags), run by trial.sh (one torch thread, Mboshi train.tsv with
# parp's seeded 10 % validation split, 150 utterances scored, seed 0). Two workers share the machine:
nohup bash docs/results/recipe/queue.sh > runs/recipe-q1.log 2>&1 &
nohup bash docs/results/recipe/queue.sh > runs/recipe-q2.log 2>&1 &
# the demo's task (synthetic Finnish) for the demo trials:
parp synth --out_dir runs/demo-data --languages fi --utterances_per_language 240 --seed 0
# random initialisation of the checkpoint's architecture (the random-card trial):
python -c "from pathlib import Path; from parp.pretrain.downstream import random_init_folder; \
random_init_folder('../shared/checkpoints/parp-ssl-small-h200', Path('runs/random-init'), 0)"
# the SSL-gain comparison in the embedded card of the time (now docs/results/archive/parp-ssl-small-h200/ssl-gain), then the card:
python - <<'PY'
from pathlib import Path
from parp.pretrain.downstream import collect
arms = {"this checkpoint (H200, 2257 updates)": "h200-card", "previous embedded (CPU, 350 updates)": "embedded-card",
        "random initialisation": "random-card"}
collect({label: Path("runs/recipe", name) for label, name in arms.items() if Path("runs/recipe", name, "run.json").exists()},
        Path("docs/results/ssl-gain"),
        {"hardware": "both fine-tunings on this project's 2-core CPU, one torch thread each (beside other jobs)"})
PY
OC=docs/results/objective-comparison
parp card install --pretrain_dir ../shared/checkpoints/parp-ssl-small-h200 --downstream_dir docs/results/ssl-gain \
  --command "$(sed -n '/^parp pretrain/,/no_progress$/p' ../shared/checkpoints/parp-ssl-small-h200/README.md)" \
  --downstream_command "bash docs/results/recipe/trial.sh h200-card ... (docs/results/recipe/trials.txt); see docs/results/recipe/commands.sh" \
  --compare docs/results/archive/parp-ssl-small-cpu:$OC/down-embedded $OC/best-rq:$OC/down-best-rq $OC/wav2vec2:$OC/down-wav2vec2 \
  --compare_command "$(cat $OC/commands.sh)"

# Third session: the encoder pretrained longer on a lent H200 (scripts/gpu/gpu_pretrain.sh; its fp16 weights back as fp32 in
# runs/pt-h200-long, with its pretraining.json and loss_curve.png), compared in trials.txt (s600-longpt*, longpt-card,
# h200-specaug0-prior), then installed as the embedded encoder (the old card kept in docs/results/archive/parp-ssl-small-h200):
python - <<'PY'
from pathlib import Path
from parp.pretrain.downstream import collect
arms = {"this checkpoint (H200, 3137 updates)": "longpt-card", "previous embedded (H200, 2257 updates)": "h200-specaug0-prior"}
collect({label: Path("runs/recipe", name) for label, name in arms.items()}, Path("docs/results/ssl-gain"),
        {"hardware": "both fine-tunings on this project's 2-core CPU, one torch thread each, side by side"})
PY
parp card install --pretrain_dir runs/pt-h200-long --downstream_dir docs/results/ssl-gain \
  --command "(the parp pretrain command in src/parp/assets/parp-ssl-small/README.md)" \
  --downstream_command "bash docs/results/recipe/trial.sh longpt-card ... and h200-specaug0-prior ... (...)" \
  --compare docs/results/archive/parp-ssl-small-cpu:$OC/down-embedded $OC/best-rq:$OC/down-best-rq $OC/wav2vec2:$OC/down-wav2vec2 \
  --compare_command "$(cat $OC/commands.sh)"
