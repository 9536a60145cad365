"""The model card's objective choice is computed from the runs' own records, not written by hand."""

from __future__ import annotations

import json

import pytest

from parp.pretrain.card import _comparison_section, objective_comparison, update_comparison


def _pretrain(folder, objective, seconds, threads):
    folder.mkdir(parents=True)
    (folder / "pretraining.json").write_text(json.dumps({
        "objective": {"objective": objective}, "steps": 100, "train_seconds": seconds,
        "train_audio_seconds": 3600.0, "hardware": {"torch_threads": threads},
        "final_metrics": {"loss": 3.0, "accuracy": 1.0 if objective == "wav2vec2" else 0.3}}))
    return folder


def _downstream(folder, cer, random_cer=None):
    folder.mkdir(parents=True)
    arms = {"pretrained": {"final": {"cer": cer}}}
    if random_cer is not None:
        arms["random"] = {"final": {"cer": random_cer}}
    schedule = {"max_steps": 350, "lr": 0.002, "max_batch_seconds": 10.0, "seed": 0}
    (folder / "downstream.json").write_text(json.dumps({"schedule": schedule, "arms": arms}))
    return folder


def test_gain_per_core_hour_picks_the_objective(tmp_path):
    runs = [(_pretrain(tmp_path / "brq", "best-rq", 1800.0, 1), _downstream(tmp_path / "d1", 0.80, 0.90)),
            (_pretrain(tmp_path / "w2v", "wav2vec2", 1800.0, 1), _downstream(tmp_path / "d2", 0.88)),
            (_pretrain(tmp_path / "big", "best-rq", 3600.0, 2), _downstream(tmp_path / "d3", 0.75))]
    rows = objective_comparison(runs)
    assert [r["core_hours"] for r in rows] == [0.5, 0.5, 2.0]
    assert [round(r["gain"], 3) for r in rows] == [0.1, 0.02, 0.15]
    assert [round(r["gain_per_core_hour"], 3) for r in rows] == [0.2, 0.04, 0.075]
    text = _comparison_section(rows, "cmd", chosen="best-rq")
    assert "came from **best-rq (brq)**; this checkpoint uses it" in text and "| w2v | wav2vec2 |" in text
    assert "frozen random quantiser" in text and "collapsed" not in text
    other = _comparison_section(rows, "cmd", chosen="wav2vec2")
    assert "still uses wav2vec2" in other and "frozen random quantiser" not in other


def test_update_rewrites_only_the_objective_section(tmp_path):
    card = tmp_path / "card"
    _pretrain(card, "best-rq", 3600.0, 2)
    record = json.loads((card / "pretraining.json").read_text())
    record["loss_history"] = [{"step": 50, "valid_loss": 4.0}, {"step": 100, "valid_loss": 3.5}]
    (card / "pretraining.json").write_text(json.dumps(record))
    (card / "README.md").write_text("# card\n\nintro\n\n## Why best-rq\n\nold text\n\n## Pretraining loss\n\nkept\n")
    runs = [(card, _downstream(tmp_path / "d1", 0.70, 0.90)),
            (_pretrain(tmp_path / "w2v", "wav2vec2", 1800.0, 1), _downstream(tmp_path / "d2", 0.91))]
    update_comparison(card, objective_comparison(runs), "the commands")
    text = (card / "README.md").read_text()
    assert "wav2vec2 (w2v) gave no gain over random initialisation: a held-out accuracy of 1.00" in text
    assert text.startswith("# card\n\nintro\n\n## Why best-rq: downstream gain per compute hour")
    assert "old text" not in text and text.endswith("## Pretraining loss\n\nkept\n")
    assert "| card | best-rq |" in text and "the commands" in text and "4.00 → 3.50 at updates 50/100" in text
    (card / "README.md").write_text("# a card without the sections\n")
    with pytest.raises(ValueError, match="README.md"):
        update_comparison(card, objective_comparison(runs), "x")


def test_a_comparison_without_a_random_arm_is_refused(tmp_path):
    runs = [(_pretrain(tmp_path / "brq", "best-rq", 60.0, 1), _downstream(tmp_path / "d1", 0.8))]
    with pytest.raises(ValueError, match="random"):
        objective_comparison(runs)


def test_install_and_update_write_the_same_objective_section(tmp_path):
    """``write_card`` (install) and ``update_comparison`` share one section builder: same input, same text."""
    import shutil

    from parp.models import default_model_path
    from parp.pretrain.card import write_card

    source, run = default_model_path(), tmp_path / "run"
    (run / "model").mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        shutil.copy(source / name, run / "model" / name)
    shutil.copy(source / "loss_curve.png", run / "loss_curve.png")
    record = json.loads((source / "pretraining.json").read_text())
    record["history"] = record.pop("loss_history")
    (run / "pretraining.json").write_text(json.dumps(record))
    runs = [(run, _downstream(tmp_path / "d1", 0.70, 0.90))]
    card = write_card(run, tmp_path / "card", "cmd", comparison=objective_comparison(runs), comparison_command="cc")
    installed = (card / "README.md").read_text()
    update_comparison(card, objective_comparison(runs), "cc")
    assert (card / "README.md").read_text() == installed
    steps = "/".join(str(h["step"]) for h in record["history"] if "valid_loss" in h)  # the embedded run's own
    assert "## Why best-rq: downstream gain per compute hour" in installed and f"at updates {steps}" in installed
    assert steps.count("/") >= 3


def test_parp_card_commands_install_and_update_the_card(tmp_path, capsys):
    """``parp card install`` / ``update-comparison`` are commands of the table: dataclass flags, one-line errors."""
    import shutil

    from parp.cli import main
    from parp.models import default_model_path
    from parp.pretrain.card import write_card

    source, run = default_model_path(), tmp_path / "run"
    (run / "model").mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        shutil.copy(source / name, run / "model" / name)
    shutil.copy(source / "loss_curve.png", run / "loss_curve.png")
    shutil.copy(source / "pretraining.json", run / "pretraining.json")
    pair = f"{run}:{_downstream(tmp_path / 'd1', 0.70, 0.90)}"
    card = tmp_path / "card"
    assert main(["card", "install", "--pretrain_dir", str(run), "--command", "parp pretrain ...",
                 "--target", str(card)]) == 0
    assert capsys.readouterr().out.strip() == str(card)
    installed = (card / "README.md").read_text()
    assert installed == (write_card(run, tmp_path / "direct", "parp pretrain ...") / "README.md").read_text()
    assert "parp pretrain ..." in installed and "Not measured yet." in installed
    assert "`parp card install ...` installs it here" in installed and "python -m" not in installed
    assert main(["card", "update-comparison", "--compare", pair, "--compare_command", "cc", "--target", str(card)]) == 0
    updated = (card / "README.md").read_text()
    assert updated != installed and "| run | best-rq |" in updated and "\ncc\n" in updated
    assert updated.split("## Pretraining loss")[1] == installed.split("## Pretraining loss")[1]
    capsys.readouterr()
    for argv, culprit in ((["card"], "install | update-comparison"),
                          (["card", "install", "--command", "x"], "--pretrain_dir"),
                          (["card", "install", "--pretrain_dir", str(tmp_path / "nope"), "--command", "x"], "nope"),
                          (["card", "update-comparison", "--target", str(card)], "--compare"),
                          (["card", "update-comparison", "--compare", "no-colon"], "PRETRAIN_DIR:DOWNSTREAM_DIR"),
                          (["card", "update-comparison", "--compare", f"{run}:{tmp_path}"], "downstream.json")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("parp: error: ") and culprit in err and len(err.strip().splitlines()) == 1, err
