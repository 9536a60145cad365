"""Load any Hugging Face SSL speech encoder as a CTC model with a fresh head sized to our vocabulary.

We rely on transformers' own classes (``AutoModelForCTC``): every family of ``parp.models.families.ARCHITECTURES``
(wav2vec 2.0 / XLS-R, HuBERT, WavLM, data2vec-audio, UniSpeech(-SAT), SEW(-D), wav2vec2-conformer) loads the same
way, from a hub id (users with a network) or a local folder; the other CTC families are refused in one line.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForCTC, PreTrainedModel

from ..errors import ModelError
from .families import check_cli_family

log = logging.getLogger(__name__)

# what a truncated or corrupt weights file raises (SafetensorError: bad header; RuntimeError: short data or a
# tensor of another shape), besides a missing file (OSError) or a bad config (ValueError, KeyError)
_LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, SafetensorError)



ASSETS = Path(__file__).resolve().parent.parent / "assets"


def default_model_path() -> Path:
    """The small SSL checkpoint shipped inside the package (see its model card); used when no model is named."""
    return ASSETS / "parp-ssl-small"


def _looks_like_local_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else with a path shape is meant as a folder."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def resolve_model_source(name_or_path: str | os.PathLike | None) -> str:
    """A local folder (checked to exist and hold a config) or a hub id; ``None`` means the embedded default."""
    if name_or_path is None or str(name_or_path) == "":
        return str(default_model_path())
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"--model {name}: expected a model folder, found a file")
        if not (path / "config.json").exists():
            raise ModelError(f"--model {name}: the folder has no config.json, so it is not a Hugging Face model folder")
        if not any(path.glob("*.safetensors")) and any(path.glob("*.bin")):
            raise ModelError(f"--model {name}: its only weights are pickled (*.bin), which parp never loads (a pickle "
                             f"can run code); convert them to safetensors where you trust them (transformers: "
                             f"from_pretrained, then save_pretrained) and use that folder")
        return str(path)
    if _looks_like_local_path(name):
        raise ModelError(f"--model {name}: model folder does not exist")
    return name  # a hub id such as facebook/wav2vec2-xls-r-300m


def encoder_identity(name_or_path: str | os.PathLike | None) -> dict:
    """What a run record keeps to tell encoders apart: the folder or hub id ("embedded" for the default, whichever
    encoder this parp ships) and, where the folder has a pretraining record (the embedded card's), its updates."""
    embedded = name_or_path is None or str(name_or_path) == ""
    source = str(default_model_path()) if embedded else str(name_or_path)  # unchecked: records of absent models too
    identity = {"source": "embedded" if embedded else source}
    record = Path(source).expanduser() / "pretraining.json"
    if record.is_file():
        try:
            identity["pretraining_steps"] = json.loads(record.read_text(encoding="utf-8")).get("steps")
        except (OSError, ValueError):  # an unreadable card is no reason to stop a run
            pass
    return identity


def load_ctc_model(name_or_path: str | os.PathLike | None, vocab_size: int, pad_token_id: int = 0,
                   **config_overrides) -> PreTrainedModel:
    """Load an SSL encoder for CTC fine-tuning; the CTC head is (re)initialised when its size differs.

    ``config_overrides`` go to the model config (e.g. ``mask_time_prob``, ``layerdrop``, dropouts).
    """
    source = resolve_model_source(name_or_path)
    overrides = dict(ctc_loss_reduction="mean", ctc_zero_infinity=True, vocab_size=vocab_size,
                     pad_token_id=pad_token_id)
    overrides.update(config_overrides)
    try:
        config = AutoConfig.from_pretrained(source, **overrides)
        check_cli_family(config, f"--model {name_or_path}")
        # Some checkpoints store a CTC head of another vocabulary: let the head be re-initialised.
        model = AutoModelForCTC.from_pretrained(source, config=config, ignore_mismatched_sizes=True)
    except _LOAD_ERRORS as exc:
        where = "no such folder, and the hub" if source == str(name_or_path) and "/" in source else "it"
        raise ModelError(f"--model {name_or_path}: cannot load {where} as a CTC speech model "
                         f"({_first_line(exc)})") from exc
    return model


def load_finetuned_model(path: str | os.PathLike) -> PreTrainedModel:
    """Load a model fine-tuned by parp (or anyone) for inference, keeping its CTC head."""
    source = resolve_model_source(path)
    try:
        check_cli_family(AutoConfig.from_pretrained(source), str(path))
        model = AutoModelForCTC.from_pretrained(source)
    except _LOAD_ERRORS as exc:
        raise ModelError(f"{path}: cannot load a CTC model from it ({_first_line(exc)})") from exc
    return model.eval()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
