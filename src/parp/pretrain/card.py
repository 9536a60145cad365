"""``parp card``: install a pretraining run as the embedded default, its model card written from the run's records.

``parp card install --pretrain_dir RUN --downstream_dir GAIN --command "..." --downstream_command "..."`` copies
``RUN/model`` into ``src/parp/assets/parp-ssl-small`` with ``README.md`` (the card), ``loss_curve.png`` and
``downstream.png``; ``parp card update-comparison --compare RUN:DOWNSTREAM ...`` rewrites only the card's
objective-choice section once the comparison has run. Every figure in the card is read from ``pretraining.json`` /
``downstream.json``: nothing about a run is typed by hand.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..models import default_model_path
from ..records import DOWNSTREAM, PRETRAINING, read_record, write_record

KEEP = ("config.json", "model.safetensors", "preprocessor_config.json", "objective.json", "quantizer.safetensors")


def _fmt(value, digits=3):
    return "n/a" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def _downstream_section(downstream: dict | None, command: str) -> str:
    if not downstream:
        return "Not measured yet.\n"
    rows = ["| initialisation | final validation CER | best validation CER | final WER | wall time (s) |",
            "|---|---|---|---|---|"]
    for arm, curve in downstream["arms"].items():
        final, best = curve.get("final") or {}, curve.get("best") or {}
        rows.append(f"| {arm} | {_fmt(final.get('cer'))} | {_fmt(best.get('cer'))} | {_fmt(final.get('wer'))} | "
                    f"{_fmt(curve.get('wall_seconds'), 0)} |")
    s = downstream["schedule"]
    where = downstream.get("hardware", "")
    return (f"Same architecture, same schedule ({s['max_steps']} updates, peak LR {s['lr']}, "
            f"{s['max_batch_seconds']} s of audio per batch, seed {s['seed']}, identical data order), fine-tuned with "
            "CTC on Mboshi (parp's default seeded split: seed 0, 10 % held out; 150 validation utterances scored)"
            + (f", {where}" if where else "") + ":\n\n"
            + "\n".join(rows) + "\n\n![downstream](downstream.png)\n\n"
            "Reproduce:\n\n```bash\n" + command + "\n```\n")


def _data_description(data: dict) -> str:
    """What the unlabelled audio was, from the record's source list (transcripts are never used)."""
    names = {"mboshi": "Mboshi (4 h, `../shared/data/mboshi`, transcripts unused)",
             "fsdd": "FSDD English digits (`../shared/data/fsdd`)"}
    parts, synthetic = [], []
    for source in data.get("sources", []):
        folder = Path(source).parent
        if "synth" in folder.parent.name:  # parp synth writes OUT/<language>/train.tsv
            synthetic.append(folder.name)
        else:
            parts.append(names.get(folder.name, f"`{source}`"))
    if synthetic:
        parts.append(f"eSpeak NG synthetic speech in {len(synthetic)} languages ({' '.join(synthetic)}, `parp synth`)")
    return ", ".join(parts) or "see pretraining.json"


def objective_comparison(runs: list[tuple[Path, Path]]) -> list[dict]:
    """One row per pretraining run: its compute, the CER of fine-tuning it, and that CER's gain over random init
    per core-hour of pretraining (the criterion the objective is chosen by).

    ``runs`` pairs a ``parp pretrain`` output folder with a ``parp pretrain downstream`` folder whose
    ``pretrained`` arm fine-tuned it; the random-initialisation CER is read from any of those folders that has a
    ``random`` arm (same schedule and seed, so one is enough).
    """
    downstream = [read_record(d, DOWNSTREAM) for _, d in runs]
    random_arms = [d["arms"]["random"] for d in downstream if "random" in d.get("arms", {})]
    if not random_arms:
        raise ValueError("objective comparison: no downstream folder has a 'random' arm to measure gain against")
    random_cer = random_arms[0]["final"]["cer"]
    rows = []
    for (pretrain_dir, downstream_dir), result in zip(runs, downstream):
        record = read_record(pretrain_dir, PRETRAINING)
        core_hours = record["train_seconds"] * max(1, record["hardware"].get("torch_threads") or 1) / 3600
        cer = result["arms"]["pretrained"]["final"]["cer"]
        rows.append({"run": Path(pretrain_dir).name, "objective": record["objective"]["objective"],
                     "updates": record["steps"], "audio_hours_seen": record["train_audio_seconds"] / 3600,
                     "data_hours": record.get("data", {}).get("train_hours"),
                     "core_hours": core_hours, "valid_loss": record["final_metrics"].get("loss"),
                     "valid_accuracy": record["final_metrics"].get("accuracy"),
                     "cer": cer, "random_cer": random_cer, "gain": random_cer - cer,
                     "gain_per_core_hour": (random_cer - cer) / core_hours if core_hours else None,
                     "downstream_schedule": result["schedule"]})
    return rows


def _comparison_section(rows: list[dict] | None, command: str, chosen: str) -> str:
    """The objective choice, computed from the comparison's records, with the reasoning that fits its outcome."""
    if not rows:
        return ("The objectives were compared on throughput only (BEST-RQ 3.52 vs contrastive 1.72 audio-s/s on "
                "this CPU); no downstream comparison was recorded.\n")
    table = ["| pretraining run | objective | data (h) | updates | audio seen (h) | core-hours | held-out pretraining "
             "loss / accuracy | downstream CER | gain over random init | gain per core-hour |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['run']} | {r['objective']} | {_fmt(r['data_hours'], 2)} | {r['updates']} | "
                     f"{r['audio_hours_seen']:.2f} | {r['core_hours']:.2f} | {_fmt(r['valid_loss'], 2)} / "
                     f"{_fmt(r['valid_accuracy'], 2)} | {r['cer']:.3f} | {r['gain']:+.3f} | "
                     f"{_fmt(r['gain_per_core_hour'])} |")
    s = rows[0]["downstream_schedule"]
    best = max(rows, key=lambda r: r["gain_per_core_hour"] or float("-inf"))

    def name(r: dict) -> str:
        return r["objective"] if r["run"] == r["objective"] else f"{r['objective']} ({r['run']})"

    if best["objective"] == chosen:
        verdict = f"The most downstream gain per core-hour came from **{name(best)}**; this checkpoint uses it."
        if chosen == "best-rq":
            verdict += (" Why, beyond the table: BEST-RQ's targets come from a frozen random quantiser (nothing to "
                        "collapse, no distractor sampling), so each CPU-second carries more audio than wav2vec 2.0's "
                        "contrastive objective (`Wav2Vec2ForPreTraining`, 100 distractors per masked frame, Gumbel "
                        "quantiser; compare the 'audio seen' column); HuBERT-style k-means targets would add a "
                        "clustering pass per iteration.")
    else:
        verdict = (f"The most downstream gain per core-hour came from **{name(best)}**; this checkpoint still uses "
                   f"{chosen}, so retraining it with {best['objective']} is the next "
                   "step for the embedded default.")
    for r in rows:
        if r["gain"] <= 0:
            verdict += f" {name(r)} gave no gain over random initialisation"
            if (r.get("valid_accuracy") or 0) >= 0.999:
                verdict += (": a held-out accuracy of 1.00 on its pretraining task with no downstream gain is the "
                            "signature of a collapsed (trivial) solution, e.g. a quantiser using a handful of codes")
            verdict += "."
    return ("Chosen by measurement. Runs of the same encoder (same architecture, batch size, learning rate and seed) "
            "were each fine-tuned with CTC with one fixed schedule "
            f"({s['max_steps']} updates, peak LR {s['lr']}, {s['max_batch_seconds']} s per batch, seed {s['seed']}) "
            "on a language none of them heard in pretraining (synthetic Finnish, 240 utterances, 15 % held out). "
            "Compute is counted in core-hours of optimisation (training seconds × torch threads). Random "
            f"initialisation with that schedule ends at CER {rows[0]['random_cer']:.3f}.\n\n"
            + "\n".join(table) + "\n\n" + verdict + "\n\nReproduce:\n\n```bash\n" + command + "\n```\n")


WHY_HEADING = "## Why "
NEXT_HEADING = "## Pretraining loss"


def update_comparison(target: Path, comparison: list[dict], comparison_command: str) -> Path:
    """Rewrite only the objective-choice section of an installed card (the comparison is run after the checkpoint)."""
    card_path = Path(target) / "README.md"
    card = card_path.read_text(encoding="utf-8")
    if WHY_HEADING not in card or NEXT_HEADING not in card:
        raise ValueError(f"{card_path}: no '{WHY_HEADING}...' / '{NEXT_HEADING}' sections to update")
    record = read_record(target, PRETRAINING)
    start, end = card.index(WHY_HEADING), card.index(NEXT_HEADING)
    card_path.write_text(card[:start] + _why_section(record, comparison, comparison_command) + card[end:],
                         encoding="utf-8")
    return card_path


