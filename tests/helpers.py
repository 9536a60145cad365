"""Small builders shared by tests: a tiny CTC-ready model folder and a synthetic labelled corpus on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from parp.models import tiny_ctc_model

WORDS = ["ba", "ko", "mi", "sa", "tu", "ne", "lo", "pa"]


def tiny_model_dir(path: Path, arch: str = "wav2vec2", **overrides) -> Path:
    """A tiny pretrained-looking encoder folder (random weights) with standard 20 ms frames."""
    cfg = dict(conv_dim=(16,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
               hidden_size=32, intermediate_size=64, num_hidden_layers=2)
    cfg.update(overrides)
    tiny_ctc_model(arch, vocab_size=8, **cfg).save_pretrained(path)
    return path


def synthetic_corpus(path: Path, n: int = 24, seed: int = 0, seconds: float = 1.0) -> Path:
    """Noise clips with short made-up transcripts; enough for loops and methods to run, not to learn."""
    rng = np.random.default_rng(seed)
    audio_dir = path / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows = ["path\tspeaker\tduration\ttext"]
    for i in range(n):
        length = seconds * rng.uniform(0.7, 1.3)
        samples = (0.1 * rng.standard_normal(int(16000 * length))).astype(np.float32)
        sf.write(audio_dir / f"u{i}.wav", samples, 16000)
        text = " ".join(rng.choice(WORDS, size=rng.integers(1, 3)))
        rows.append(f"audio/u{i}.wav\tspk{i % 2}\t{len(samples) / 16000:.3f}\t{text}")
    manifest = path / "train.tsv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest
