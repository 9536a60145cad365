"""parp synth: eSpeak NG binding, word sources and the reproducible corpus writer."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from parp.errors import ConfigError
from parp.synth import (
    ESpeakSynthesizer, SynthConfig, available_languages, run_synth, synthesize_corpus, voice_name, word_list,
)

PAPER_LANGUAGES = ["es", "fr", "it", "ky", "nl", "ru", "sv", "tr", "tt", "zh"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    manifests = synthesize_corpus(out, PAPER_LANGUAGES, 2, seed=0, progress=False)
    return out, manifests


def _rows(manifest):
    with open(manifest, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_every_paper_language_has_audio(corpus):
    out, manifests = corpus
    assert [m.parent.name for m in manifests] == PAPER_LANGUAGES
    for manifest in manifests:
        rows = _rows(manifest)
        assert len(rows) == 2
        for row in rows:
            audio, sr = sf.read(manifest.parent / row["path"], dtype="float32")
            assert sr == 16000 and audio.ndim == 1
            assert np.sqrt(np.mean(audio**2)) > 0.01, row
            assert abs(len(audio) / sr - float(row["duration"])) < 1e-3


def test_manifest_format_and_record(corpus):
    out, manifests = corpus
    header = (out / "es" / "train.tsv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "path\tspeaker\tduration\ttext"  # same columns as shared/data/mboshi/train.tsv
    for row in _rows(out / "ru" / "train.tsv"):
        assert not Path(row["path"]).is_absolute() and row["path"].startswith("audio/")
        assert row["speaker"] and row["text"] == row["text"].lower()
        assert not any(c.isdigit() for c in row["text"])
    record = json.loads((out / "synth.json").read_text(encoding="utf-8"))
    assert record["counts"] == {lang: 2 for lang in PAPER_LANGUAGES}
    assert record["seed"] == 0 and record["espeak_version"] and record["total_seconds"] > 0


def test_manifest_loads_through_data_layer(corpus):
    manifest_mod = pytest.importorskip("parp.data.manifest")
    out, _ = corpus
    utts = manifest_mod.read_manifest(out / "tt" / "train.tsv")
    assert len(utts) == 2 and all(Path(u.path).is_file() for u in utts)
    assert utts[0].speaker and utts[0].text and utts[0].duration > 0


def test_durations_are_plausible(corpus):
    out, _ = corpus
    for lang in PAPER_LANGUAGES:
        for row in _rows(out / lang / "train.tsv"):
            per_char = float(row["duration"]) / len(row["text"].replace(" ", ""))
            band = (0.08, 1.0) if lang == "zh" else (0.02, 0.3)  # a Chinese character is a whole syllable
            assert band[0] < per_char < band[1], (lang, row)
    tts = ESpeakSynthesizer()
    short, _ = tts.synthesize("hola", "es")
    long, sr = tts.synthesize("hola amigo, la casa es muy grande y bonita", "es")
    assert sr == 22050 and len(long) > 2 * len(short)


def test_same_seed_is_byte_identical_and_seed_matters(corpus, tmp_path):
    out, _ = corpus
    # a different language subset must not change a language's utterances either
    again = synthesize_corpus(tmp_path / "again", ["zh", "es"], 2, seed=0, progress=False)
    other = synthesize_corpus(tmp_path / "other", ["es"], 2, seed=1, progress=False)
    for manifest in again:
        lang = manifest.parent.name
        assert manifest.read_bytes() == (out / lang / "train.tsv").read_bytes()
        for row in _rows(manifest):
            assert (manifest.parent / row["path"]).read_bytes() == (out / lang / row["path"]).read_bytes()
    assert other[0].read_bytes() != (out / "es" / "train.tsv").read_bytes()
    assert (tmp_path / "other/es/audio/es_000000.flac").read_bytes() != (out / "es/audio/es_000000.flac").read_bytes()


def test_synthesizer_output_independent_of_history():
    tts = ESpeakSynthesizer()
    first, _ = tts.synthesize("bonjour mes amis", "fr", "m3", rate_wpm=150, pitch=40)
    tts.synthesize("другой текст совсем", "ru", "klatt", rate_wpm=220, pitch=70)
    second, _ = tts.synthesize("bonjour mes amis", "fr", "m3", rate_wpm=150, pitch=40)
    assert first.dtype == np.int16 and np.array_equal(first, second)


def test_language_codes_map_to_espeak_voices():
    assert voice_name("zh") == "cmn" and voice_name("en") == "en" and voice_name("KY") == "ky"
    assert {"es", "ky", "tt", "cmn", "zh"} <= set(available_languages())
    words, p, source = word_list("tt")
    assert "hand-written" in source and len(words) >= 150 and abs(p.sum() - 1) < 1e-9
    assert all("CYRILLIC" in __import__("unicodedata").name(c) for w in words for c in w)


def test_unknown_language_is_a_clear_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"'xx'.*available: .*\bes\b"):
        run_synth(SynthConfig(out_dir=str(tmp_path), languages=["es", "xx"], utterances_per_language=1, progress=False))
    with pytest.raises(ConfigError, match="no word list"):
        run_synth(SynthConfig(out_dir=str(tmp_path), languages=["haw"], utterances_per_language=1, progress=False))
    with pytest.raises(ConfigError, match="variant"):
        synthesize_corpus(tmp_path, ["es"], 1, variants=["nosuchvoice"], progress=False)
    assert not (tmp_path / "es").exists()
