"""Every exported model folder gets a README.md model card built from the run's record."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from helpers import synthetic_corpus, tiny_model_dir

import parp
from parp.cli import COMMANDS
from parp.config import parse_dataclasses
from parp.data import DataArguments
from parp.methods import PruneArguments, run_prune
from parp.models import ModelArguments
from parp.training.finetune import run_finetune
from parp.training.loop import TrainConfig


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return synthetic_corpus(root, n=16), tiny_model_dir(root / "model")


def _schedule(out, **kw):
    return TrainConfig(output_dir=str(out), max_steps=4, learning_rate=5e-2, warmup_steps=0, eval_every=2,
                       save_every=0, max_batch_seconds=4, progress=False, report_to="none", **kw)


def _card(folder):
    text = (folder / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    command = re.search(r"```bash\n(.*?)\n```", text, flags=re.S).group(1)
    return text, front, command


def test_pruned_model_card_has_method_sparsity_metrics_version_and_a_command_that_reruns(corpus, tmp_path):
    manifest, model_dir = corpus
    data = DataArguments(train_manifest=str(manifest), valid_fraction=0.25)
    model = ModelArguments(model=str(model_dir), mask_time_prob=0.0)
    prune = PruneArguments(method="omp", sparsity=0.6)
    summary = run_prune(data, model, _schedule(tmp_path / "omp"), prune)
    text, front, command = _card(tmp_path / "omp" / "model")
    assert front["base_model"] == str(model_dir) and front["library_name"] == "transformers"
    metrics = {m["type"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert metrics["cer"] == pytest.approx(summary["final"]["cer"], abs=1e-5)
    assert "| method | omp |" in text and f"| parp version | {parp.__version__} |" in text
    assert f"0.6000 / {summary['sparsity_achieved']:.4f}" in text
    assert "12 utterances" in text  # 16 minus the 25 % held out
    # the command in the card parses back to the same run
    argv = shlex.split(command)
    assert argv[:2] == ["parp", "prune"]
    parsed = parse_dataclasses(COMMANDS["prune"].arguments(), argv[2:], prog="parp prune")
    assert (parsed[0], parsed[1], parsed[2]) == (prune, data, model)
    assert parsed[3] == _schedule(tmp_path / "omp")


def test_finetune_writes_a_card_in_model_and_best(corpus, tmp_path):
    manifest, model_dir = corpus
    run_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                 ModelArguments(model=str(model_dir), mask_time_prob=0.0), _schedule(tmp_path / "ft"))
    for folder in ("model", "best"):
        text, front, command = _card(tmp_path / "ft" / folder)
        assert "none (full fine-tuning)" in text and "sparsity target" not in text
        assert command.startswith("parp finetune ") and "--max-steps 4" in command
        assert front["model-index"][0]["results"][0]["metrics"]
