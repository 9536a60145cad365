"""PruningCallback's sparsity after training and in each saved checkpoint (weights and mask file), running the two
examples/ scripts (6 updates, checkpoints at 3 and 6) on tiny random models and six real Mboshi clips under 3 s.

    PYTHONPATH=src python bench/callback_sparsity.py [MBOSHI_DIR]
"""
import sys, tempfile
from pathlib import Path
sys.path.insert(0, "tests")
from safetensors.torch import load_file
import test_examples as T
from parp.sparsity import Mask, measure_sparsity, prunable_parameters

mboshi = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mboshi")
tmp = Path(tempfile.mkdtemp())
lines = (mboshi / "train.tsv").read_text(encoding="utf-8").splitlines()
header = lines[0].split("\t"); rows = [l.split("\t") for l in lines[1:]]
short = [r for r in rows if float(r[2]) < 3.0][:6]
for r in short: r[0] = str(mboshi / r[0])
manifest = tmp / "train.tsv"; manifest.write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in short]) + "\n")
common = [a for a in T.COMMON]
common[common.index("--max_steps") + 1] = "6"; common[common.index("--save_steps") + 1] = "3"
for arch in ["wav2vec2", "wav2vec2-bert", "whisper-encoder", "whisper-decoder"]:
    out = tmp / arch
    if arch.startswith("whisper"):
        targets = arch.split("-")[1]
        texts = [r[3] for r in short]
        trainer = T._example("run_whisper_parp").main(["--model_name_or_path", str(T._whisper_folder(tmp / f"m-{arch}", texts)),
            "--train_manifest", str(manifest), "--output_dir", str(out), "--parp_targets", targets, *common])
    else:
        targets = "encoder"
        trainer = T._example("run_speech_recognition_ctc_parp").main(["--model_name_or_path", str(T._ctc_folder(tmp / f"m-{arch}", arch)),
            "--train_manifest", str(manifest), "--output_dir", str(out), *common])
    names = list(prunable_parameters(trainer.model, targets=targets))
    after = measure_sparsity(trainer.model, names)
    cells = []
    for step in (3, 6):
        w = load_file(out / f"checkpoint-{step}" / "model.safetensors")
        z = sum(int((w[n] == 0).sum()) for n in names); t = sum(w[n].numel() for n in names)
        cells.append(f"checkpoint-{step}: weights {z}/{t} = {z/t:.4f}, mask file {Mask.load(out / f'checkpoint-{step}' / 'parp_mask.safetensors').sparsity():.4f}")
    print(f"{arch}: after training {after.zeros}/{after.total} = {after.overall:.4f}; " + "; ".join(cells), flush=True)
