"""Live curves: --report-to writes TensorBoard events (loss, lr, validation, achieved sparsity, re-prune IoU)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from helpers import synthetic_corpus, tiny_model_dir

from parp.data import DataArguments
from parp.errors import ConfigError
from parp.methods import PruneArguments, run_prune
from parp.models import ModelArguments
from parp.training.loop import TrainConfig, validate_train_config
from parp.training.tracking import resolve_report_to

pytest.importorskip("tensorboardX", reason="the test extra installs tensorboardX")


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars of every TensorBoard event file under ``folder`` (TFRecord framing, Event protos)."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12: offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return synthetic_corpus(root, n=16), tiny_model_dir(root / "model")


def test_parp_run_writes_tensorboard_curves(corpus, tmp_path):
    manifest, model_dir = corpus
    out = tmp_path / "parp"
    run_prune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
              ModelArguments(model=str(model_dir), mask_time_prob=0.0),
              TrainConfig(output_dir=str(out), max_steps=6, learning_rate=5e-2, warmup_steps=0, eval_every=3,
                          save_every=0, log_every=2, max_batch_seconds=4, progress=False, lr_schedule="constant",
                          report_to="tensorboard"),
              PruneArguments(method="parp", sparsity=0.5, prune_every=2))
    logs = out / "finetune" / "logs"  # PARP's one fine-tuning phase
    files = list(logs.rglob("events.out.tfevents.*"))
    assert files, f"no event file under {logs}"
    scalars = read_scalars(logs)
    assert [s for s, _ in scalars["train/loss"]] == [2, 4, 6]
    assert all(v == pytest.approx(5e-2) for _, v in scalars["train/lr"])
    assert {s for s, _ in scalars["valid/cer"]} == {3, 6}
    # right after a re-prune (every 2 steps) the masked weights are exactly at the target
    assert all(v == pytest.approx(0.5, abs=1e-3) for _, v in scalars["train/sparsity"])
    assert all(0.0 <= v <= 1.0 for _, v in scalars["train/reprune_iou"]) and scalars["train/reprune_iou"]


def test_report_to_none_writes_nothing_and_bad_values_are_one_error(corpus, tmp_path):
    assert resolve_report_to("none") == [] and resolve_report_to("auto") == ["tensorboard"]
    with pytest.raises(ConfigError, match="--report-to must be"):
        validate_train_config(TrainConfig(report_to="tensorbored"))
    try:
        import wandb  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install wandb"):
            resolve_report_to("wandb")
