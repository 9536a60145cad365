"""Transcript normalisation and the CTC vocabulary shared by training, evaluation and export.

Low-resource orthographies carry meaning in diacritics and tone marks (Mboshi "ώ" vs "ω"), so the
normaliser only composes (NFC), lowercases and strips punctuation; it never strips accents or scripts. A
character unit is one letter with its diacritics (Yoruba "ẹ̀" is one unit like "è", although NFC has no single
code point for it). Apostrophes that touch a letter are letters (Kinyarwanda
"k'imyaka", Quechua "p'acha", Breton "c'h", Mboshi "l'"); quotes are not. The decisions per language are in
docs/data.md.
Phone transcripts (``token_unit="phone"``: space-separated IPA phones, as ``parp synth --transcripts phones``
writes them) are whole-token units instead of characters, and their normaliser only composes and collapses
spaces: case, ``.``, ``:`` and apostrophes are phonetic symbols there. IPA text without spaces between phones
(East Tusom) is cut into phones by ``ipatok`` first (``token_unit="ipa-phone"``, :class:`IpaPhoneNormalizer`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import regex

from parp.errors import ConfigError, TextError

logger = logging.getLogger(__name__)

#: Punctuation removed by default. "|" and "[" "]" are included so transcripts can never spell the word
#: delimiter or a special token.
DEFAULT_DROP_CHARS = ',.?!;:"«»()[]{}<>“”„‟‹›…¿¡|/\\*#~_=+@^'

#: Signs written for an apostrophe; touching a letter (before or after it) they become the one letter "'"
#: (Mboshi writes elision word-finally, "l' ekyem"; Breton word-initially, "ma 'z eus").
_APOSTROPHES = "'ʼ`´"
#: The typographic apostrophe is also the closing single quote: a letter only between two letters ("n’ibibazo").
_RIGHT_QUOTE = "’"
#: Opening single quotes are never apostrophes.
_LEFT_QUOTES = "‘‛"
#: Long dashes are punctuation and become spaces; the hyphen stays where it joins words ("Montre-moi", "23-28").
_DASH_PUNCTUATION = "—–―"
#: A sign between these is inside a word: letters, their combining marks, digits.
_WORD_CHAR = regex.compile(r"[\p{L}\p{M}\p{N}]")
_IN_WORD_SIGNS = regex.compile("[" + regex.escape(_APOSTROPHES + _RIGHT_QUOTE + _LEFT_QUOTES) + "-]")
#: A letter unit: a character with the diacritics that follow it from the Combining Diacritical Marks blocks (the
#: accents, tone marks and dots of Latin, Greek, Cyrillic and IPA letters). Other scripts' signs (Devanagari or
#: Thai vowel signs, Arabic harakat) stay units of their own, as before: grouping them would make syllables units.
_LETTER = regex.compile(r"\P{M}[\u0300-\u036F\u1AB0-\u1AFF\u1DC0-\u1DFF\u20D0-\u20FF\uFE20-\uFE2F]*|.", regex.DOTALL)
#: A combining mark with no letter to sit on (after a space or punctuation) marks nothing: dropped.
_ORPHAN_MARKS = regex.compile(r"(?<![\p{L}\p{M}\p{N}])\p{M}+")
#: The same mark twice on one letter is a double key press (Yoruba prompts: "ó" + U+0301): counted once.
_REPEATED_MARK = regex.compile(r"(\p{M})\1+")

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
WORD_DELIMITER = "|"
TEXT_SETTINGS_FILE = "parp_text.json"
#: Units a vocabulary is made of.
VOCABULARY_UNITS = ("char", "phone")
#: Values of ``--token-unit``: ``ipa-phone`` is a phone vocabulary over IPA text cut into phones by ipatok.
TOKEN_UNITS = ("char", "phone", "ipa-phone")


class TextNormalizer:
    """NFC, optional lowercasing, punctuation removal, whitespace collapse; keeps diacritics and scripts.

    ``letter_units``: a character unit is a letter with its combining diacritics rather than a code point;
    vocabularies saved before it existed load with it off, so their tokens keep meaning the same.
    """

    def __init__(self, lowercase: bool = True, drop_chars: str = DEFAULT_DROP_CHARS, keep_apostrophe: bool = True,
                 letter_units: bool = True):
        self.lowercase = lowercase
        self.drop_chars = drop_chars
        self.keep_apostrophe = keep_apostrophe
        self.letter_units = letter_units
        # Punctuation becomes a space ("oui,non" -> "oui non"); apostrophes and hyphens are decided in context.
        self._table = {ord(ch): " " for ch in drop_chars + _DASH_PUNCTUATION}

    def _in_word_sign(self, match: regex.Match) -> str:
        """An apostrophe or hyphen: a letter where it touches the word it belongs to, else a space."""
        sign, text, i = match.group(), match.string, match.start()
        before = i > 0 and _WORD_CHAR.match(text[i - 1]) is not None
        after = i + 1 < len(text) and _WORD_CHAR.match(text[i + 1]) is not None
        if sign == "-":
            return "-" if before and after else " "
        if sign in _LEFT_QUOTES or (sign == _RIGHT_QUOTE and not (before and after)) or not (before or after):
            return " "  # a quotation mark
        return "'" if self.keep_apostrophe else ""  # a dropped apostrophe joins ("don't" -> "dont")

    def __call__(self, text: str) -> str:
        if self.lowercase:
            text = text.lower()
        text = text.translate(self._table)
        # marks are compared decomposed (NFD), then composed again: NFC is the form every unit is kept in
        text = _REPEATED_MARK.sub(r"\1", _ORPHAN_MARKS.sub(" ", unicodedata.normalize("NFD", text)))
        text = _IN_WORD_SIGNS.sub(self._in_word_sign, unicodedata.normalize("NFC", text))
        return " ".join(text.split())

    def split(self, normalized: str) -> list[str]:
        """Normalised text as character units (a space stays " ")."""
        return _LETTER.findall(normalized) if self.letter_units else list(normalized)

    def to_dict(self) -> dict:
        return {"lowercase": self.lowercase, "drop_chars": self.drop_chars, "keep_apostrophe": self.keep_apostrophe,
                "letter_units": self.letter_units}

    def __repr__(self) -> str:
        return (f"TextNormalizer(lowercase={self.lowercase}, drop_chars={self.drop_chars!r}, "
                f"keep_apostrophe={self.keep_apostrophe}, letter_units={self.letter_units})")


class PhoneNormalizer:
    """NFC and whitespace collapse only: every other character of an IPA phone is part of the phone."""

    def __call__(self, text: str) -> str:
        return " ".join(unicodedata.normalize("NFC", text).split())

    def to_dict(self) -> dict:
        return {"token_unit": "phone"}

    def __repr__(self) -> str:
        return "PhoneNormalizer()"


class IpaPhoneNormalizer:
    """IPA text cut into space-separated phones by ipatok: a phone is a base symbol with its diacritics, tone
    marks, length mark and tie bar (``t͡ɕʰ``, ``ɯ̃̀``, ``aː``), as eSpeak's phones keep theirs; word spaces go, as in
    ``parp synth``'s phone transcripts. Idempotent, so an already cut transcript is left as it is.

    ipatok (``pip install 'parp[ipa]'``) rather than own code: it knows which IPA symbols are letters,
    diacritics and tones.
    """

    def __init__(self):
        try:
            from ipatok import tokenise  # lazy: only IPA corpora need it
        except ImportError:
            raise ConfigError("IPA phones (--token-unit ipa-phone, or a model trained with it) need ipatok: "
                              "pip install 'parp[ipa]'") from None
        self._tokenise = tokenise

    def __call__(self, text: str) -> str:
        phones = self._tokenise(unicodedata.normalize("NFC", text), tones=True, unknown=True)
        return " ".join(unicodedata.normalize("NFC", phone) for phone in phones)

    def to_dict(self) -> dict:
        return {"token_unit": "phone", "segmenter": "ipatok"}

    def __repr__(self) -> str:
        return "IpaPhoneNormalizer()"


def make_normalizer(token_unit: str, lowercase: bool = True, drop_chars: str = DEFAULT_DROP_CHARS):
    """The normaliser of a ``--token-unit`` value and the unit of its vocabulary (``char`` or ``phone``)."""
    if token_unit not in TOKEN_UNITS:
        raise ConfigError(f"--token-unit must be {' | '.join(TOKEN_UNITS)}, got {token_unit!r}")
    if token_unit == "ipa-phone":
        return IpaPhoneNormalizer(), "phone"
    if token_unit == "phone":
        return PhoneNormalizer(), "phone"
    return TextNormalizer(lowercase=lowercase, drop_chars=drop_chars), "char"


def _describe(unit: str) -> str:
    """A character or phone with its code points, so look-alike symbols can be told apart."""
    return f"{unit!r} ({' '.join(f'U+{ord(c):04X}' for c in unit)})"


class Vocabulary:
    """CTC vocabulary: ``[PAD]`` = 0 (the blank), ``[UNK]`` = 1, then ``|`` for spaces and characters (``unit``
    ``char``), or the phones of space-separated phone transcripts (``unit`` ``phone``: no word delimiter).

    It owns the normaliser it was built with, so ``encode`` and ``check`` see text exactly as training did,
    and ``save`` records it (and the unit) beside the Hugging Face processor files.
    """

    def __init__(self, tokens: Sequence[str], normalizer=None, unit: str = "char"):
        if unit not in VOCABULARY_UNITS:
            raise TextError(f"token unit must be {' or '.join(VOCABULARY_UNITS)}, got {unit!r}")
        if list(tokens[:2]) != [PAD_TOKEN, UNK_TOKEN]:
            raise TextError(f"vocabulary must start with {PAD_TOKEN}, {UNK_TOKEN}; got {list(tokens[:2])}")
        if len(set(tokens)) != len(tokens):
            raise TextError("vocabulary has duplicate tokens")
        self.tokens = list(tokens)
        self.unit = unit
        self.normalizer = normalizer or (PhoneNormalizer() if unit == "phone" else TextNormalizer())
        self.token_to_id = {token: i for i, token in enumerate(self.tokens)}
        self.pad_id = 0
        self.unk_id = 1
        self.word_delimiter_id = self.token_to_id.get(WORD_DELIMITER)

    @classmethod
    def build(cls, texts: Iterable[str], normalizer=None, unit: str = "char") -> "Vocabulary":
        """Vocabulary of every unit (character or phone) in the normalised ``texts`` (sorted: reproducible)."""
        vocabulary = cls([PAD_TOKEN, UNK_TOKEN], normalizer, unit)
        units = set()
        for text in texts:
            units.update(vocabulary.units(text))
        units.discard(" ")
        if not units:
            raise TextError("cannot build a vocabulary: the transcripts are empty after normalisation")
        delimiter = [WORD_DELIMITER] if unit == "char" else []
        return cls([PAD_TOKEN, UNK_TOKEN, *delimiter, *sorted(units)], vocabulary.normalizer, unit)

    def units(self, text: str) -> list[str]:
        """The normalised text as vocabulary units: characters (a space stays " "), or space-separated phones."""
        normalized = self.normalizer(text)
        if self.unit == "phone":
            return normalized.split()
        split = getattr(self.normalizer, "split", None)  # a custom normaliser without one: code points
        return split(normalized) if split else list(normalized)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def __repr__(self) -> str:
        if self.unit == "phone":
            return f"Vocabulary({len(self)} phone tokens: {' '.join(self.tokens[2:])!r})"
        return f"Vocabulary({len(self)} tokens: {''.join(self.tokens[3:])!r})"

    def unknown_characters(self, text: str) -> set[str]:
        """Units (characters or phones) of ``text`` the vocabulary lacks."""
        return {ch for ch in self.units(text) if ch != " " and ch not in self.token_to_id}

    def encode(self, text: str, allow_unknown: bool = False) -> list[int]:
        """Normalise and map characters to ids (space -> ``|``).

        Raises:
            TextError: a character is not in the vocabulary, unless ``allow_unknown`` maps it to ``[UNK]``.
        """
        ids = []
        for ch in self.units(text):
            token = WORD_DELIMITER if ch == " " else ch
            token_id = self.token_to_id.get(token)
            if token_id is None:
                if not allow_unknown:
                    raise TextError(f"{self._unit_name} {_describe(ch)} is not in the vocabulary (in {text!r})")
                token_id = self.unk_id
            ids.append(token_id)
        return ids

    def check(self, texts: Iterable[str], source: str = "transcripts", allow_unknown: bool = False) -> Counter:
        """Find characters the vocabulary lacks across ``texts``; returns their counts.

        Raises:
            TextError: naming ``source``, the unseen characters, how many transcripts have them and an
                example, unless ``allow_unknown`` (then they are logged and will encode as ``[UNK]``).
        """
        unknown: Counter = Counter()
        n_texts = n_bad = 0
        example = None
        for text in texts:
            n_texts += 1
            missing = self.unknown_characters(text)
            if missing:
                n_bad += 1
                example = example or text
                unknown.update(ch for ch in self.units(text) if ch in missing)
        if unknown:
            listed = ", ".join(_describe(ch) for ch, _ in unknown.most_common())
            message = (
                f"{source}: {n_bad} of {n_texts} transcripts contain {self._unit_name}s not in the vocabulary: {listed}; "
                f"e.g. {example!r}"
            )
            if not allow_unknown:
                raise TextError(message + ". Rebuild the vocabulary with this text, or allow unknown characters "
                                "to map them to [UNK]")
            logger.warning("%s (mapped to [UNK])", message)
        return unknown

    @property
    def _unit_name(self) -> str:
        return "phone" if self.unit == "phone" else "character"

    def _join(self, pieces: list[str]) -> str:
        """Decoded units as text: characters concatenated (``|`` already a space), phones space-separated."""
        return " ".join((" ".join(pieces) if self.unit == "phone" else "".join(pieces)).split())

    def decode_ids(self, ids: Iterable[int]) -> str:
        """Greedy CTC text: collapse repeats, drop blanks and special tokens, ``|`` -> space (phones: spaced).

        Takes the argmax ids of one utterance (list, numpy array or 1-D tensor); ids < 0 are ignored.
        """
        pieces = []
        previous = None
        for token_id in (int(i) for i in ids):
            if token_id < 0:
                continue
            if token_id != previous and token_id not in (self.pad_id, self.unk_id):
                pieces.append(" " if token_id == self.word_delimiter_id else self.tokens[token_id])
            previous = token_id
        return self._join(pieces)

    def decode_labels(self, ids: Iterable[int]) -> str:
        """Text of a label sequence (no CTC collapse: "ll" stays "ll"); -100 padding is skipped."""
        pieces = [
            " " if i == self.word_delimiter_id else self.tokens[i]
            for i in (int(i) for i in ids)
            if i >= 0 and i not in (self.pad_id, self.unk_id)
        ]
        return self._join(pieces)

    def processor(self, sampling_rate: int = 16000):
        """A ``transformers.Wav2Vec2Processor`` equivalent to this vocabulary (for saving beside models)."""
        # lazy: the data floor loads transformers only to save a processor
        from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

        with tempfile.TemporaryDirectory() as tmp:
            vocab_file = Path(tmp) / "vocab.json"
            self._write_vocab_json(vocab_file)
            if self.unit == "phone":  # transformers' tokenizer for space-separated phones (no phonemiser needed)
                from transformers import Wav2Vec2PhonemeCTCTokenizer

                tokenizer = Wav2Vec2PhonemeCTCTokenizer(
                    str(vocab_file), unk_token=UNK_TOKEN, pad_token=PAD_TOKEN, bos_token=None, eos_token=None,
                    phone_delimiter_token=" ", word_delimiter_token=None, do_phonemize=False,
                )
            else:
                tokenizer = Wav2Vec2CTCTokenizer(
                    str(vocab_file), unk_token=UNK_TOKEN, pad_token=PAD_TOKEN, word_delimiter_token=WORD_DELIMITER,
                    bos_token=None, eos_token=None, do_lower_case=False,
                )
        feature_extractor = Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=sampling_rate,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        )
        return Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer)

    def _write_vocab_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.token_to_id, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    def save(self, directory: str | os.PathLike, sampling_rate: int = 16000) -> Path:
        """Write ``vocab.json``, the HF processor files (``AutoProcessor``-loadable) and the normaliser settings."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.processor(sampling_rate).save_pretrained(str(directory))
        self._write_vocab_json(directory / "vocab.json")
        settings = {**self.normalizer.to_dict(), **({"token_unit": "phone"} if self.unit == "phone" else {})}
        (directory / TEXT_SETTINGS_FILE).write_text(json.dumps(settings, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Vocabulary":
        """Read a folder written by :meth:`save` (or any HF CTC processor folder using [PAD]/[UNK]/|)."""
        directory = Path(directory)
        vocab_file = directory / "vocab.json"
        if not vocab_file.is_file():
            raise TextError(f"{directory}: no vocab.json (not a saved vocabulary or processor folder)")
        try:
            token_to_id = json.loads(vocab_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TextError(f"{vocab_file}: invalid JSON ({exc})") from None
        tokens = [token for token, _ in sorted(token_to_id.items(), key=lambda item: item[1])]
        if [token_to_id[t] for t in tokens] != list(range(len(tokens))):
            raise TextError(f"{vocab_file}: token ids must be 0..{len(tokens) - 1} without gaps")
        settings_file = directory / TEXT_SETTINGS_FILE
        normalizer, unit = None, "char"
        if settings_file.is_file():
            settings = json.loads(settings_file.read_text(encoding="utf-8"))
            unit = settings.pop("token_unit", "char")
            if unit == "phone":
                normalizer = IpaPhoneNormalizer() if settings.get("segmenter") == "ipatok" else PhoneNormalizer()
            else:
                settings.setdefault("letter_units", False)  # saved before letter units: code points, as trained
                normalizer = TextNormalizer(**settings)
        return cls(tokens, normalizer, unit)
