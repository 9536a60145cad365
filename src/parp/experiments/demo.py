"""``parp demo``: the README's main job, offline on a 2-core CPU in well under 15 minutes.

Synthesises a small labelled set in a language the embedded checkpoint never heard in pretraining (Finnish by
default), then runs, through the sweep machinery and with one shared schedule: the unpruned fine-tune, OMP and
PARP at a few sparsities. Prints the results table and writes the report (with plots) to ``--output-dir``.
Rerunning the same command resumes: finished cells are skipped.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import shared, shared_fields
from ..data import DataArguments
from ..errors import ConfigError
from ..methods import PruneArguments
from ..models import ModelArguments, default_model_path, resolve_model_source
from ..reports.report import build_report
from ..synth import SynthConfig, run_synth
from ..training.config import TrainConfig
from .grid import SweepConfig
from .sweep import run_sweep

# Languages the embedded checkpoint's pretraining audio covered (plus Mboshi and English digits): the demo
# language must be outside this set so that fine-tuning has to adapt the encoder to new sounds.
PRETRAINING_LANGUAGES = ("es", "fr", "it", "nl", "ru", "sv", "tr", "tt", "ky", "zh", "de", "en", "pt", "pl")


@dataclass
class DemoArguments:
    """``parp demo``: the options it shares with the sweep come from their owners (``parp.config.shared``),
    with the demo's short schedule as its own defaults."""

    model: str | None = shared(ModelArguments, "model")
    output_dir: str = shared(TrainConfig, "output_dir", default="runs/demo",
                             help="Where data, cells, results and report go.")
    language: str = field(default="fi", metadata={
        "help": "eSpeak language to synthesise (one the checkpoint did not hear in pretraining)."})
    utterances: int = field(default=240, metadata={"help": "Synthesised utterances (train + validation)."})
    valid_fraction: float = shared(DataArguments, "valid_fraction", default=0.15,
                                   help="Held-out fraction for WER/CER.")
    methods: list[str] = shared(SweepConfig, "methods", help="Pruning methods besides the unpruned reference.")
    sparsities: list[float] = shared(SweepConfig, "sparsities", help="Target sparsities.")
    max_steps: int = shared(TrainConfig, "max_steps", default=350,
                            help="Updates per fine-tuning (the same for every method).")
    learning_rate: float = shared(TrainConfig, "learning_rate")
    warmup_steps: int = shared(TrainConfig, "warmup_steps", default=30)
    max_batch_seconds: float = shared(TrainConfig, "max_batch_seconds", default=10.0)
    prune_every: int = shared(PruneArguments, "prune_every", default=25)
    seed: int = shared(TrainConfig, "seed", help="Seed of synthesis, initialisation and data order.")
    quick: bool = field(default=False, metadata={
        "help": "Test mode: a handful of utterances and updates (checks the pipeline, not the claims)."})
    progress: bool = shared(TrainConfig, "progress", help="Show progress bars.")


QUICK = dict(utterances=16, max_steps=3, warmup_steps=0, max_batch_seconds=8.0, prune_every=2, valid_fraction=0.25)


def demo_sweep_config(args: DemoArguments, manifest: Path) -> SweepConfig:
    """The sweep the demo runs: one language, the unpruned reference, the chosen methods and sparsities."""
    options = {name: copy.copy(getattr(args, name)) for name in shared_fields(DemoArguments)}
    options.update(output_dir=str(args.output_dir), seeds=[options.pop("seed")])  # the cells' seed
    return SweepConfig(**options, languages=[f"{args.language}={manifest}"], eval_every=0,
                       save_every=max(args.max_steps // 2, 1), log_every=max(min(10, args.max_steps), 1),
                       reuse_dense=True)


def check_model(args: DemoArguments) -> None:
    """Fail early (before synthesis) when the encoder is missing; warn when it heard the demo language."""
    if args.model is None and not default_model_path().is_dir():
        raise ConfigError(f"the embedded checkpoint {default_model_path()} is not installed; "
                          "pass --model FOLDER_OR_HUB_ID")
    source = Path(resolve_model_source(args.model))
    heard = set(PRETRAINING_LANGUAGES)
    for record in (source / "pretraining.json", source.parent / "pretraining.json"):
        if source.is_dir() and record.is_file():
            languages = json.loads(record.read_text(encoding="utf-8")).get("languages")
            heard |= set(languages) if isinstance(languages, list) else set()
    if args.language in heard:
        print(f"demo: note: {args.language!r} was in the checkpoint's pretraining languages; the demo is meant "
              "for an unseen language such as fi", flush=True)


def synthesise(args: DemoArguments) -> Path:
    """The demo's labelled set (reused when already written with the same size and seed)."""
    folder = Path(args.output_dir) / "data"
    manifest = folder / args.language / "train.tsv"
    record = folder / "synth.json"
    if manifest.is_file() and record.is_file():
        done = json.loads(record.read_text(encoding="utf-8"))
        if done.get("counts", {}).get(args.language) == args.utterances and done.get("seed") == args.seed:
            print(f"demo: reusing {manifest} ({args.utterances} utterances)", flush=True)
            return manifest
    print(f"demo: synthesising {args.utterances} {args.language!r} utterances with eSpeak NG -> {folder}", flush=True)
    return run_synth(SynthConfig(out_dir=str(folder), languages=[args.language], utterances_per_language=args.utterances,
                                 seed=args.seed, progress=args.progress))[0]


def format_table(rows: list[dict]) -> str:
    header = f"{'method':<11} {'sparsity':>8} {'achieved':>8} {'WER':>7} {'CER':>7} {'steps':>6} {'wall s':>7}"
    lines = [header, "-" * len(header)]
    for r in sorted(rows, key=lambda r: (r["sparsity_target"], r["method"])):
        lines.append(f"{r['method']:<11} {r['sparsity_target']:>8g} {r['sparsity_achieved'] or 0:>8.3f} "
                     f"{r['wer']:>7.3f} {r['cer']:>7.3f} {r['finetune_steps']:>6} {r['wall_seconds']:>7.1f}"
                     + ("  (dense phase reused)" if r.get("reused_dense") else ""))
    return "\n".join(lines)


def run_demo(args: DemoArguments) -> Path:
    """Synthesise, sweep, print the table, write the report; returns the report's path."""
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    started = time.time()
    check_model(args)
    manifest = synthesise(args)
    rows = run_sweep(demo_sweep_config(args, manifest))
    print("\n" + format_table(rows) + "\n", flush=True)
    report = build_report(Path(args.output_dir) / "results.csv")
    print(f"demo: report {report} (plots beside it); {time.time() - started:.0f} s in all", flush=True)
    return report
