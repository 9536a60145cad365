"""Every option also answers to the transformers CTC recipe's name; a lone .json/.yaml argument is the config."""

import dataclasses
import json

import pytest

from parp.cli import COMMANDS, main
from parp.config import HF_NAMES, HF_SWITCHES, _Parser, parse_dataclasses

HF_FLAGS = ["--model_name_or_path", "m", "--dataset_name", "ds", "--dataset_config_name", "fi",
            "--train_split_name", "tr", "--eval_split_name", "dev", "--audio_column_name", "wav",
            "--text_column_name", "txt", "--max_train_samples", "5", "--max_eval_samples", "3",
            "--min_duration_in_seconds", "0.5", "--max_duration_in_seconds", "9",
            "--gradient_accumulation_steps", "4", "--eval_steps", "7", "--save_steps", "8", "--logging_steps", "2",
            "--lr_scheduler_type", "cosine", "--dataloader_num_workers", "1", "--overwrite_output_dir",
            "--disable_tqdm", "--fp16"]
EXPECTED = {"model": "m", "hf_dataset": "ds", "hf_config": "fi", "hf_train_split": "tr", "hf_valid_split": "dev",
            "audio_column": "wav", "text_column": "txt", "max_train_utterances": 5, "max_valid_utterances": 3,
            "min_seconds": 0.5, "max_seconds": 9.0, "grad_accum_steps": 4, "eval_every": 7, "save_every": 8,
            "log_every": 2, "lr_schedule": "cosine", "num_workers": 1, "overwrite_output_dir": True, "progress": False,
            "mixed_precision": "fp16"}


def _parse(command: str, argv):
    parsed = parse_dataclasses(COMMANDS[command].arguments(), argv, prog=f"parp {command}")
    merged = {}
    for p in parsed:
        merged.update(vars(p))
    return merged


def test_transformers_flag_names_set_parp_fields():
    values = _parse("finetune", HF_FLAGS)
    assert {k: values[k] for k in EXPECTED} == EXPECTED


def test_transformers_names_in_a_lone_json_config_and_flags_still_win(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"model_name_or_path": "m", "gradient_accumulation_steps": 3, "logging_steps": 4,
                                  "fp16": False, "bf16": True, "overwrite_output_dir": True,
                                  "learning_rate": 3e-4}))
    values = _parse("finetune", [str(config), "--logging_steps", "9"])
    assert (values["model"], values["grad_accum_steps"], values["log_every"]) == ("m", 3, 9)
    assert (values["mixed_precision"], values["overwrite_output_dir"], values["learning_rate"]) == ("bf16", True, 3e-4)


def test_lone_yaml_config_with_nested_sections(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  eval_steps: 5\n  max_steps: 11\nmodel:\n  model_name_or_path: x\n")
    values = _parse("finetune", [str(config)])
    assert (values["eval_every"], values["max_steps"], values["model"]) == (5, 11, "x")


@pytest.mark.parametrize("command", ["finetune", "prune", "evaluate", "sweep", "demo", "report", "pretrain", "synth",
                                     "card install", "card update-comparison"])
def test_every_command_builds_its_parser_with_the_aliases(command):
    from parp import commands  # noqa: F401  (registers the later commands)

    types = COMMANDS[command].arguments()
    fields = {f.name for t in types for f in dataclasses.fields(t)}
    actions = _Parser(types)._option_string_actions
    for name in {n for names in HF_NAMES.values() for n in names} - fields:
        owners = [field for field, names in HF_NAMES.items() if name in names and field in fields]
        if owners:
            assert actions[f"--{name}"].dest in owners
        else:
            assert f"--{name}" not in actions
    for name, (dest, _, _) in HF_SWITCHES.items():
        assert (f"--{name}" in actions) == (dest in fields)


def test_evaluate_takes_max_eval_samples():
    from parp import commands  # noqa: F401

    assert _parse("evaluate", ["--model_name_or_path", "m", "--max_eval_samples", "6"])["max_utterances"] == 6


def test_switch_with_explicit_false_keeps_the_default():
    values = _parse("finetune", ["--disable_tqdm", "no", "--fp16", "false"])
    assert values["progress"] is True and values["mixed_precision"] == "auto"
    assert set(HF_SWITCHES) == {"disable_tqdm", "fp16", "bf16"}


def test_lone_config_not_found_is_one_error_line(tmp_path, capsys):
    assert main(["finetune", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("parp: error: ") and "missing.json" in err and len(err.splitlines()) == 1


def test_bad_switch_value_is_one_error_line(capsys):
    assert main(["finetune", "--disable_tqdm", "maybe"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--disable_tqdm" in err and "maybe" in err and len(err.splitlines()) == 1