def _why_section(record: dict, comparison: list[dict] | None, comparison_command: str) -> str:
    """The card's objective-choice section, from its heading up to the next one; the same for install and update."""
    chosen = record["objective"].get("objective", "?")
    return (f"{WHY_HEADING}{chosen}: downstream gain per compute hour\n\n"
            + _comparison_section(comparison, comparison_command, chosen) + "\n" + _limits_paragraph(record) + "\n")


def _limits_paragraph(record: dict) -> str:
    """What the held-out loss did during pretraining, read from the run's history, and what would go further."""
    history = record.get("history") or record.get("loss_history") or []
    points = [(h["step"], h["valid_loss"]) for h in history if "valid_loss" in h]
    if not points:
        return ""
    losses = " → ".join(f"{loss:.2f}" for _, loss in points)
    steps = "/".join(str(step) for step, _ in points)
    budget = record.get("config", {})
    stop = (f"its --max_minutes {budget['max_minutes']} budget" if budget.get("max_minutes") and
            record["steps"] < budget.get("max_steps", 0) else "its planned --max_steps")
    return (f"Honest limits: the held-out loss went {losses} at updates {steps}; the run stopped at "
            f"{record['steps']} updates ({record['train_audio_seconds'] / 3600:.2f} h of audio seen) at {stop}. "
            "Longer pretraining, more unlabelled audio, a larger model, or several codebooks would be the next steps "
            "to a stronger encoder.\n")


def write_card(pretrain_dir: Path, target: Path, command: str, downstream_dir: Path | None = None,
               downstream_command: str = "", comparison: list[dict] | None = None,
               comparison_command: str = "") -> Path:
    pretrain_dir, target = Path(pretrain_dir), Path(target)
    record = read_record(pretrain_dir, PRETRAINING)
    downstream = None
    if downstream_dir and (Path(downstream_dir) / DOWNSTREAM).exists():
        downstream = read_record(downstream_dir, DOWNSTREAM)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    source = pretrain_dir / "model" if (pretrain_dir / "model").is_dir() else pretrain_dir  # a run, or its model
    for name in KEEP:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    shutil.copy2(pretrain_dir / "loss_curve.png", target / "loss_curve.png")
    if downstream:
        shutil.copy2(Path(downstream_dir) / "downstream.png", target / "downstream.png")
    compact = {k: v for k, v in record.items() if k != "history"}
    compact["loss_history"] = [h for h in record.get("history", record.get("loss_history", []))
                               if "loss" in h or "valid_loss" in h]
    write_record(target, PRETRAINING, compact)

    data, model, hw = record["data"], record["model"], record["hardware"]
    size_mb = (target / "model.safetensors").stat().st_size / 1e6
    objective = record["objective"]
    card = f"""# parp-ssl-small — parp's embedded self-supervised speech encoder

A small wav2vec 2.0-architecture encoder (`Wav2Vec2Model`, {model['encoder_parameters'] / 1e6:.2f} M parameters,
{size_mb:.1f} MB fp32 safetensors) pretrained **by parp's own recipe** (`parp pretrain`), so that PARP has a
*pretrained* model to prune on machines that cannot download one. It is used whenever no `--model` is given.
It is a research toy, far smaller and less trained than XLS-R: use a real checkpoint when you have a network.

| | |
|---|---|
| architecture | 7 CNN layers × {model['conv_dim'][0]} channels (20 ms frames), {model['num_hidden_layers']} transformer layers × {model['hidden_size']} wide, {model['num_attention_heads']} heads, feed-forward {model['intermediate_size']} |
| objective | {objective.get('objective', objective.get('name', '?'))} ({objective.get('features', '')}; {objective.get('num_codebooks', '?')} codebook × {objective.get('codebook_size', '?')} codes; span masks p={objective.get('mask_prob', '?')} × {objective.get('mask_length', '?')} frames) — masked prediction of random-projection-quantised log-mel targets (Chiu et al. 2022) |
| data (unlabelled) | {data['train_hours']:.2f} h in {data['train_clips']} clips: {_data_description(data)} |
| updates | {record['steps']} (batches of ≤ {record['config']['max_batch_seconds']} s audio, peak LR {record['config']['learning_rate']}, {record['config']['lr_schedule']} decay, warm-up {record['config']['warmup_steps']}) |
| audio seen | {record['train_audio_seconds'] / 3600:.2f} h ({record['audio_seconds_per_second']} audio-s per second of training) |
| hardware | {hw.get('gpu') or 'CPU only'}, {hw.get('cpus')} CPU cores, torch threads {hw.get('torch_threads')} |
| training time | {record['train_seconds'] / 60:.1f} min in optimisation steps, summed over resumes (validation and I/O excluded); {record.get('wall_seconds', 0) / 60:.1f} min wall |
| final held-out loss / accuracy | {_fmt(record['final_metrics'].get('loss'))} / {_fmt(record['final_metrics'].get('accuracy'))} (masked frames, {data['valid_clips']} held-out clips) |

{_why_section(record, comparison, comparison_command)}## Pretraining loss

![loss curve](loss_curve.png)

## Downstream: fine-tuning from this checkpoint vs other initialisations (an earlier encoder, or random)

{_downstream_section(downstream, downstream_command)}
## Reproduce this checkpoint

```bash
{command}
```

then `parp card install ...` installs it here with this card. `pretraining.json` beside this file holds
the full record (config, versions, hardware, loss history).
"""
    (target / "README.md").write_text(card, encoding="utf-8")
    return target


