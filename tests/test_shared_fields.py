"""One default in one place: the sweep, demo and pretraining configs declare the options they share with
``DataArguments`` / ``ModelArguments`` / ``PruneArguments`` / ``TrainConfig`` from those dataclasses
(``parp.config.shared``) instead of restating them, and the sweep YAMLs of docs/results still load."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from parp.config import SHARED_KEY, parse_dataclasses, shared, shared_fields, shared_values
from parp.data import DataArguments
from parp.experiments.cells import Cell, cell_arguments
from parp.experiments.demo import DemoArguments, demo_sweep_config
from parp.experiments.launchers import LaunchArguments
from parp.experiments.grid import SweepConfig, load_sweep_config, parse_languages, validate_sweep
from parp.methods import PruneArguments
from parp.models import ModelArguments
from parp.pretrain.recipe import PretrainConfig
from parp.training.loop import TrainConfig

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"

# each config, the dataclasses whose fields it may share, and the defaults it sets on purpose
CONFIGS = {
    SweepConfig: ((DataArguments, ModelArguments, PruneArguments, TrainConfig), {"output_dir"}),
    DemoArguments: ((DataArguments, ModelArguments, PruneArguments, TrainConfig, SweepConfig),
                    {"output_dir", "valid_fraction", "max_steps", "warmup_steps",
                     "max_batch_seconds", "prune_every"}),
    PretrainConfig: ((TrainConfig,), {"output_dir", "max_steps", "learning_rate", "warmup_steps", "lr_schedule",
                                      "weight_decay", "max_batch_seconds", "max_grad_norm",
                                      "freeze_feature_encoder"}),
}


# grid axes of a sweep named like the option they vary (``seeds`` is the older, plural kind)
AXES = {(SweepConfig, "train_hours")}


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


@pytest.mark.parametrize("cls", list(CONFIGS), ids=lambda c: c.__name__)
def test_every_shared_field_is_declared_from_its_owner_with_its_default(cls):
    sources, overridden = CONFIGS[cls]
    bases = [dataclasses.fields(b) for b in cls.__mro__[1:] if dataclasses.is_dataclass(b)]
    inherited = {id(f) for fields in bases for f in fields}
    hints = typing.get_type_hints(cls)
    checked = 0
    for f in dataclasses.fields(cls):
        if id(f) in inherited:
            continue  # inherited unchanged: the owner's own field
        owners = [s for s in sources if f.name in {g.name for g in dataclasses.fields(s)}]
        if not owners:
            continue  # the config's own option
        if (cls, f.name) in AXES:  # a list of the owner's values, one cell per value
            assert typing.get_origin(typing.get_args(hints[f.name])[0]) is list, f.name
            continue
        assert SHARED_KEY in f.metadata, f"{cls.__name__}.{f.name} restates {owners[0].__name__}.{f.name}"
        source, name, own_default = f.metadata[SHARED_KEY]
        assert source in owners and name == f.name
        owned = {g.name: g for g in dataclasses.fields(source)}[name]
        assert hints[f.name] == typing.get_type_hints(source)[name], f.name
        if not own_default:
            assert _default(f) == _default(owned), f"{cls.__name__}.{f.name}"
        checked += 1
    assert checked >= len(overridden)
    assert set(shared_fields(cls, overridden=True)) == overridden


def test_the_sweep_keeps_the_cells_defaults():
    """Every data/model/prune option of the sweep has its owner's default: a cell of a default sweep gets the
    same DataArguments / ModelArguments as ``parp prune`` would."""
    assert set(shared_fields(SweepConfig, DataArguments)) == {
        "max_train_utterances", "max_valid_utterances", "valid_fraction", "text_column", "token_unit",
        "allow_unknown_chars", "split_seed", "max_seconds"}
    assert set(shared_fields(SweepConfig, ModelArguments)) == {"model", "mask_time_prob", "ctc_head_init"}
    assert set(shared_fields(SweepConfig, PruneArguments)) == {"prune_every", "imp_rounds", "scope"}
    config = SweepConfig(languages=["xx=a.tsv"])
    data, model, train, prune = cell_arguments(config, parse_languages(config.languages)[0],
                                               Cell("xx", "parp", 0.5, 0), Path("out"))
    assert data == DataArguments(train_manifest="a.tsv") and model == ModelArguments()
    assert prune == PruneArguments(method="parp", sparsity=0.5)
    assert dataclasses.replace(train, output_dir=TrainConfig().output_dir) == TrainConfig()


def test_shared_takes_the_owners_default_and_help_unless_told():
    @dataclasses.dataclass
    class Owner:
        n: int = dataclasses.field(default=3, metadata={"help": "N."})
        xs: list[int] = dataclasses.field(default_factory=lambda: [1], metadata={"help": "Xs."})

    @dataclasses.dataclass
    class User:
        n: int = shared(Owner, "n")
        xs: list[int] = shared(Owner, "xs", default=[2, 3], help="Other xs.")

    a, b = User(), User()
    assert (a.n, a.xs) == (3, [2, 3]) and a.xs is not b.xs
    assert shared_fields(User, overridden=False) == ["n"] and shared_fields(User, overridden=True) == ["xs"]
    assert shared_values(User(n=7), Owner) == {"n": 7, "xs": [2, 3]}
    (parsed,) = parse_dataclasses([User], ["--n", "5"], prog="t")  # argparse never sees the marker
    assert parsed == User(n=5)


def test_the_flags_are_those_of_before():
    names = {f.name for f in dataclasses.fields(SweepConfig)} - {f.name for f in dataclasses.fields(TrainConfig)}
    assert names == {"languages", "methods", "sparsities", "seeds", "train_hours", "model", "mask_time_prob", "ctc_head_init",
                     "max_train_utterances",
                     "max_valid_utterances", "valid_fraction", "text_column", "token_unit", "allow_unknown_chars",
                     "split_seed", "max_seconds", "prune_every", "imp_rounds", "imp_chain", "scope", "reuse_dense", "reuse_cells_from", "multilingual",
                     "multilingual_steps", "transfer", "transfer_sources", "only_cells", "collect_only"}
    assert [f.name for f in dataclasses.fields(DemoArguments)] == [
        "model", "output_dir", "language", "utterances", "valid_fraction", "methods", "sparsities", "max_steps",
        "learning_rate", "warmup_steps", "max_batch_seconds", "prune_every", "seed", "quick", "progress"]
    sweep, _ = parse_dataclasses([SweepConfig, LaunchArguments],
                                 ["--languages", "xx=a.tsv", "--max-train-utterances", "5", "--mask_time_prob", "0.1",
                                  "--scope", "layer", "--split-seed", "2", "--allow_unknown_chars"], prog="parp sweep")
    assert (sweep.max_train_utterances, sweep.mask_time_prob, sweep.scope, sweep.split_seed,
            sweep.allow_unknown_chars) == (5, 0.1, "layer", 2, True)


def test_the_demo_runs_the_sweep_it_ran_before(tmp_path):
    config = demo_sweep_config(DemoArguments(output_dir=str(tmp_path), seed=4), tmp_path / "fi.tsv")
    assert (config.max_steps, config.learning_rate, config.warmup_steps, config.max_batch_seconds,
            config.prune_every, config.valid_fraction, config.seeds, config.seed) == (350, 2e-3, 30, 10.0, 25, 0.15,
                                                                                      [4], 0)
    assert (config.methods, config.sparsities, config.output_dir, config.model) == (
        ["omp", "parp"], [0.5, 0.7], str(tmp_path), None)
    assert (config.eval_every, config.save_every, config.log_every) == (0, 175, 10)


@pytest.mark.parametrize("path", sorted([*RESULTS.glob("*.yaml"), *RESULTS.glob("*/*.yaml")]), ids=lambda p: p.name)
def test_the_sweep_yamls_of_docs_results_still_load(path):
    config = load_sweep_config(path)
    parsed, _ = parse_dataclasses([SweepConfig, LaunchArguments], ["--config", str(path)], prog="parp sweep")
    assert parsed == config
    language = parse_languages(config.languages)[0]
    data, model, train, prune = cell_arguments(config, language, Cell(language.name, "parp", 0.5, 0), Path("o"))
    assert (data.train_manifest, data.valid_fraction, data.text_column, data.token_unit) == (
        language.train_manifest, config.valid_fraction, config.text_column, config.token_unit)
    assert (model.model, model.mask_time_prob) == (config.model, config.mask_time_prob)
    max_steps = language.schedule_options().get("max_steps", config.max_steps)  # a language's own N(d) wins
    assert (train.max_steps, train.learning_rate, prune.prune_every) == (max_steps, config.learning_rate,
                                                                        config.prune_every)
    languages, cells = validate_sweep(config)  # every language's own options and the whole grid are valid
    assert cells and {cell.language for cell in cells} >= {lang.name for lang in languages}
