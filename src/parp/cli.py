"""The ``parp`` command: one sub-command per stage of the pipeline (the table is ``parp.commands.COMMANDS``).

Every sub-command takes its options as flags or from ``--config FILE.yaml``; errors caused by input print one
line (``parp: error: ...``) and exit with status 2, never a traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from typing import Sequence

import transformers

from . import __version__
from .commands import COMMANDS, SPECIAL
from .config import parse_dataclasses
from .errors import ParpError


def _actions(name: str) -> dict[str, str]:
    """The actions of a command with actions (``card`` -> ``install``, ...) and their help."""
    return {key.split(" ", 1)[1]: c.help for key, c in COMMANDS.items() if key.startswith(f"{name} ")}


def _usage() -> str:
    lines = ["usage: parp <command> [options]   (parp <command> --help for its options)", "", "commands:"]
    entries: dict[str, str] = {}
    for key, command in COMMANDS.items():
        group = key.split(" ", 1)[0]
        if group == key:
            entries[group] = command.help
        elif group in COMMANDS:  # options and actions: ``parp pretrain``, ``parp pretrain downstream``
            entries[group] = f"{COMMANDS[group].help} (also: parp {group} {' | '.join(_actions(group))})"
        else:
            entries[group] = f"{' | '.join(_actions(group))} (parp {group} --help)"
    entries.update({k: v[0] for k, v in SPECIAL.items()})
    lines += [f"  {name:<11} {text}" for name, text in entries.items()]
    return "\n".join(lines)


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.WARNING, format="parp: %(message)s")


# the machine, not the code: a full or read-only disk mid-run is one line (checkpoints are atomic, so it resumes)
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"parp {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if rest and f"{name} {rest[0]}" in COMMANDS:  # a command with actions: ``parp card install``
        name, rest = f"{name} {rest[0]}", rest[1:]
    try:
        if name in SPECIAL:
            _quiet_libraries()
            SPECIAL[name][1](rest)
            return 0
        if name not in COMMANDS:
            actions = _actions(name)
            if actions and rest[:1] in (["-h"], ["--help"]):
                print(f"usage: parp {name} <action> [options]   (parp {name} <action> --help for its options)\n\n"
                      "actions:\n" + "\n".join(f"  {a:<18} {text}" for a, text in actions.items()))
                return 0
            if actions:
                print(f"parp: error: parp {name} needs an action: {' | '.join(actions)}", file=sys.stderr)
                return 2
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
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    """Destroy a torchrun process group before the interpreter exits: left to finalization, gloo's worker threads
    can abort the process (SIGABRT, "terminate called without an active exception") after its work is done."""
    if "torch" not in sys.modules:
        return
    import torch.distributed as dist  # lazy: never load torch just to exit

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
