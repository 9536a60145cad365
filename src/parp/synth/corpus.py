"""Labelled multilingual speech corpora synthesised offline with eSpeak NG.

Gives pretraining and smoke tests real-language audio with exact transcripts when no recorded corpus is at
hand. Everything random (sentence, voice variant, speed, pitch) derives from the seed, and eSpeak renders each
utterance from a pristine state, so the same seed writes byte-identical FLAC files and manifests.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm.auto import tqdm

from parp.errors import ConfigError, SynthError
from parp.synth.espeak import (
    DEFAULT_VARIANTS, ESpeakSynthesizer, available_languages, available_variants, espeak_version, voice_name,
)
from parp.synth.phones import phone_string
from parp.synth.text_source import NO_SPACE, make_sentence, text_languages, word_list

MANIFEST_HEADER = ("path", "speaker", "duration", "text")
PHONES_COLUMN = "phones"
TRANSCRIPTS = ("text", "phones")


@dataclass
class SynthConfig:
    """Arguments of ``parp synth``; every field is a CLI flag."""

    out_dir: str
    languages: list[str] = field(default_factory=lambda: ["es", "fr", "it", "ky", "nl", "ru", "sv", "tr", "tt", "zh"])
    utterances_per_language: int = 200
    seed: int = 0
    sampling_rate: int = 16000
    variants: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    rate_range: list[int] = field(default_factory=lambda: [130, 200])  # words per minute, low high
    pitch_range: list[int] = field(default_factory=lambda: [30, 70])  # eSpeak pitch 0-99, low high
    min_words: int = 3
    max_words: int = 10
    transcripts: str = field(default="text", metadata={
        "help": "text: the sentence only; phones: also a 'phones' column with the IPA phones eSpeak spoke, "
                "space-separated, one inventory for every language (train on it with --text_column phones "
                "--token_unit phone)."})
    progress: bool = True


def supported_languages() -> list[str]:
    """Languages that have both an eSpeak voice and a word source."""
    voices = set(available_languages())
    return [lang for lang in text_languages() if lang in voices]


def _check_languages(languages: list[str]) -> list[str]:
    if not languages:
        raise ConfigError("no languages given for synthesis")
    out = []
    for lang in languages:
        code = lang.strip().lower()
        voice_name(code)  # ConfigError naming the language when eSpeak lacks it
        if code not in text_languages():
            raise ConfigError(
                f"language {lang!r} has an eSpeak voice but no word list; languages with text: "
                f"{', '.join(supported_languages())}"
            )
        out.append(code)
    if len(set(out)) != len(out):
        raise ConfigError(f"duplicate languages in {languages}")
    return out


def _trim(audio: np.ndarray, sample_rate: int, pad_s: float = 0.08) -> np.ndarray:
    """Cut eSpeak's leading/trailing silence down to ``pad_s`` so durations reflect speech."""
    if audio.size == 0:
        return audio
    level = np.abs(audio.astype(np.int32))
    loud = np.flatnonzero(level > max(int(level.max()) // 50, 64))
    if loud.size == 0:
        return audio[:0]
    pad = int(pad_s * sample_rate)
    return audio[max(loud[0] - pad, 0): min(loud[-1] + pad + 1, audio.size)]


def _resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    x = audio.astype(np.float32) / 32768.0
    if source_rate != target_rate:
        x = soxr.resample(x, source_rate, target_rate, quality="HQ")
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def _utterance_rng(seed: int, language: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(language.encode()), index])


def synthesize_language(
    out_dir: str | Path, language: str, n: int, synthesizer: ESpeakSynthesizer, config: SynthConfig, bar=None,
) -> tuple[Path, float]:
    """Write ``n`` utterances and the manifest for one language; returns (manifest path, total seconds)."""
    lang_dir = Path(out_dir) / language
    audio_dir = lang_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows, total = [], 0.0
    with_phones = config.transcripts == "phones"
    lo_rate, hi_rate = config.rate_range
    lo_pitch, hi_pitch = config.pitch_range
    for i in range(n):
        rng = _utterance_rng(config.seed, language, i)
        for _attempt in range(5):  # a draw that eSpeak renders as (near) silence is replaced, deterministically
            text = make_sentence(language, rng, config.min_words, config.max_words)
            variant = config.variants[int(rng.integers(len(config.variants)))]
            rate = int(rng.integers(lo_rate, hi_rate + 1))
            pitch = int(rng.integers(lo_pitch, hi_pitch + 1))
            spoken = text + ("。" if language in NO_SPACE else ".")  # sentence-final intonation, not transcribed
            raw, sr = synthesizer.synthesize(spoken, language, variant, rate_wpm=rate, pitch=pitch)
            audio = _resample(_trim(raw, sr), sr, config.sampling_rate)
            if audio.size >= 0.3 * config.sampling_rate:
                break
        else:
            raise SynthError(f"eSpeak produced no speech for {language!r} after 5 sentences (last: {text!r})")
        name = f"{language}_{i:06d}.flac"
        sf.write(audio_dir / name, audio, config.sampling_rate, format="FLAC", subtype="PCM_16")
        duration = audio.size / config.sampling_rate
        total += duration
        row = f"audio/{name}\t{variant}\t{duration:.3f}\t{text}"
        if with_phones:  # what this voice spoke, sentence-final "." included, as eSpeak's own phonemiser has it
            phones = phone_string(synthesizer.phonemes(spoken, language, variant))
            if not phones:
                raise SynthError(f"eSpeak gave no phonemes for {language!r} sentence {text!r}")
            row += f"\t{phones}"
        rows.append(row)
        if bar is not None:
            bar.update(1)
    manifest = lang_dir / "train.tsv"
    header = MANIFEST_HEADER + ((PHONES_COLUMN,) if with_phones else ())
    manifest.write_text("\t".join(header) + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return manifest, total


def synthesize_corpus(
    out_dir: str | Path,
    languages: list[str],
    utterances_per_language: int,
    seed: int = 0,
    sampling_rate: int = 16000,
    variants: list[str] | tuple[str, ...] = DEFAULT_VARIANTS,
    rate_range: tuple[int, int] = (130, 200),
    pitch_range: tuple[int, int] = (30, 70),
    progress: bool = True,
    min_words: int = 3,
    max_words: int = 10,
    transcripts: str = "text",
) -> list[Path]:
    """Synthesise ``out_dir/<lang>/{audio/*.flac,train.tsv}`` per language plus ``out_dir/synth.json``.

    Returns the manifest paths in the order of ``languages``.
    """
    config = SynthConfig(
        out_dir=str(out_dir), languages=list(languages), utterances_per_language=utterances_per_language, seed=seed,
        sampling_rate=sampling_rate, variants=list(variants), rate_range=tuple(rate_range),
        pitch_range=tuple(pitch_range), min_words=min_words, max_words=max_words, progress=progress,
        transcripts=transcripts,
    )
    return run_synth(config)


def _validate(config: SynthConfig) -> list[str]:
    if config.utterances_per_language < 1:
        raise ConfigError(f"utterances_per_language must be >= 1, got {config.utterances_per_language}")
    if config.sampling_rate < 8000:
        raise ConfigError(f"sampling_rate must be >= 8000 Hz, got {config.sampling_rate}")
    if not config.variants:
        raise ConfigError("at least one voice variant is needed")
    unknown = [v for v in config.variants if v not in available_variants()]
    if unknown:
        raise ConfigError(f"unknown eSpeak voice variant(s) {unknown}; available: {', '.join(available_variants())}")
    for name, pair, bounds in (("rate_range", config.rate_range, (80, 450)), ("pitch_range", config.pitch_range, (0, 99))):
        if len(pair) != 2:
            raise ConfigError(f"--{name.replace('_', '-')} takes two numbers (low high), got {list(pair)}")
        lo, hi = pair
        if not bounds[0] <= lo <= hi <= bounds[1]:
            raise ConfigError(f"{name} must satisfy {bounds[0]} <= low <= high <= {bounds[1]}, got ({lo}, {hi})")
    if config.transcripts not in TRANSCRIPTS:
        raise ConfigError(f"--transcripts must be {' or '.join(TRANSCRIPTS)}, got {config.transcripts!r}")
    if not 1 <= config.min_words <= config.max_words:
        raise ConfigError(f"need 1 <= min_words <= max_words, got {config.min_words}, {config.max_words}")
    return _check_languages(config.languages)


def _phone_inventory(manifest: Path) -> set[str]:
    lines = manifest.read_text(encoding="utf-8").splitlines()[1:]
    return {phone for line in lines for phone in line.split("\t")[-1].split()}


def run_synth(config: SynthConfig) -> list[Path]:
    """Entry point for ``parp synth``: validate, synthesise every language, write ``synth.json``."""
    languages = _validate(config)
    start = time.time()
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    synthesizer = ESpeakSynthesizer()
    manifests, counts, seconds, sources, inventories = [], {}, {}, {}, {}
    n = config.utterances_per_language
    with tqdm(total=n * len(languages), desc="synth", unit="utt", disable=not config.progress) as bar:
        for lang in languages:
            bar.set_postfix_str(lang)
            manifest, total = synthesize_language(out_dir, lang, n, synthesizer, config, bar)
            manifests.append(manifest)
            counts[lang], seconds[lang] = n, round(total, 3)
            sources[lang] = {"voice": voice_name(lang), "text": word_list(lang)[2]}
            if config.transcripts == "phones":
                inventories[lang] = _phone_inventory(manifest)
    if not manifests or not sum(seconds.values()) > 0:
        raise SynthError(f"--out-dir {out_dir}: nothing was synthesised (no speech from eSpeak NG)")
    record = {
        "command": "synth",
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()},
        "languages": languages,
        "counts": counts,
        "seconds": seconds,
        "total_seconds": round(sum(seconds.values()), 3),
        "total_hours": round(sum(seconds.values()) / 3600, 4),
        "seed": config.seed,
        "sampling_rate": config.sampling_rate,
        "espeak_version": espeak_version(),
        "sources": sources,
        "manifests": [str(m.relative_to(out_dir)) for m in manifests],
        **({"phone_inventory": {
            "per_language": {lang: len(p) for lang, p in inventories.items()},
            "shared": sorted(set().union(*inventories.values())),
        }} if inventories else {}),
        "wall_time_s": round(time.time() - start, 2),
    }
    (out_dir / "synth.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifests
