"""The opt-in speed flags reach the model and torch, and a run with them still trains."""

from __future__ import annotations

import pytest
import torch
from helpers import synthetic_corpus, tiny_model_dir

from parp.config import parse_dataclasses
from parp.data import DataArguments
from parp.models import ModelArguments
from parp.training.finetune import prepare_finetune
from parp.training.loop import TrainConfig, train


def test_flags_parse_and_default_off():
    (config,) = parse_dataclasses([TrainConfig], ["--gradient-checkpointing", "--tf32"], prog="parp finetune")
    assert config.gradient_checkpointing and config.tf32 and not config.torch_compile
    assert not any((TrainConfig().torch_compile, TrainConfig().gradient_checkpointing, TrainConfig().tf32))


@pytest.mark.filterwarnings("error::FutureWarning")  # the deprecated transformers name must not be used
def test_gradient_checkpointing_and_tf32_train(tmp_path):
    setup = prepare_finetune(DataArguments(train_manifest=str(synthetic_corpus(tmp_path / "data", n=12)),
                                           valid_fraction=0.25),
                             ModelArguments(model=str(tiny_model_dir(tmp_path / "model")), mask_time_prob=0.0),
                             progress=False)
    model = setup.new_model()
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=2, warmup_steps=0, eval_every=0,
                             save_every=0, progress=False, gradient_checkpointing=True, tf32=True)
        before = model.lm_head.weight.detach().clone()
        result = train(model, setup.train_set, None, config, setup.objective)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    checkpointing = (model.is_activation_checkpointing if hasattr(type(model), "is_activation_checkpointing")
                     else model.is_gradient_checkpointing)  # renamed in transformers 5
    assert checkpointing and result.steps == 2
    assert not torch.equal(before, model.lm_head.weight)  # it trained through the recomputed activations
