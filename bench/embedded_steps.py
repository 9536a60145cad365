"""What the CPU step benchmarks share: their flags, the embedded encoder with a CTC head, and real Mboshi audio."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import transformers  # noqa: E402

from parp.models.load import default_model_path  # noqa: E402

MBOSHI = Path(os.environ.get("PARP_SHARED_DATA", REPO.parent / "shared" / "data")) / "mboshi" / "train.tsv"


def step_args(description: str, compared: str) -> argparse.Namespace:
    """``--threads --steps --rounds --batch-seconds``; sets the thread count."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6, help=f"timed steps per round and {compared}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-seconds", type=float, default=16.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def embedded_ctc_model() -> transformers.Wav2Vec2ForCTC:
    """The embedded encoder with a fresh 48-letter CTC head (seeded) and its CNN frozen, as fine-tuning has it."""
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForCTC.from_pretrained(default_model_path(), vocab_size=48, pad_token_id=0,
                                                         ctc_loss_reduction="mean")
    model.freeze_feature_encoder()
    return model


def mboshi_audio(samples: int) -> tuple[np.ndarray, str]:
    """``samples`` of real Mboshi speech (its first clips, concatenated) when it is there, else seeded noise."""
    if MBOSHI.is_file():
        rows = [line.split("\t")[0] for line in MBOSHI.read_text(encoding="utf-8").splitlines()[1:]]
        audio = np.concatenate([sf.read(MBOSHI.parent / path, dtype="float32")[0] for path in rows[:40]])
        return audio[:samples], "Mboshi"
    return np.random.default_rng(0).standard_normal(samples).astype(np.float32), "noise"
