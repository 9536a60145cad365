#!/usr/bin/env bash
# Builds what scripts/gpu/gpu_session.sh needs on a lent GPU machine and cannot find there, in two ignored folders:
#   .whl/       cp312 x86-64 wheels of the packages its image lacks (jiwer rapidfuzz soundfile cffi pycparser soxr;
#               the image has torch, transformers, accelerate, matplotlib, PyYAML), the versions installed here;
#   .gpu/synth-whl/  espeakng-loader's wheel (10 MB, eSpeak NG for `parp synth`), apart so that a call that does
#               not synthesise (scripts/gpu/gpu_pretrain.sh) need not carry it;
#   .gpu/shim/  a stand-in `wordfreq` holding only what `parp synth` reads of the real one (the top-5000 list and
#               those words' frequencies for the GPU sweep's languages, dumped from the wordfreq installed here, with
#               its version), because the real package (~30 MB of data) does not fit the 64 MiB the tree may carry;
#   .gpu/phones-cells.tar.gz  where runs/cross-language-phones-gpu/cells exists: every finished cell's run.json and
#               the OMP cells' masks (~12 MB), so that a later GPU session skips those cells and starts the transfer
#               cells from these masks (scripts/gpu/gpu_session.sh unpacks it).
#   bash scripts/gpu/make_gpu_carry.sh      # from the repository root, in the project's venv
# then carry what the call needs, within the 64 MiB a call takes (the tracked tree is ~26 MB):
#   scripts/gpu/gpu_session.sh:  [".whl", ".gpu/synth-whl", ".gpu/shim", ".gpu/phones-cells.tar.gz"]
#   scripts/gpu/gpu_pretrain.sh: [".whl", ".gpu/audio"]   (after `python scripts/gpu/gpu_audio.py encode`)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
rm -rf .whl .gpu/shim .gpu/synth-whl && mkdir -p .whl .gpu/shim .gpu/synth-whl
for pkg in jiwer rapidfuzz soundfile cffi pycparser soxr espeakng-loader; do
    dest=.whl
    [[ $pkg == espeakng-loader ]] && dest=.gpu/synth-whl
    v=$("$PY" -c "from importlib.metadata import version; print(version('$pkg'))")
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$dest" "$pkg==$v"
done
"$PY" - <<'PY'
import json
from importlib.metadata import version
from pathlib import Path

import wordfreq

from parp.synth.text_source import TOP_N

shim = Path(".gpu/shim")
data = {}
for lang in "es fr it nl ru sv tr zh".split():
    words = wordfreq.top_n_list(lang, TOP_N)
    freqs = wordfreq.get_frequency_dict(lang)
    data[lang] = {"words": words, "freqs": {w: freqs.get(w, 0.0) for w in words}}
(shim / "wordfreq").mkdir(parents=True)
(shim / "wordfreq" / "data.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
(shim / "wordfreq" / "__init__.py").write_text('''"""Carry-only stand-in for wordfreq (made by scripts/gpu/make_gpu_carry.sh): what parp synth reads, nothing else."""
import json
from pathlib import Path

_DATA = json.loads((Path(__file__).parent / "data.json").read_text(encoding="utf-8"))


def available_languages():
    return sorted(_DATA)


def top_n_list(lang, n):
    return _DATA[lang]["words"][:n]


def get_frequency_dict(lang):
    return dict(_DATA[lang]["freqs"])
''', encoding="utf-8")
v = version("wordfreq")
meta = shim / f"wordfreq-{v}.dist-info"
meta.mkdir()
(meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: wordfreq\nVersion: {v}\n", encoding="utf-8")
print(f"shim: wordfreq {v}, {len(data)} languages")
PY
cells=runs/cross-language-phones-gpu/cells
if [[ -d $cells ]]; then
    { find "$cells" -name run.json -not -path '*/checkpoints/*'; find "$cells" -path '*/omp/*/model/mask.safetensors'; } \
        | tar czf .gpu/phones-cells.tar.gz -T -
    echo "cells: $(tar tzf .gpu/phones-cells.tar.gz | grep -c run.json) records, $(tar tzf .gpu/phones-cells.tar.gz | grep -c mask) OMP masks"
fi
du -sh .whl .gpu
