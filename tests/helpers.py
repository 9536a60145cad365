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


def run_tiny_prune(corpus: tuple[Path, Path], output_dir: Path, method: str, hook, sparsity: float = 0.5,
                   steps: int = 8, **prune):
    """One ``run_prune`` on the tiny corpus and model with a fast constant schedule, ``hook`` watching the loop."""
    from parp.data import DataArguments
    from parp.methods import PruneArguments, run_prune
    from parp.models import ModelArguments
    from parp.training.loop import TrainConfig

    manifest, model_dir = corpus
    return run_prune(
        DataArguments(train_manifest=str(manifest), valid_fraction=0.2),
        ModelArguments(model=str(model_dir), mask_time_prob=0.0),
        TrainConfig(output_dir=str(output_dir / method), max_steps=steps, learning_rate=5e-2, warmup_steps=0,
                    eval_every=0, save_every=0, max_batch_seconds=4, progress=False, lr_schedule="constant"),
        PruneArguments(method=method, sparsity=sparsity, **prune), extra_hooks=[hook])



_KILL_AFTER_CHECKPOINT = """
import os, signal, sys
import parp.training.loop as loop
real = loop._save_checkpoint
def save_then_die(accelerator, output_dir, state, *args, **kwargs):
    real(accelerator, output_dir, state, *args, **kwargs)
    if state.step >= {step}:
        os.kill(os.getpid(), signal.SIGKILL)  # a real SIGKILL, right after this checkpoint is complete
loop._save_checkpoint = save_then_die
from parp.cli import main
sys.exit(main(sys.argv[1:]))
"""


def sigkill_after_checkpoint(step: int) -> list[str]:
    """The start of a command line that runs ``parp ARGS...`` and SIGKILLs itself right after its first checkpoint
    of update >= ``step``: a real kill at a known point, not one timed by polling the wall clock."""
    import sys

    return [sys.executable, "-c", _KILL_AFTER_CHECKPOINT.format(step=step)]


class Killed(Exception):
    """Raised by ``KillAt``: the run died between two checkpoints."""


def kill_at(step: int):
    """A training hook that dies after update ``step`` (after the checkpoint of step - 1), like a SIGKILL between
    checkpoints, in the test's own process."""
    from parp.training.hooks import TrainingHook

    class KillAt(TrainingHook):
        name = "kill"

        def on_step_end(self, state):
            if state.step == step:
                raise Killed

    return KillAt()
