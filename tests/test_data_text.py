"""Text normalisation and the vocabulary: scripts and tone marks survive, unknown characters are reported."""

import json

import pytest

from parp.data import TextNormalizer, Vocabulary
from parp.errors import TextError


def test_normalizer_keeps_diacritics_and_scripts_and_drops_punctuation():
    normalize = TextNormalizer()
    decomposed = "Mo\u0301sωngώsώ"  # o + combining acute must compose to ó (NFC)
    assert normalize(decomposed) == "mósωngώsώ"
    assert normalize("«Bonjour», dit-il ; (Привет!)  東京?") == "bonjour dit-il привет 東京"
    assert normalize("Ω Ώ É") == "ω ώ é"
    assert normalize("l’eau") == "l'eau"
    assert TextNormalizer(keep_apostrophe=False)("don't") == "dont"
    assert TextNormalizer(lowercase=False, drop_chars="x")("AxB, c") == "A B, c"
    assert normalize("a|b [UNK]") == "a b unk"


def test_vocabulary_layout_encode_decode():
    vocabulary = Vocabulary.build(["Ab ba", "cω!"])
    assert vocabulary.tokens[:3] == ["[PAD]", "[UNK]", "|"]
    assert len(vocabulary) == 7
    ids = vocabulary.encode("ab cω")
    assert ids[2] == vocabulary.token_to_id["|"]
    assert vocabulary.decode_labels(ids) == "ab cω"
    a, b = vocabulary.token_to_id["a"], vocabulary.token_to_id["b"]
    # CTC: repeats collapse, blank separates a real double letter, leading/trailing delimiters vanish
    assert vocabulary.decode_ids([0, a, a, 0, a, b, b, 2, 2, b, 0, 2]) == "aab b"
    assert vocabulary.decode_labels([a, a, -100, -100]) == "aa"


def test_check_lists_unknown_characters_and_source():
    vocabulary = Vocabulary.build(["abc"])
    with pytest.raises(TextError) as caught:
        vocabulary.check(["abc", "abz", "zq", "ab"], source="dev.tsv")
    message = str(caught.value)
    assert message.startswith("dev.tsv: 2 of 4 transcripts")
    assert "'z' (U+007A)" in message and "'q' (U+0071)" in message and "e.g. 'abz'" in message
    assert vocabulary.check(["zz"], allow_unknown=True)["z"] == 2
    assert vocabulary.encode("az", allow_unknown=True) == [vocabulary.token_to_id["a"], 1]
    with pytest.raises(TextError, match="'z'"):
        vocabulary.encode("az")


def test_save_load_and_autoprocessor(tmp_path):
    from transformers import AutoProcessor

    vocabulary = Vocabulary.build(["ωώé ab"], TextNormalizer(keep_apostrophe=False))
    vocabulary.save(tmp_path, sampling_rate=16000)
    assert json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8")) == vocabulary.token_to_id
    loaded = Vocabulary.load(tmp_path)
    assert loaded == vocabulary and loaded.normalizer.keep_apostrophe is False
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert processor.tokenizer("ab ωώ").input_ids == vocabulary.encode("ab ωώ")
    assert processor.tokenizer.pad_token_id == 0 and len(processor.tokenizer) == len(vocabulary)
    assert processor.feature_extractor.do_normalize and processor.feature_extractor.return_attention_mask
    with pytest.raises(TextError, match="no vocab.json"):
        Vocabulary.load(tmp_path / "elsewhere")
