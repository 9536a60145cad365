"""The real languages of ../shared/data: each orthography's decisions (docs/data.md) on real manifest lines,
inventories without punctuation, and the vocabulary of every full manifest."""

import unicodedata

import pytest

from parp.data import Vocabulary, read_manifest
from parp.data.text import make_normalizer

pytestmark = pytest.mark.shared_data

#: The --token-unit of each language (docs/data.md): East Tusom is IPA, modelled as phones.
TOKEN_UNIT = {"yo": "char", "qu": "char", "rw": "char", "pcm": "char", "sw": "char", "br": "char",
              "mboshi": "char", "tus": "ipa-phone"}
#: Units of each full manifest's vocabulary ([PAD], [UNK] and | not counted), as docs/data.md states them.
INVENTORY_SIZE = {"yo": 54, "qu": 33, "rw": 37, "pcm": 38, "sw": 36, "br": 33, "mboshi": 32, "tus": 106}

#: (language, audio path, normalised transcript): a real line for each decision.
LINES = [
    # Yoruba: tone marks and under-dots kept, ẹ̀ one letter, elision apostrophe and hyphen inside words
    ("yo", "audio/200625-221631_yor_874_elicit_1.ogg",
     "bi iru ẹni bẹ ṣe npe si l'òkè-òkun bẹni ìtìjú ati pada sile se npọ si"),
    # Yoruba: the prompt's doubled grave on "ì̀yàwó" counts once
    ("yo", "audio/200625-223759_yor_874_elicit_11.ogg",
     "ìgbéyàwó ìbíle ní ilẹ̀ yorùbá jẹ́ àsìkò ti ẹbí ọkọ àti ìyàwó ma nparapọ"),
    # Quechua: ejectives ch' and k' keep their apostrophe
    ("qu", "audio/quechua000037.ogg",
     "payqa hatun kurku kurku rikrayuq ch'umpi uyayuq tumpa k'upaykusqa chukchanpas"),
    # Kinyarwanda: k'imyaka kept, digits kept, punctuation and case gone
    ("rw", "audio/200627-233446_kin_60a_elicit_392.ogg",
     "bamusangana indwara ikomeye undi muvandimwe uri mu kigero k'imyaka 50 ukorana umwete yirukanywe ku kazi"),
    # Kinyarwanda: ‘…’ are quotes, not letters
    ("rw", "audio/200627-233446_kin_60a_elicit_459.ogg",
     "mvuga nti ibyo nange ndabishoboye nahise ntangira kurira kuko nari mbonye ko yehova ashubije isengesho"),
    # Nigerian Pidgin: a closing quote after the full stop is dropped
    ("pcm", "audio/200624-232607_pcm_9fa_elicit_34.ogg", "nobody fit come meet my father unless i show am the road"),
    # Nigerian Pidgin: o'clock keeps its apostrophe, the quotes and the Bible reference's colon go
    ("pcm", "audio/200702-201219_ibb_9fa_elicit_0.ogg",
     "dem tell am sey na yesterday around 1 o'clock for afternoon john 4 52"),
    # Swahili: digits kept as written
    ("sw", "audio/200701-101457_swh_35d_elicit_0.ogg",
     "wizara ya afya ya tanzania imeripoti jumatatu kuwa watu takriban 14 zaidi wamepata maambukizi ya covid 19"),
    # Breton: c'h is a letter; word-final elision apostrophe (bez') kept
    ("br", "audio/Brendan-Budo_ccf0497c_0001920_0003570.ogg", "salud deoc'h tout mat an traoù"),
    ("br", "audio/Neus_Ket_Deu_c50a32c6_0727035_0730065.ogg", "bez' zo bernioù uraniom bras a dalv d'ar skiriañ nukleel"),
    # Mboshi: word-final elision apostrophe, Greek-letter vowels with tone
    ("mboshi", "audio/abiayi_2015-09-08-11-33-57_samsung-SM-T530_mdw_elicit_Dico18_117.ogg",
     "kóó wamέnέ láadzwá l' ekyembe"),
    # East Tusom: IPA cut into phones (tie bar + aspiration, tone marks, voiceless r̥, nasal + tone)
    ("tus", "audio/animals1-102.ogg", "ʔ ù t͡ɕʰ ì b ò ɹ à"),
    ("tus", "audio/animals1-118.ogg", "b ò r̥ õ̂"),
    ("tus", "audio/bp1-54.ogg", "ʔ á ɕ ì e n ɯ́ k ə̀ t͡sʰ ɯ̀ ə̀ t͡ɕ é t χ à ʔ è"),
]


@pytest.fixture(scope="module")
def manifests(language_dir):
    if "tus" in TOKEN_UNIT:
        pytest.importorskip("ipatok")
    return {language: read_manifest(language_dir(language) / "train.tsv") for language in TOKEN_UNIT}


def _normalizer(language):
    return make_normalizer(TOKEN_UNIT[language])


@pytest.mark.parametrize("language,path,expected", LINES, ids=[f"{line[0]}-{i}" for i, line in enumerate(LINES)])
def test_real_lines_normalise_as_documented(manifests, language, path, expected):
    (text,) = [u.text for u in manifests[language] if u.path.endswith(path)]
    normalizer, _ = _normalizer(language)
    assert normalizer(text) == expected


@pytest.mark.parametrize("language", sorted(TOKEN_UNIT))
def test_full_manifest_vocabulary_has_letters_only(manifests, language):
    normalizer, unit = _normalizer(language)
    texts = [u.text for u in manifests[language]]
    vocabulary = Vocabulary.build(texts, normalizer, unit)
    units = [token for token in vocabulary.tokens if token not in ("[PAD]", "[UNK]", "|")]
    assert len(units) == INVENTORY_SIZE[language], sorted(units)
    for token in units:
        # letters, their marks and digits; the apostrophe and the hyphen only as letters inside words
        assert token in ("'", "-") or all(unicodedata.category(ch)[0] in "LMN" for ch in token), repr(token)
        assert unicodedata.category(token[0])[0] != "M", f"{token!r} starts with a combining mark"
        assert unicodedata.normalize("NFC", token) == token
    for text in texts:  # a dataset normalises twice (once itself, once in encode)
        assert normalizer(normalizer(text)) == normalizer(text)
    if unit == "char":
        assert all(len(token) == 1 or unicodedata.category(token[1])[0] == "M" for token in units)


def test_tusom_phones_keep_every_symbol(manifests):
    normalizer, _ = _normalizer("tus")
    for utterance in manifests["tus"]:
        phones = normalizer(utterance.text)
        assert phones.replace(" ", "") == unicodedata.normalize("NFC", utterance.text).replace(" ", "")
