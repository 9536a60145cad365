"""The loop's own options: a wall-clock budget ends a run cleanly, like reaching max_steps."""

from __future__ import annotations

import json

from helpers import synthetic_corpus, tiny_model_dir

from parp.data import DataArguments
from parp.models import ModelArguments
from parp.training.finetune import run_finetune
from parp.training.hooks import TrainingHook
from parp.training.loop import TrainConfig


def test_max_minutes_stops_early_and_still_exports(tmp_path):
    manifest = synthetic_corpus(tmp_path / "data", n=12)
    model_dir = tiny_model_dir(tmp_path / "model")
    result = run_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                          ModelArguments(model=str(model_dir), mask_time_prob=0.0),
                          TrainConfig(output_dir=str(tmp_path / "run"), max_steps=10_000, max_minutes=1e-4,
                                      warmup_steps=0, eval_every=0, save_every=0, progress=False))
    assert 1 <= result.train.steps < 10_000
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    record = json.loads(result.record_path.read_text())
    assert record["status"] == "completed" and record["metrics"]["final"]["cer"] >= 0


class _Probe(TrainingHook):
    """A hook recording, after each update, a body weight, the head weight and how many batches were drawn."""

    name = "probe"

    def __init__(self, dataset):
        self.body, self.head, self.dataset = [], [], dataset

    def on_train_begin(self, state):
        self.start = self._snap(state)

    def _snap(self, state):
        params = dict(state.model.named_parameters())
        return (params["wav2vec2.encoder.layers.0.attention.q_proj.weight"].detach().clone(),
                params["lm_head.weight"].detach().clone())

    def on_step_end(self, state):
        body, head = self._snap(state)
        self.body.append(body)
        self.head.append(head)


def _setup(tmp_path, n=16):
    from parp.training.finetune import prepare_finetune

    manifest = synthetic_corpus(tmp_path / "data", n=n)
    model_dir = tiny_model_dir(tmp_path / "model")
    return prepare_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                            ModelArguments(model=str(model_dir), mask_time_prob=0.0), progress=False)


def test_freeze_transformer_steps_holds_the_body_still_while_the_head_trains(tmp_path):
    import torch

    from parp.training.loop import train

    setup = _setup(tmp_path)
    probe = _Probe(setup.train_set)
    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=5, freeze_transformer_steps=3,
                         learning_rate=1e-2, warmup_steps=0, eval_every=0, save_every=0, progress=False,
                         max_batch_seconds=3)
    train(setup.new_model(), setup.train_set, None, config, setup.objective, hooks=[probe])
    body0, head0 = probe.start
    for step in range(3):  # updates 1..3: body unchanged, head moving
        assert torch.equal(probe.body[step], body0), f"body moved during freeze (update {step + 1})"
    assert not torch.equal(probe.head[0], head0)
    assert not torch.equal(probe.body[4], body0), "body never trained after the freeze"


def test_gradient_accumulation_draws_k_batches_per_update(tmp_path):
    """k micro-batches per update (an epoch's last, incomplete accumulation also updates: accelerate's rule)."""
    from parp.data.batching import LengthGroupedBatchSampler
    from parp.training.loop import train

    setup = _setup(tmp_path, n=40)
    assert len(LengthGroupedBatchSampler(setup.train_set.durations, 3, seed=0)) >= 6  # one epoch is enough
    drawn = []  # forward passes (counting collate calls would include accelerate's one-batch look-ahead)
    loss = setup.objective.loss
    setup.objective.loss = lambda model, batch: drawn.append(len(batch["input_values"])) or loss(model, batch)
    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=3, grad_accum_steps=2, learning_rate=1e-3,
                         warmup_steps=0, eval_every=0, save_every=0, progress=False, max_batch_seconds=3)
    result = train(setup.new_model(), setup.train_set, None, config, setup.objective)
    assert result.steps == 3
    assert len(drawn) == 6  # 3 optimizer updates x 2 micro-batches


def test_tri_stage_schedule_warms_up_holds_then_decays_to_five_percent():
    from parp.training.loop import _lr_lambda

    factor = _lr_lambda(TrainConfig(max_steps=100, warmup_steps=10, lr_schedule="tri-stage"), "body")
    assert factor(0) == 0.1 and factor(9) == 1.0
    assert factor(10) == factor(50) == 1.0  # held at the peak until half of max_steps
    assert 0.05 < factor(75) < 1.0 and abs(factor(100) - 0.05) < 1e-9
    assert all(factor(s) >= factor(s + 1) for s in range(50, 100))


