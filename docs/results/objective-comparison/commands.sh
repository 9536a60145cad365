parp synth --out_dir runs/synth-fi --languages fi --utterances_per_language 240 --seed 0
for obj in best-rq wav2vec2; do   # 20 min each, one thread, same data, batch, LR and seed
  OMP_NUM_THREADS=1 parp pretrain --sources ../shared/data/mboshi/train.tsv ../shared/data/fsdd/all.tsv \
    --output_dir runs/objcmp/$obj --objective $obj --max_steps 3000 --max_minutes 20 --warmup_steps 30 \
    --learning_rate 5e-4 --lr_schedule constant --max_batch_seconds 20 --eval_every 0 --save_every 50 \
    --log_every 10 --max_valid_clips 60 --threads 1 --seed 0
done
DOWN="--train_manifest runs/synth-fi/fi/train.tsv --valid_fraction 0.15 --max_steps 350 --learning_rate 2e-3 \
  --warmup_steps 30 --max_batch_seconds 10 --eval_every 50 --save_every 175 --mask_time_prob 0.05 --seed 0"
OMP_NUM_THREADS=1 parp pretrain downstream --arms pretrained random $DOWN --output_dir runs/objcmp/down-embedded
for obj in best-rq wav2vec2; do
  OMP_NUM_THREADS=1 parp pretrain downstream --checkpoint runs/objcmp/$obj/model --arms pretrained $DOWN \
    --output_dir runs/objcmp/down-$obj
done
parp card update-comparison --compare src/parp/assets/parp-ssl-small:runs/objcmp/down-embedded \
  runs/objcmp/best-rq:runs/objcmp/down-best-rq runs/objcmp/wav2vec2:runs/objcmp/down-wav2vec2 --compare_command "..."
