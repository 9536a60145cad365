"""Text normalisation and the vocabulary: scripts and tone marks survive, unknown characters are reported."""

import json
import re
import sys

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


def test_apostrophes_are_letters_where_they_touch_a_word_and_quotes_are_dropped():
    normalize = TextNormalizer()
    # word-internal, of any kind: one letter "'" (Kinyarwanda, Quechua ejectives, Breton c'h)
    assert normalize("k’imyaka kʼupay deoc`h") == "k'imyaka k'upay deoc'h"
    # ASCII apostrophe at a word edge is elision (Mboshi "l' ekyem", Breton "ma 'z eus", "bez'")
    assert normalize("l' Ekyem ma 'z eus bez'") == "l' ekyem ma 'z eus bez'"
    # single quotes: opening ‘ always, closing ’ at a word edge, a lone ' anywhere
    assert normalize("nti: ‘Ibyo!’ ' ok") == "nti ibyo ok"
    assert normalize("road.’ ‘Yes’") == "road yes"
    # hyphens join words and numbers only; a lone one is a dash
    assert normalize("tamm-ha-tamm 23-28 a - b -c") == "tamm-ha-tamm 23-28 a b c"
    assert TextNormalizer(keep_apostrophe=False)("k’imyaka ‘x’") == "kimyaka x"


def test_combining_marks_form_one_unit_and_stray_or_doubled_marks_are_dropped():
    normalize = TextNormalizer()
    # ẹ̀ has no precomposed form: after NFC it is two code points, but one letter
    vocabulary = Vocabulary.build(["ilẹ̀ àti"])
    assert "ẹ̀" in vocabulary.tokens and "\u0300" not in vocabulary.tokens
    assert vocabulary.units("ilẹ̀") == ["i", "l", "ẹ̀"]
    assert vocabulary.decode_labels(vocabulary.encode("àti ilẹ̀")) == "àti ilẹ̀"
    # the same mark twice is one (Yoruba prompt "ì̀yàwó"); a mark on no letter marks nothing
    assert normalize("ì\u0300yàwó oló\u0301rin") == "ìyàwó olórin"
    assert normalize("a \u0301b") == "a b"
    # other scripts' signs stay their own units: a Devanagari consonant + vowel sign is not one unit
    assert Vocabulary.build(["किताब"]).units("किताब") == list("किताब")
    assert normalize(normalize("ì\u0300yàwó ‘k’imyaka’")) == normalize("ì\u0300yàwó ‘k’imyaka’")


def test_vocabularies_saved_before_letter_units_keep_code_points(tmp_path):
    vocabulary = Vocabulary.build(["ilẹ̀"], TextNormalizer(letter_units=False))
    assert "\u0300" in vocabulary.tokens
    vocabulary.save(tmp_path)
    settings_file = tmp_path / "parp_text.json"
    settings = json.loads(settings_file.read_text(encoding="utf-8"))
    del settings["letter_units"]  # as written by parp before letter units
    settings_file.write_text(json.dumps(settings), encoding="utf-8")
    loaded = Vocabulary.load(tmp_path)
    assert loaded.normalizer.letter_units is False and loaded.encode("ilẹ̀") == vocabulary.encode("ilẹ̀")


def test_ipa_phone_unit_cuts_ipa_into_phones(tmp_path):
    pytest.importorskip("ipatok")
    from parp.data.text import make_normalizer

    normalizer, unit = make_normalizer("ipa-phone")
    assert unit == "phone"
    assert normalizer("ʔùt͡ɕʰìbòɹà paː") == "ʔ ù t͡ɕʰ ì b ò ɹ à p aː"
    assert normalizer("ʔ ù t͡ɕʰ ì") == "ʔ ù t͡ɕʰ ì"  # idempotent: datasets normalise twice
    vocabulary = Vocabulary.build(["ʔùt͡ɕʰì", "bòr̥õ̂"], normalizer, unit)
    assert {"t͡ɕʰ", "r̥", "õ̂"} <= set(vocabulary.tokens) and "|" not in vocabulary.tokens
    vocabulary.save(tmp_path)
    loaded = Vocabulary.load(tmp_path)
    assert loaded == vocabulary and type(loaded.normalizer).__name__ == "IpaPhoneNormalizer"
    assert loaded.encode("bòr̥õ̂") == vocabulary.encode("b ò r̥ õ̂")


def test_unknown_token_unit_is_one_line_config_error():
    from parp.data.text import make_normalizer
    from parp.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape("--token-unit must be char | phone | ipa-phone, got 'ipa'")):
        make_normalizer("ipa")


def test_ipa_phones_without_ipatok_say_how_to_install(monkeypatch):
    from parp.data.text import make_normalizer
    from parp.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ipatok", None)  # as if not installed
    with pytest.raises(ConfigError, match=re.escape("pip install 'parp[ipa]'")):
        make_normalizer("ipa-phone")


def test_saved_processor_decodes_letters_with_marks(tmp_path):
    from transformers import AutoProcessor

    vocabulary = Vocabulary.build(["ilẹ̀ ọ̀rọ́ àti"])
    vocabulary.save(tmp_path)
    assert Vocabulary.load(tmp_path) == vocabulary and Vocabulary.load(tmp_path).normalizer.letter_units
    tokenizer = AutoProcessor.from_pretrained(tmp_path).tokenizer
    # decoding (what transcription does) is exact; HF's own *encoding* strips a space after a multi-code-point
    # token (transformers adds such tokens with lstrip/rstrip), which is why parp encodes with its vocabulary
    assert tokenizer.decode(vocabulary.encode("ọ̀rọ́ ilẹ̀ àti")) == "ọ̀rọ́ ilẹ̀ àti"
