"""eSpeak's phoneme string -> space-separated phone tokens, one IPA inventory shared by every language.

Where the phone boundaries fall is eSpeak's decision, not ours: ``espeak_TextToPhonemes`` is asked to write a
separator between its own phonemes, so a multi-letter phoneme (``tʃ``, ``aɪ``, ``ɑu``, ``rʲ``) stays one token with
its diacritics, length mark (``ɛː``) and, in Mandarin, its tone digit (``i2``) attached, exactly as eSpeak models it.
Tie bars are not added: the space already says where a phone ends. What is removed is not a phone:

- stress marks (``ˈ ˌ``): a property of the syllable, not a segment; keeping them would double the vowel inventory
  (stressed / unstressed) and the paper's Common Voice phone transcriptions carry none (phonemizer's default);
- eSpeak's liaison / linking hyphen (French ``me-z``) and empty phonemes (eSpeak emits a few zero-width ones);
- language-switch flags such as ``(en)``: a foreign word is still spoken, with the other voice's phonemes;
- word boundaries: targets are one phone sequence, scored as phone error rate (PER).

A mark that eSpeak leaves standing alone (a length mark or a combining diacritic) joins the phone before it.

eSpeak NG 1.52 writes a few phonemes in its ASCII (Kirshenbaum-style) names where a voice's phoneme table has no
IPA for them, mostly Kyrgyz (``tS dZ S N X``, ``:`` for length, ``[`` for dental). Those with an unambiguous IPA
twin are mapped (``ASCII_TO_IPA``), so the Kyrgyz ``tS`` and the Turkish ``tʃ`` are one token. Mandarin keeps
eSpeak's own tokens: its tone digits stay on the vowel (``i2``; tone 3 comes out as ``ɜ``, as in ``oɜ``), which
makes its tone-bearing vowels Mandarin-only tokens, as tonal phones are in any shared inventory.
"""

from __future__ import annotations

import re
import unicodedata

from parp.synth.espeak import PHONE_SEPARATOR

#: Characters dropped from eSpeak's phonemes (stress and linking marks): they are not phones.
NOT_PHONES = "ˈˌ-"
#: eSpeak's ASCII phoneme names that leak into its IPA output, with their IPA (whole tokens).
ASCII_TO_IPA = {"tS": "tʃ", "dZ": "dʒ", "S": "ʃ", "Z": "ʒ", "N": "ŋ", "X": "χ", "oe": "ø"}
#: ... and inside a token: length and dental marks.
ASCII_MARKS = {ord(":"): "ː", ord("["): "\u032a"}
_LANGUAGE_FLAG = re.compile(r"\([a-z-]+\)")


def _is_mark(token: str) -> bool:
    """A token made only of length marks / modifiers / combining diacritics (no base symbol of its own)."""
    return all(unicodedata.category(c) in ("Mn", "Mc", "Me", "Sk") or c in "ːˑ" for c in token)


def split_phones(espeak_ipa: str) -> list[str]:
    """Phone tokens of one eSpeak IPA string written with ``PHONE_SEPARATOR`` between phonemes (NFC)."""
    table = {ord(c): None for c in NOT_PHONES}
    phones: list[str] = []
    for word in _LANGUAGE_FLAG.sub(" ", espeak_ipa).split():
        for piece in word.split(PHONE_SEPARATOR):
            piece = piece.translate(table)
            token = unicodedata.normalize("NFC", ASCII_TO_IPA.get(piece, piece).translate(ASCII_MARKS))
            if not token:
                continue
            if phones and _is_mark(token):
                phones[-1] = unicodedata.normalize("NFC", phones[-1] + token)
            else:
                phones.append(token)
    return phones


def phone_string(espeak_ipa: str) -> str:
    """The manifest form: phones separated by single spaces."""
    return " ".join(split_phones(espeak_ipa))
