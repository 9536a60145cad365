"""Seeded, reproducible train/validation splits (the Mboshi corpus ships without a validation set) and nested
data-size subsets (the paper's 10 min / 1 h / 10 h settings)."""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np

from parp.data.manifest import Utterance
from parp.errors import ConfigError


def split_train_valid(
    utterances: Sequence[Utterance], valid_fraction: float = 0.1, seed: int = 0, by_speaker: bool = False
) -> tuple[list[Utterance], list[Utterance]]:
    """Split into (train, valid), deterministic in ``seed`` and independent of the manifest's row order.

    Items are sorted by (path, text) before the seeded shuffle, so reordering a manifest does not move
    utterances between splits; each split keeps the input order. With ``by_speaker`` whole speakers are
    held out (in seeded order, until at least ``valid_fraction`` of the utterances), which needs two or
    more speakers.

    The project's default Mboshi split is ``split_train_valid(read_manifest("mboshi/train.tsv"),
    valid_fraction=0.1, seed=0)``: 462 validation and 4,154 training utterances, speakers mixed.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise ConfigError(f"valid_fraction must be between 0 and 1 (exclusive), got {valid_fraction}")
    utterances = list(utterances)
    if len(utterances) < 2:
        raise ConfigError(f"need at least 2 utterances to split, got {len(utterances)}")
    rng = np.random.default_rng(seed)
    canonical = sorted(range(len(utterances)), key=lambda i: (utterances[i].path, utterances[i].text))
    if by_speaker:
        speakers = sorted({u.speaker for u in utterances if u.speaker is not None})
        if any(u.speaker is None for u in utterances):
            raise ConfigError("by_speaker split needs a speaker for every utterance")
        if len(speakers) < 2:
            raise ConfigError(f"by_speaker split needs at least 2 speakers, found {len(speakers)}")
        target = valid_fraction * len(utterances)
        held_out: set[str] = set()
        count = 0
        for speaker_index in rng.permutation(len(speakers)):
            if count >= target or len(held_out) == len(speakers) - 1:
                break
            speaker = speakers[speaker_index]
            held_out.add(speaker)
            count += sum(1 for u in utterances if u.speaker == speaker)
        valid_ids = {i for i in range(len(utterances)) if utterances[i].speaker in held_out}
    else:
        n_valid = min(len(utterances) - 1, max(1, round(valid_fraction * len(utterances))))
        shuffled = [canonical[i] for i in rng.permutation(len(canonical))]
        valid_ids = set(shuffled[:n_valid])
    train = [u for i, u in enumerate(utterances) if i not in valid_ids]
    valid = [u for i, u in enumerate(utterances) if i in valid_ids]
    return train, valid


def hours_subset(utterances: Sequence[Utterance], hours: float, seconds: Callable[[Utterance], float],
                 seed: int = 0) -> list[Utterance]:
    """The first ``hours`` of audio of one fixed, speaker-balanced order of ``utterances`` (input order kept).

    The order depends only on the utterances and ``seed``, never on the manifest's row order or on ``hours``, and a
    subset is a prefix of it: 10 min is inside 1 h is inside all, for every method and training seed. Speakers take
    turns by audio time (the one with the least so far comes next), so a multi-speaker corpus is not cut down to
    whichever speaker a shuffle put first. ``seconds`` gives an utterance's duration.
    """
    if not hours > 0:
        raise ConfigError(f"--train-hours must be a positive number of hours, got {hours!r}")
    utterances = list(utterances)
    rng = np.random.default_rng(seed)
    canonical = sorted(range(len(utterances)), key=lambda i: (utterances[i].path, utterances[i].text))
    queues: dict[str, list[int]] = {}
    for i in (canonical[j] for j in rng.permutation(len(canonical))):
        queues.setdefault(utterances[i].speaker or "", []).append(i)
    heard = {speaker: 0.0 for speaker in queues}
    budget, total, chosen = 3600.0 * hours, 0.0, set()
    while total < budget and any(queues.values()):
        speaker = min((s for s in queues if queues[s]), key=lambda s: (heard[s], s))
        i = queues[speaker].pop(0)
        length = seconds(utterances[i])
        chosen.add(i)
        heard[speaker] += length
        total += length
    return [u for i, u in enumerate(utterances) if i in chosen]


def subset_fingerprint(utterances: Sequence[Utterance]) -> str:
    """A short hash of which utterances a run trained on (order-free), recorded so runs can show they shared one."""
    digest = hashlib.sha256("\n".join(sorted(u.path for u in utterances)).encode("utf-8")).hexdigest()
    return digest[:16]