def test_layer_lr_decay_gives_deeper_layers_larger_learning_rates(tmp_path):
    import torch

    from parp.models import load_ctc_model
    from parp.training.loop import _param_groups

    model = load_ctc_model(str(tiny_model_dir(tmp_path / "model")), vocab_size=8, pad_token_id=0)
    n_layers = model.config.num_hidden_layers
    groups = _param_groups(model, TrainConfig(learning_rate=1.0, layer_lr_decay=0.5))
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert lr_of[id(params["lm_head.weight"])] == 1.0
    top = params[f"wav2vec2.encoder.layers.{n_layers - 1}.attention.q_proj.weight"]
    assert lr_of[id(top)] == 0.5
    assert lr_of[id(params["wav2vec2.encoder.layers.0.attention.q_proj.weight"])] == 0.5 ** n_layers
    assert lr_of[id(params["wav2vec2.feature_projection.projection.weight"])] == 0.5 ** (n_layers + 1)
    # without decay, one learning rate for every parameter
    assert {g["lr"] for g in _param_groups(model, TrainConfig(learning_rate=1.0))} == {1.0}
    assert isinstance(torch.optim.AdamW(groups), torch.optim.AdamW)


def test_freeze_feature_projection_holds_the_projection_still(tmp_path):
    import torch

    from parp.training.loop import train

    setup = _setup(tmp_path)
    model = setup.new_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "feature_projection" in n}
    assert before, "the tiny model has a feature projection"
    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=3, freeze_feature_projection=True,
                         learning_rate=1e-2, warmup_steps=0, eval_every=0, save_every=0, progress=False,
                         max_batch_seconds=3)
    q_before = model.wav2vec2.encoder.layers[0].attention.q_proj.weight.detach().clone()
    train(model, setup.train_set, None, config, setup.objective)
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], p) for n, p in before.items())
    assert not torch.equal(model.wav2vec2.encoder.layers[0].attention.q_proj.weight, q_before)


def test_ctc_head_prior_init_puts_the_blank_share_of_frames_in_the_bias(tmp_path):
    import dataclasses

    import torch

    from parp.data.dataset import encoder_frames

    setup = _setup(tmp_path)
    setup.model_args = dataclasses.replace(setup.model_args, ctc_head_init="prior")
    model = setup.new_model()
    probs = model.lm_head.bias.detach().double().exp()
    assert abs(probs.sum().item() - 1) < 1e-5
    frames = sum(encoder_frames(round(s * 16000)) for s in setup.train_set.durations)
    labels = sum(len(x) for x in setup.train_set.labels)
    blank = setup.vocabulary.pad_id
    assert probs.argmax().item() == blank
    vocab = model.lm_head.out_features  # add-one smoothing over the vocabulary
    assert abs(probs[blank].item() - (frames - labels + 1) / (frames + vocab)) < 1e-6
    # the random default leaves transformers' initialisation (same seed, same weights) and differs from the prior
    setup.model_args = dataclasses.replace(setup.model_args, ctc_head_init="random")
    assert not torch.allclose(setup.new_model().lm_head.bias, model.lm_head.bias)


def test_bad_ctc_head_init_is_one_line_naming_the_flag(tmp_path):
    import pytest

    from parp.errors import ConfigError
    from parp.training.finetune import prepare_finetune

    manifest = synthetic_corpus(tmp_path / "data", n=8)
    with pytest.raises(ConfigError, match="--ctc-head-init must be random or prior, got 'zeros'"):
        prepare_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                         ModelArguments(model=str(tiny_model_dir(tmp_path / "model")), ctc_head_init="zeros"),
                         progress=False)


def test_progress_keeps_the_trainer_state_keys_and_reads_older_checkpoints():
    """trainer_state.json keeps the keys it had as a dict, so checkpoints resume across the change; an older one
    lacking some keys starts those at their defaults, and the file's other keys are not progress."""
    from dataclasses import asdict

    from parp.training.loop import Progress

    assert list(asdict(Progress())) == ["batches_in_epoch", "best_value", "best_step", "best_metrics",
                                        "train_seconds", "train_audio_seconds", "evals_without_improvement"]
    old = Progress.from_saved({"batches_in_epoch": 3, "best_value": 0.5, "best_step": 40, "step": 50,
                               "wall_seconds": 9.0, "history": []})
    assert (old.batches_in_epoch, old.best_value, old.best_step) == (3, 0.5, 40)
    assert (old.train_seconds, old.evals_without_improvement, old.best_metrics) == (0.0, 0, {})
