"""Audio decoding and manifests: good files load right, each kind of bad file gives one clear message."""

import re

import numpy as np
import pytest
import soundfile

from parp.data import SpeechDataset, Utterance, Vocabulary, audio_info, filter_by_duration, load_audio, read_manifest
from parp.errors import AudioError, ManifestError


def _tone(seconds, rate, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.fixture
def bad_files(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x01garbage that is not audio" * 20)
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    zero = tmp_path / "zero.wav"
    soundfile.write(zero, np.zeros(0, dtype=np.float32), 16000)
    return {"corrupt": corrupt, "empty": empty, "zero": zero, "missing": tmp_path / "missing.ogg"}


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    path = tmp_path / "stereo.wav"
    left_right = _tone(1.5, 44100, channels=2)
    left_right[:, 1] = 0.0  # mean of (x, 0) is x / 2: proves a downmix, not a channel pick
    soundfile.write(path, left_right, 44100)
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 24000) <= 1
    assert 0.2 < np.abs(audio[1000:-1000]).max() < 0.3
    info = audio_info(path)
    assert (info.sampling_rate, info.channels) == (44100, 2)
    assert info.duration == pytest.approx(1.5)


@pytest.mark.parametrize(
    "kind, reason",
    [("corrupt", "cannot decode"), ("empty", "empty file (0 bytes)"), ("zero", "zero-length audio"),
     ("missing", "file not found")],
)
def test_bad_audio_names_file_and_reason(bad_files, kind, reason):
    path = bad_files[kind]
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert str(path) in str(caught.value) and reason in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(AudioError, match="cannot read audio header" if kind == "corrupt" else re.escape(reason)):
        audio_info(path)


def test_validate_drops_and_counts_bad_files(tmp_path, bad_files, caplog):
    good = tmp_path / "good.wav"
    soundfile.write(good, _tone(1.0, 16000), 16000)
    long_file = tmp_path / "long.wav"
    soundfile.write(long_file, _tone(3.0, 16000), 16000)
    utterances = [Utterance(str(good), "ab"), Utterance(str(long_file), "ab")]
    utterances += [Utterance(str(path), "ab") for path in bad_files.values()]
    dataset = SpeechDataset(utterances, Vocabulary.build(["ab"]), max_seconds=2.0)
    with caplog.at_level("WARNING"):
        dataset.validate(progress=False)
    assert len(dataset) == 1 and dataset.utterances[0].path == str(good)
    assert len(dataset.skipped) == 5
    assert dict(dataset.skipped)[str(long_file)].startswith("too long")
    assert "dropped 5 of 6" in caplog.text
    item = dataset[0]
    assert item["input_values"].dtype == np.float32 and abs(float(item["input_values"].std()) - 1) < 1e-3
    assert dataset.durations == [pytest.approx(1.0)]


def test_validate_rejects_transcript_longer_than_audio(tmp_path):
    path = tmp_path / "short.wav"
    soundfile.write(path, _tone(0.2, 16000), 16000)  # 9 encoder frames
    dataset = SpeechDataset([Utterance(str(path), "abababababab")], Vocabulary.build(["ab"]))
    dataset.validate(progress=False)
    assert len(dataset) == 0 and "transcript too long" in dataset.skipped[0][1]


def test_in_memory_audio_utterance(tmp_path):
    samples = _tone(0.5, 8000).astype(np.float32)
    utterance = Utterance("memory://0", "ab", audio=samples, sampling_rate=8000)
    dataset = SpeechDataset([utterance], Vocabulary.build(["ab"])).validate(progress=False)
    assert len(dataset[0]["input_values"]) == 8000


def test_manifest_resolves_relative_paths_and_reports_missing_column(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text('path\ttext\tduration\nclips/a.wav\tsay "hi"\t1.5\n/abs/b.wav\tbye\t\n', encoding="utf-8")
    rows = read_manifest(manifest)
    assert rows[0].path == str(tmp_path / "clips" / "a.wav") and rows[1].path == "/abs/b.wav"
    assert rows[0].text == 'say "hi"' and rows[0].duration == 1.5 and rows[1].duration is None
    assert rows[0].speaker is None
    with pytest.raises(ManifestError) as caught:
        read_manifest(manifest, text_column="sentence")
    assert str(manifest) in str(caught.value) and "'sentence'" in str(caught.value)
    assert "path, text, duration" in str(caught.value)
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")
    csv_manifest = tmp_path / "m.csv"
    csv_manifest.write_text('file,sentence,speaker\nx.wav,"hello, world",spk1\n', encoding="utf-8")
    (row,) = read_manifest(csv_manifest, audio_column="file", text_column="sentence")
    assert row.text == "hello, world" and row.speaker == "spk1"


def test_filter_by_duration_keeps_unknown():
    utterances = [Utterance("a", "x", duration=0.5), Utterance("b", "x", duration=20.0), Utterance("c", "x")]
    assert [u.path for u in filter_by_duration(utterances, 1.0, 15.0)] == ["c"]
    assert [u.path for u in filter_by_duration(utterances, max_seconds=15.0)] == ["a", "c"]


def test_fsdd_8k_is_resampled_to_16k(fsdd_dir):
    (first, *_rest) = read_manifest(fsdd_dir / "all.tsv")[:3]
    info = audio_info(first.path)
    assert info.sampling_rate == 8000
    audio = load_audio(first.path, 16000)
    assert abs(len(audio) - 2 * info.frames) <= 1
    assert abs(len(audio) / 16000 - first.duration) < 0.01


def test_load_hf_corpus_from_saved_dataset(tmp_path, caplog):
    datasets = pytest.importorskip("datasets", reason="optional extra parp[hf] (datasets) not installed")
    from parp.data import load_hf_corpus

    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, _tone(0.5, 44100, channels=2), 44100)
    flac = tmp_path / "clip.flac"
    soundfile.write(flac, _tone(1.0, 8000), 8000)
    cells = [
        {"bytes": stereo.read_bytes(), "path": None},
        {"bytes": None, "path": str(flac)},
        {"bytes": b"not audio at all" * 10, "path": "broken.wav"},
    ]
    corpus = datasets.Dataset.from_dict({"audio": cells, "sentence": ["Hé, toi!", "ωώ", "x"]})
    corpus = corpus.cast_column("audio", datasets.Audio())
    folder = tmp_path / "hf"
    datasets.DatasetDict({"train": corpus}).save_to_disk(str(folder))

    with caplog.at_level("WARNING"):
        utterances = load_hf_corpus(folder, split="train")
    assert "broken.wav" in caplog.text and "skipped 1 of 3" in caplog.text
    assert [u.text for u in utterances] == ["Hé, toi!", "ωώ"]
    assert all(u.audio.dtype == np.float32 and u.sampling_rate == 16000 for u in utterances)
    assert abs(len(utterances[0].audio) - 8000) <= 1 and abs(len(utterances[1].audio) - 16000) <= 1
    dataset = SpeechDataset(utterances, Vocabulary.build(u.text for u in utterances)).validate(progress=False)
    assert len(dataset) == 2 and len(dataset[1]["input_values"]) == len(utterances[1].audio)
    with pytest.raises(ManifestError, match="missing column 'text'"):
        load_hf_corpus(folder, text_column="text")
    with pytest.raises(ManifestError, match="no split 'test'"):
        load_hf_corpus(folder, split="test")


def test_load_hf_corpus_without_datasets_says_how_to_install(monkeypatch):
    import sys

    from parp.data import load_hf_corpus
    from parp.errors import ParpError

    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(ParpError, match=re.escape("pip install parp[hf]")):
        load_hf_corpus("anything")
