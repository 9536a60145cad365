"""PruningCallback's sparsity after training and in each saved checkpoint (weights and mask file): the two examples/
scripts, 6 updates with checkpoints at 3 and 6, on tiny random models (the test builders of tests/test_examples.py)
and six real Mboshi clips under 3 s.

    PYTHONPATH=src python scripts/callback_sparsity.py [MBOSHI_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_examples as examples  # noqa: E402

from parp.sparsity import Mask, measure_sparsity, prunable_parameters  # noqa: E402

RUNS = {"wav2vec2": "encoder", "wav2vec2-bert": "encoder", "whisper": "encoder", "whisper-decoder": "decoder"}


def short_clips(mboshi: Path, folder: Path) -> Path:
    lines = (mboshi / "train.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines[1:]]
    short = [[str(mboshi / r[0]), *r[1:]] for r in rows if float(r[2]) < 3.0][:6]
    manifest = folder / "train.tsv"
    manifest.write_text("\n".join([lines[0]] + ["\t".join(r) for r in short]) + "\n", encoding="utf-8")
    return manifest


def run(name: str, targets: str, manifest: Path, folder: Path) -> str:
    common = list(examples.COMMON)
    common[common.index("--max_steps") + 1], common[common.index("--save_steps") + 1] = "6", "3"
    out = folder / name
    if name.startswith("whisper"):
        texts = [line.split("\t")[3] for line in manifest.read_text(encoding="utf-8").splitlines()[1:]]
        model = examples._whisper_folder(folder / f"model-{name}", texts)
        trainer = examples._example("run_whisper_parp").main(
            ["--model_name_or_path", str(model), "--train_manifest", str(manifest), "--output_dir", str(out),
             "--parp_targets", targets, *common])
    else:
        model = examples._ctc_folder(folder / f"model-{name}", name)
        trainer = examples._example("run_speech_recognition_ctc_parp").main(
            ["--model_name_or_path", str(model), "--train_manifest", str(manifest), "--output_dir", str(out), *common])
    names = list(prunable_parameters(trainer.model, targets=targets))
    after = measure_sparsity(trainer.model, names)
    cells = [f"{name} ({targets}): after training {after.zeros}/{after.total} = {after.overall:.4f}"]
    for step in (3, 6):
        weights = load_file(out / f"checkpoint-{step}" / "model.safetensors")
        zeros = sum(int((weights[n] == 0).sum()) for n in names)
        total = sum(weights[n].numel() for n in names)
        in_file = Mask.load(out / f"checkpoint-{step}" / "parp_mask.safetensors").sparsity()
        cells.append(f"checkpoint-{step}: weights {zeros}/{total} = {zeros / total:.4f}, mask file {in_file:.4f}")
    return "; ".join(cells)


if __name__ == "__main__":
    folder = Path(tempfile.mkdtemp())
    manifest = short_clips(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mboshi"), folder)
    for name, targets in RUNS.items():
        print(run(name, targets, manifest, folder), flush=True)
