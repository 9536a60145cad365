"""Carry the real speech to a lent GPU machine, which cannot see ../shared and takes at most 64 MiB of tree.

    python scripts/gpu/gpu_audio.py encode            # here: Mboshi train + FSDD -> .gpu/audio/ as Opus (~40 MB)
    python scripts/gpu/gpu_audio.py decode            # there: .gpu/audio/ -> runs/gpu-audio/ as 16-bit WAV, 16 processes
    python scripts/gpu/gpu_audio.py encode --corpora yo rw --carry .gpu/audio2   # other corpora, another folder
                                                      # (a second call's carry); decode reads every folder given

Each corpus keeps its manifest (every column, ``path`` renamed to the new file), so ``parp pretrain`` and
``parp finetune`` read the copy exactly as they read ``../shared/data``. Opus at about 13 kbit/s keeps what speech
recognition needs; the decoded WAV is not bit-identical to the source (a lossy round trip), which the GPU runs'
notes must say. The seven newer corpora are Opus already (~15 kbit/s): their files are copied as they are, with no
second lossy pass.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

CORPORA = {"mboshi": "../shared/data/mboshi/train.tsv", "fsdd": "../shared/data/fsdd/all.tsv",
           **{lang: f"../shared/data/{lang}/train.tsv" for lang in ("yo", "qu", "rw", "pcm", "sw", "br", "tus")}}
DEFAULT_CORPORA = ("mboshi", "fsdd")
CARRY = Path(".gpu/audio")
DECODED = Path("runs/gpu-audio")


def _convert(job: tuple[str, str, str]) -> str:
    source, target, kind = job
    if kind == "wav" and os.path.isfile(target):  # written whole (below), so present means complete
        return target  # decoded by an earlier call on this warm machine
    if kind == "opus" and source.endswith((".ogg", ".opus")) and sf.info(source).subtype == "OPUS":
        shutil.copyfile(source, target)  # Opus already: no second lossy pass
        return target
    audio, rate = sf.read(source, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if kind == "opus":  # libsndfile's Opus takes 8/12/16/24/48 kHz; both corpora are 16 or 8 kHz
        # ~13 kbit/s on Mboshi: 22.6 MiB, so that tree (25 MiB), wheels and audio pass the 64 MB a call carries
        sf.write(target, audio, rate, format="OGG", subtype="OPUS", compression_level=0.98)
    else:  # whole files only: a call cut short leaves no half-written WAV for the next one to trust
        sf.write(target + ".part", np.clip(audio, -1, 1), rate, format="WAV", subtype="PCM_16")
        os.replace(target + ".part", target)
    return target


def convert(manifests: dict[str, Path], dst_root: Path, suffix: str, kind: str, workers: int,
            limit: int = 0) -> None:
    """Every file (or the first ``limit``) of each manifest into ``dst_root/CORPUS/audio/`` as ``kind``, with the
    manifest beside them."""
    for corpus, manifest in manifests.items():
        if not manifest.is_file():
            sys.exit(f"{manifest}: no such manifest")
        with open(manifest, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))[:limit or None]
        out = dst_root / corpus
        (out / "audio").mkdir(parents=True, exist_ok=True)
        jobs = []
        for row in rows:
            name = Path(row["path"]).with_suffix(suffix).name
            jobs.append((str(manifest.parent / row["path"]), str(out / "audio" / name), kind))
            row["path"] = f"audio/{name}"
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_convert, jobs, chunksize=32):
                pass
        with open(out / "manifest.tsv", "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
            writer.writeheader()
            writer.writerows(rows)
        size = sum(p.stat().st_size for p in (out / "audio").iterdir()) / 2**20
        print(f"{corpus}: {len(rows)} files -> {out} ({size:.1f} MiB)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["encode", "decode"])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N files of each corpus (a trial)")
    parser.add_argument("--corpora", nargs="+", choices=sorted(CORPORA), default=list(DEFAULT_CORPORA),
                        help="encode: which corpora")
    parser.add_argument("--carry", nargs="+", type=Path, default=[CARRY],
                        help="the carried folder(s): encode writes the first, decode reads them all")
    args = parser.parse_args()
    if args.step == "encode":
        convert({c: Path(CORPORA[c]) for c in args.corpora}, args.carry[0], ".opus", "opus", args.workers,
                args.limit)
    else:
        convert({m.parent.name: m for folder in args.carry for m in sorted(folder.glob("*/manifest.tsv"))}, DECODED,
                ".wav", "wav", args.workers)


if __name__ == "__main__":
    main()
