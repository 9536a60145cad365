"""Phone targets: eSpeak's own phonemes as space-separated IPA, the phone vocabulary, and PER end to end."""

import csv
import json
import math

import pytest

from helpers import tiny_model_dir
from parp.cli import main
from parp.data.text import Vocabulary
from parp.errors import ConfigError, TextError
from parp.evaluation.metrics import error_rates
from parp.synth import ESpeakSynthesizer, SynthConfig, phone_string, run_synth, split_phones, synthesize_corpus


@pytest.mark.parametrize("word, language, phones", [
    ("casa", "es", "k a s a"),
    ("bonjour", "fr", "b ɔ̃ ʒ u ʁ"),      # nasal vowel: base + combining tilde, one phone
    ("привет", "ru", "p rʲ i vʲ e t"),   # palatalised consonants keep their ʲ
    ("你好", "zh", "n i2 χ ɑu2"),         # Mandarin: tone digit stays on the vowel, as eSpeak models it
    ("качан", "ky", "q ɑ tʃ ɑ n"),       # eSpeak's ASCII 'tS' mapped to the IPA every other language uses
])
def test_known_words_give_the_ipa_espeak_speaks(word, language, phones):
    # exact output of eSpeak NG 1.52 (espeakng-loader 0.2.4); stress marks are dropped, phone boundaries are eSpeak's
    assert phone_string(ESpeakSynthesizer().phonemes(word, language)) == phones


def test_split_rules():
    # stress, liaison hyphen, language-switch flags and empty phonemes are not phones
    assert split_phones("m_e-_z a_m_ˈi (en)_n_j_ˈuː_z_(fr) p__rʲ") == ["m", "e", "z", "a", "m", "i", "n", "j", "uː",
                                                                      "z", "p", "rʲ"]
    # ASCII leaks become IPA; a lone length mark or diacritic joins the phone before it
    assert split_phones("d[_S_e:_a_ː_o_\u0303") == ["d\u032a", "ʃ", "eː", "aː", "õ"]
    assert split_phones("") == []


def test_phones_manifest_is_reproducible_and_keeps_the_audio(tmp_path):
    manifests = synthesize_corpus(tmp_path / "a", ["es", "zh"], 2, seed=3, progress=False, transcripts="phones")
    again = synthesize_corpus(tmp_path / "b", ["es", "zh"], 2, seed=3, progress=False, transcripts="phones")
    text_only = synthesize_corpus(tmp_path / "c", ["es", "zh"], 2, seed=3, progress=False)
    tts = ESpeakSynthesizer()
    for manifest, twin, plain in zip(manifests, again, text_only):
        assert manifest.read_bytes() == twin.read_bytes()
        with open(manifest, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        with open(plain, encoding="utf-8", newline="") as f:
            plain_rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        assert list(rows[0]) == ["path", "speaker", "duration", "text", "phones"]
        assert [{k: r[k] for k in plain_rows[0]} for r in rows] == plain_rows  # text columns unchanged
        language = manifest.parent.name
        for row in rows:
            # phonemising never disturbs synthesis: the audio is the text-only corpus's, byte for byte
            assert (manifest.parent / row["path"]).read_bytes() == (plain.parent / row["path"]).read_bytes()
            final = "。" if language == "zh" else "."
            assert row["phones"] == phone_string(tts.phonemes(row["text"] + final, language, row["speaker"]))
            assert len(row["phones"].split()) >= len(row["text"].replace(" ", "")) // 2
    record = json.loads((tmp_path / "a" / "synth.json").read_text(encoding="utf-8"))
    shared = set(record["phone_inventory"]["shared"])
    assert record["config"]["transcripts"] == "phones" and {"k", "a", "s"} <= shared
    assert "(en)" not in shared and not any("ˈ" in p for p in shared)


def test_unknown_transcripts_mode_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--transcripts must be text or phones"):
        run_synth(SynthConfig(out_dir=str(tmp_path), languages=["es"], utterances_per_language=1,
                              transcripts="ipa", progress=False))


def test_phone_vocabulary_tokens_decode_and_round_trip(tmp_path):
    vocab = Vocabulary.build(["ts.h ɑ5 p iɛɜ", "a b tʃ: d"], unit="phone")
    assert vocab.tokens == ["[PAD]", "[UNK]", "a", "b", "d", "iɛɜ", "p", "ts.h", "tʃ:", "ɑ5"]  # no word delimiter
    ids = vocab.encode("ts.h  a tʃ:")
    assert ids == [7, 2, 8]
    assert vocab.decode_ids([0, 7, 7, 0, 2, 2, 8, 1]) == "ts.h a tʃ:"  # CTC collapse, phones stay whole
    assert vocab.decode_labels([2, 2, -100]) == "a a"
    with pytest.raises(TextError, match=r"phone 'tʃ' \(U\+0074 U\+0283\) is not in the vocabulary"):
        vocab.encode("tʃ a")
    vocab.save(tmp_path)
    loaded = Vocabulary.load(tmp_path)
    assert loaded == vocab and loaded.unit == "phone" and loaded.encode("iɛɜ p") == [5, 6]
    from transformers import AutoProcessor

    tokenizer = AutoProcessor.from_pretrained(str(tmp_path)).tokenizer
    assert tokenizer("ts.h a tʃ:").input_ids == ids and tokenizer.decode(ids) == "ts.h a tʃ:"
    assert error_rates(["a b c d"], ["a x c"], unit="phone") == {"per": 0.5, "scored": 1}


def test_finetune_on_phone_targets_reports_per(tmp_path, capsys):
    corpus = tmp_path / "synth"
    (manifest,) = synthesize_corpus(corpus, ["es"], 6, seed=0, progress=False, transcripts="phones",
                                    max_words=3)
    model = tiny_model_dir(tmp_path / "tiny")
    out = tmp_path / "run"
    code = main(["finetune", "--model", str(model), "--train-manifest", str(manifest), "--valid-manifest",
                 str(manifest), "--text-column", "phones", "--token-unit", "phone", "--output-dir", str(out),
                 "--max-steps", "2", "--save-every", "0", "--eval-every", "0", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    final = record["metrics"]["final"]
    assert set(final) == {"per"} and 0 <= final["per"] and math.isfinite(final["per"])
    assert record["data"]["token_unit"] == "phone"
    with open(manifest, encoding="utf-8", newline="") as f:
        phones = {r["phones"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)}
    vocab = Vocabulary.load(out / "model")  # the saved model's vocabulary: every phone of the manifest, whole
    assert vocab.unit == "phone" and vocab.tokens[2:] == sorted({p for line in phones for p in line.split()})

    code = main(["evaluate", "--model", str(out / "model"), "--manifest", str(manifest), "--text-column", "phones",
                 "--output-dir", str(tmp_path / "eval"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["token_unit"] == "phone" and "wer" not in metrics and "cer" not in metrics
    assert math.isfinite(metrics["per"]) and metrics["utterances"] == 6
    evaluated = json.loads((tmp_path / "eval" / "run.json").read_text(encoding="utf-8"))
    assert evaluated["metrics"]["token_unit"] == "phone"
    with open(tmp_path / "eval" / "predictions.tsv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        rows = list(reader)
    assert reader.fieldnames == ["path", "reference", "hypothesis", "per"]
    assert {r["reference"] for r in rows} == phones  # references are the manifest's phones, untouched

    code = main(["evaluate", "--model", str(out / "model"), "--manifest", str(manifest), "--text-column", "phones",
                 "--beam-width", "4", "--output-dir", str(tmp_path / "beam"), "--no-progress"])
    assert code == 2 and "phone model decodes greedily" in capsys.readouterr().err