@dataclass
class CardComparisonArguments:
    """``parp card update-comparison``: the objective comparison's runs, and the card they go into."""

    compare: list[str] = field(default_factory=list, metadata={
        "help": "PRETRAIN_DIR:DOWNSTREAM_DIR pairs: the pretraining runs of the objective comparison and the "
                "downstream runs that fine-tuned them (one of which also has the random arm)."})
    compare_command: str = field(default="", metadata={"help": "The comparison's commands, for the card."})
    target: str | None = field(default=None, metadata={
        "help": "The installed card's folder (default: the embedded parp-ssl-small)."})


@dataclass
class CardInstallArguments(CardComparisonArguments):
    """``parp card install``: a pretraining run (and optionally its downstream curves) into the card's folder."""

    pretrain_dir: str | None = field(default=None, metadata={
        "help": "The parp pretrain output folder (pretraining.json, loss_curve.png, model/) to install."})
    command: str = field(default="", metadata={"help": "The exact pretraining command, for the card."})
    downstream_dir: str | None = field(default=None, metadata={
        "help": "A downstream run (downstream.json, downstream.png): fine-tuning it vs random initialisation."})
    downstream_command: str = field(default="", metadata={"help": "The downstream command, for the card."})


def _target(args: CardComparisonArguments) -> Path:
    return Path(args.target) if args.target else default_model_path()


def _comparison(args: CardComparisonArguments) -> list[dict] | None:
    runs = []
    for item in args.compare:
        if ":" not in item:
            raise ConfigError(f"--compare {item}: expected PRETRAIN_DIR:DOWNSTREAM_DIR")
        pretrain_dir, downstream_dir = (Path(x) for x in item.split(":", 1))
        for needed in (pretrain_dir / "pretraining.json", downstream_dir / "downstream.json"):
            if not needed.is_file():
                raise ConfigError(f"--compare {item}: {needed} not found")
        runs.append((pretrain_dir, downstream_dir))
    try:
        return objective_comparison(runs) if runs else None
    except ValueError as exc:
        raise ConfigError(f"--compare: {exc}") from None


def run_card_update(args: CardComparisonArguments) -> Path:
    """``parp card update-comparison``: rewrite the installed card's objective-choice section."""
    comparison = _comparison(args)
    if not comparison:
        raise ConfigError("parp card update-comparison needs --compare PRETRAIN_DIR:DOWNSTREAM_DIR ...")
    target = _target(args)
    if not (target / "README.md").is_file() or not (target / "pretraining.json").is_file():
        raise ConfigError(f"--target {target}: no installed card there (README.md and pretraining.json)")
    try:
        return update_comparison(target, comparison, args.compare_command)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def run_card_install(args: CardInstallArguments) -> Path:
    """``parp card install``: copy the run's model into ``--target`` and write its card."""
    if not args.pretrain_dir or not args.command:
        raise ConfigError("parp card install needs --pretrain_dir and --command")
    pretrain_dir = Path(args.pretrain_dir)
    for needed in ("pretraining.json", "loss_curve.png"):
        if not (pretrain_dir / needed).is_file():
            raise ConfigError(f"--pretrain_dir {pretrain_dir}: no {needed} there (is it a parp pretrain folder?)")
    if not any((folder / "model.safetensors").is_file() for folder in (pretrain_dir / "model", pretrain_dir)):
        raise ConfigError(f"--pretrain_dir {pretrain_dir}: no model.safetensors in it or in its model/")
    return write_card(pretrain_dir, _target(args), args.command, args.downstream_dir and Path(args.downstream_dir),
                      args.downstream_command, _comparison(args), args.compare_command)
