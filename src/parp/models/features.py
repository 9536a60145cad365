"""The model's own audio front end, read from its feature extractor (``AutoFeatureExtractor`` on the model folder):
the sampling rate parp's data path resamples to and whether it normalises each clip to zero mean and unit variance.

A folder without ``preprocessor_config.json`` or ``processor_config.json`` (an encoder saved without its extractor)
gets the wav2vec 2.0 defaults parp always used: 16 kHz, normalised.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ModelError
from .load import resolve_model_source

PREPROCESSOR_FILE = "preprocessor_config.json"
PROCESSOR_FILE = "processor_config.json"  # transformers 5 saves a processor's extractor inside it


@dataclass(frozen=True)
class AudioInput:
    sampling_rate: int = 16000
    do_normalize: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def audio_input(name_or_path: str | os.PathLike | None) -> AudioInput:
    """The model's sampling rate and normalisation; refuses a feature extractor that is not a raw-waveform one."""
    source = resolve_model_source(name_or_path)
    folder = Path(source)
    if folder.is_dir() and not any((folder / f).is_file() for f in (PREPROCESSOR_FILE, PROCESSOR_FILE)):
        return AudioInput()
    from transformers import AutoFeatureExtractor  # lazy: only commands that read audio need it

    try:
        extractor = AutoFeatureExtractor.from_pretrained(source)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        if not folder.is_dir():  # a hub id without a network: the defaults, as before
            return AudioInput()
        raise ModelError(f"{source}: cannot read its feature extractor ({str(exc).splitlines()[0]})") from None
    names = list(getattr(extractor, "model_input_names", ["input_values"]))
    if names[:1] != ["input_values"] or getattr(extractor, "feature_size", 1) != 1:
        raise ModelError(f"{source}: its feature extractor {type(extractor).__name__} makes {names[0]}, not raw "
                         "waveforms (input_values), which parp's data path feeds")
    return AudioInput(int(extractor.sampling_rate), bool(getattr(extractor, "do_normalize", True)))


def write_audio_input(directory: str | os.PathLike, audio: AudioInput) -> None:
    """Record ``audio`` in an exported folder's extractor settings (the vocabulary's processor knows the sampling
    rate but always normalises): inside ``processor_config.json`` where transformers put it there."""
    directory = Path(directory)
    path = directory / PROCESSOR_FILE
    if path.is_file() and "feature_extractor" in (config := json.loads(path.read_text(encoding="utf-8"))):
        config["feature_extractor"].update(audio.to_dict())
    else:
        path = directory / PREPROCESSOR_FILE
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        config.update(audio.to_dict())
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
