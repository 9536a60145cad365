"""The ``parp`` command: one sub-command per stage of the pipeline.

Every sub-command takes its options as flags or from ``--config FILE.yaml``; errors caused by input print one
line (``parp: error: ...``) and exit with status 2, never a traceback.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from .config import parse_dataclasses
from .errors import ParpError


@dataclass
class Command:
    help: str
    arguments: Callable[[], list[type]]  # lazy: importing torch/transformers only for the command that runs
    run: Callable[..., object]


def _finetune_args():
    from .training.finetune import DataArguments, ModelArguments
    from .training.loop import TrainConfig

    return [DataArguments, ModelArguments, TrainConfig]


def _finetune(data, model, train):
    from .training.finetune import run_finetune

    result = run_finetune(data, model, train)
    r = result.train
    print(json.dumps({"final": r.final_metrics, "best": r.best_metrics, "best_step": r.best_step, "steps": r.steps,
                      "model": r.model_dir, "best_model": r.best_dir, "record": str(result.record_path)}, indent=2))


def _evaluate_args():
    from .evaluation.evaluate import EvaluateArguments

    return [EvaluateArguments]


def _evaluate(args):
    from .evaluation.evaluate import run_evaluate

    print(json.dumps(run_evaluate(args), indent=2))


def _transcribe_main(argv: Sequence[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="parp transcribe", description="Print the transcript of each audio file.")
    parser.add_argument("model", help="Fine-tuned model folder (as written by parp finetune / prune).")
    parser.add_argument("files", nargs="+", help="Audio files (wav, flac, ogg; any rate, any channels).")
    parser.add_argument("--device", default="auto", help="auto (cuda when a GPU is visible, else cpu) | cpu | cuda.")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on a GPU) | fp32 | bf16.")
    parser.add_argument("--max-batch-seconds", type=float, default=120.0, help="Cap on padded audio per batch.")
    args = parser.parse_args(list(argv))
    from .evaluation.evaluate import transcribe

    results = transcribe(args.model, args.files, args.device, args.precision, args.max_batch_seconds)
    for path, text in results:
        print(f"{path}\t{text}")
    failed = sum(text.startswith("<error: ") for _, text in results)
    if failed:  # skipped and counted, like bad audio in training and evaluation
        print(f"parp: {failed} of {len(results)} file(s) could not be transcribed (see <error: ...> above)",
              file=sys.stderr)


COMMANDS: dict[str, Command] = {
    "finetune": Command("Fine-tune an SSL speech encoder with CTC (no pruning).", _finetune_args, _finetune),
    "evaluate": Command("Score a fine-tuned model on a manifest: WER, CER, per-utterance TSV.", _evaluate_args,
                        _evaluate),
}
SPECIAL: dict[str, tuple[str, Callable[[Sequence[str]], None]]] = {
    "transcribe": ("Print transcripts of audio files with a fine-tuned model.", _transcribe_main),
}


def register(name: str, command: Command) -> None:
    COMMANDS[name] = command


def _usage() -> str:
    lines = ["usage: parp <command> [options]   (parp <command> --help for its options)", "", "commands:"]
    entries = {**{k: c.help for k, c in COMMANDS.items()}, **{k: v[0] for k, v in SPECIAL.items()}}
    lines += [f"  {name:<11} {text}" for name, text in entries.items()]
    return "\n".join(lines)


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.WARNING, format="parp: %(message)s")


# the machine, not the code: a full or read-only disk mid-run is one line (checkpoints are atomic, so it resumes)
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def main(argv: Sequence[str] | None = None) -> int:
    from . import commands  # noqa: F401  (registers the commands of later pipeline stages)

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"parp {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    try:
        if name in SPECIAL:
            _quiet_libraries()
            SPECIAL[name][1](rest)
            return 0
        if name not in COMMANDS:
            print(f"parp: error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
            return 2
        command = COMMANDS[name]
        types = command.arguments()
        parsed = parse_dataclasses(types, rest, prog=f"parp {name}", description=command.help)
        _quiet_libraries()
        command.run(*parsed)
        return 0
    except ParpError as exc:
        print(f"parp: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise
        print(f"parp: error: {exc.filename or 'output'}: {exc.strerror}; free space or fix permissions, then run "
              f"the same command again to resume from the last checkpoint", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("parp: interrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
