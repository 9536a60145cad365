"""The real Mboshi corpus: tone-marked text, Ogg audio, vocabulary round trip, HF processor folder."""

import numpy as np
import pytest

from parp.data import (
    CTCCollator, SpeechDataset, TextNormalizer, Vocabulary, load_audio, read_manifest, split_train_valid,
)

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def mboshi(mboshi_dir):
    return read_manifest(mboshi_dir / "train.tsv")


def test_tone_marks_survive_normalisation(mboshi):
    normalize = TextNormalizer()
    texts = [normalize(u.text) for u in mboshi]
    joined = "".join(texts)
    for letter in "ωώéέε":
        assert letter in joined
    assert normalize(mboshi[0].text) == "kyéma yeékirá ikóó wó adí sωndω"


def test_vocabulary_round_trips_train_text(mboshi, tmp_path):
    from transformers import AutoProcessor

    train, valid = split_train_valid(mboshi)
    assert (len(train), len(valid)) == (4154, 462)
    vocabulary = Vocabulary.build(u.text for u in train)
    assert {"ω", "ώ", "é", "'"} <= set(vocabulary.tokens) and len(vocabulary) < 60
    normalize = vocabulary.normalizer
    for utterance in train[:300]:
        assert vocabulary.decode_labels(vocabulary.encode(utterance.text)) == normalize(utterance.text)
    vocabulary.check((u.text for u in valid), source="valid", allow_unknown=True)
    vocabulary.save(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    text = normalize(train[1].text)
    assert processor.tokenizer(text).input_ids == vocabulary.encode(text)
    assert processor.tokenizer.decode(vocabulary.encode(text)).replace("  ", " ") == text


def test_real_ogg_files_decode_and_batch(mboshi):
    sample = mboshi[:6]
    for utterance in sample[:3]:
        audio = load_audio(utterance.path)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) / 16000 - utterance.duration) < 0.05
        assert 0.001 < np.abs(audio).max() <= 1.0
    dataset = SpeechDataset(sample, Vocabulary.build(u.text for u in sample)).validate(progress=False)
    assert len(dataset) == 6 and dataset.skipped == []
    batch = CTCCollator()([dataset[i] for i in range(3)])
    assert batch["input_values"].shape[0] == 3 and (batch["labels"][:, 0] > 0).all()
    first = dataset[0]["input_values"]
    assert np.array_equal(first, dataset[0]["input_values"])  # cached int16 copy gives identical input
