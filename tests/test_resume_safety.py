"""Resuming never unpickles anything: a payload planted in every pickle-shaped file of a run folder stays inert,
and the pickle-free state still resumes to the same weights as an uninterrupted run."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import Killed, kill_at, synthetic_corpus, tiny_model_dir

from parp.data import DataArguments
from parp.models import ModelArguments
from parp.training.checkpoint import _rng_state, _set_rng_state
from parp.training.finetune import prepare_finetune
from parp.training.loop import TrainConfig, train


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # unpickling this calls open(marker, "w"): the file appears if anything unpickles it
        return (open, (str(self.marker), "w"))


# names accelerate's load_state and torch users would read, plus anything pickle-shaped already there
_PLANTED = ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin", "sampler.bin",
            "scaler.pt", "pytorch_model.bin", "dl_state_dict.bin", "training_args.bin")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety")
    manifest = synthetic_corpus(root / "data", n=12)
    model_dir = tiny_model_dir(root / "model")
    return prepare_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                            ModelArguments(model=str(model_dir), mask_time_prob=0.0), progress=False)


def _config(out: Path, max_steps: int) -> TrainConfig:
    return TrainConfig(output_dir=str(out), max_steps=max_steps, save_every=2, eval_every=0, warmup_steps=1,
                       learning_rate=1e-3, max_batch_seconds=3, progress=False, seed=1, log_every=1)


def test_resume_reads_no_pickle_and_runs_no_planted_code(setup, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with pytest.raises(Killed):
        train(setup.new_model(1), setup.train_set, setup.valid_set, _config(out, 4), setup.objective,
              hooks=[kill_at(3)])
    checkpoint = out / "checkpoints" / "step-2"
    assert checkpoint.is_dir()
    # what the loop writes is safetensors and JSON only
    written = {p.suffix for p in checkpoint.iterdir()}
    assert written <= {".json", ".safetensors"}, written

    marker = tmp_path / "payload-ran"
    planted = []
    (out / "model").mkdir()
    for folder in (checkpoint, out, out / "model"):
        for name in _PLANTED:
            (folder / name).write_bytes(pickle.dumps(_Payload(marker)))
            planted.append(folder / name)
    assert pickle.loads(planted[0].read_bytes()) and marker.exists()  # the payload is live...
    marker.unlink()

    loads = []  # ...and a resume must not hand any file to an unpickler, restricted or not
    real_torch_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a) or real_torch_load(*a, **k))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: loads.append(a) or pytest.fail("pickle.load on resume"))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: loads.append(a) or pytest.fail("pickle.loads on resume"))
    result = train(setup.new_model(1), setup.train_set, setup.valid_set, _config(out, 4), setup.objective)
    assert result.resumed_from_step == 2 and result.steps == 4
    assert not marker.exists(), "a planted pickle payload ran on resume"
    assert loads == []


def test_pickle_free_resume_matches_an_uninterrupted_run(setup, tmp_path):
    from safetensors.torch import load_file

    straight = train(setup.new_model(1), setup.train_set, setup.valid_set, _config(tmp_path / "a", 4),
                     setup.objective)
    with pytest.raises(Killed):
        train(setup.new_model(1), setup.train_set, setup.valid_set, _config(tmp_path / "b", 4), setup.objective,
              hooks=[kill_at(3)])
    resumed = train(setup.new_model(1), setup.train_set, setup.valid_set, _config(tmp_path / "b", 4),
                    setup.objective)
    assert resumed.resumed_from_step == 2
    a = load_file(str(tmp_path / "a" / "checkpoints" / "step-4" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "step-4" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:  # optimizer moments, LR schedule position and data order all restored
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    losses = [[h["loss"] for h in r.history if "loss" in h] for r in (straight, resumed)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_rng_state_round_trips_through_json():
    import json

    state = json.loads(json.dumps(_rng_state()))
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    _set_rng_state(state)
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(3), expected[2])
