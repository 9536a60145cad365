"""Sentences of real words per language, for transcripts that match what eSpeak says.

Words come from wordfreq's frequency lists (top ~5000) or, where wordfreq has no list (Kyrgyz, Tatar), from
hand-written lists shipped in ``wordlists/``. Only words written entirely in the language's own script survive:
digits, punctuation and foreign-script tokens would be spoken as something other than their spelling.
"""

from __future__ import annotations

import math
import unicodedata
import zlib
from collections import Counter
from functools import lru_cache
from importlib import resources
from importlib.metadata import version

import numpy as np

from parp.errors import ConfigError

TOP_N = 5000
# Languages written without spaces between words: the sentence is the words concatenated.
NO_SPACE = {"zh", "ja", "yue", "th", "my"}
# Scripts whose single characters are letters, not words; only the real one-letter words below survive.
ALPHABETIC = {"LATIN", "CYRILLIC", "GREEK"}
ONE_LETTER_WORDS = {
    "es": "yaoeu", "fr": "aày", "it": "eaoèi", "pt": "aoeéà", "en": "ai", "pl": "wizoau", "ru": "вискоуяа",
    "uk": "віуяйзта", "bg": "виса", "sv": "iåö", "nl": "u", "cs": "vskuaioz", "sk": "vzsoaik", "ca": "iaoe",
    "ro": "oa", "hu": "a", "sl": "vzsoaik", "tr": "o", "da": "iå", "nb": "iå",
}


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def _is_letters(word: str) -> bool:
    return bool(word) and all(unicodedata.category(c)[0] in "LM" for c in word)


def _shipped_languages() -> list[str]:
    folder = resources.files("parp.synth") / "wordlists"
    return sorted(p.name[: -len(".txt")] for p in folder.iterdir() if p.name.endswith(".txt"))


def _wordfreq_languages() -> list[str]:
    try:
        import wordfreq
    except ImportError:
        return []
    return sorted(wordfreq.available_languages())


def text_languages() -> list[str]:
    """Languages with a word source (wordfreq or a shipped list)."""
    return sorted(set(_shipped_languages()) | set(_wordfreq_languages()))


def _raw_words(language: str) -> tuple[list[str], list[float], str]:
    """(words, weights, source) before script filtering; shipped lists take precedence over wordfreq."""
    if language in _shipped_languages():
        text = (resources.files("parp.synth") / "wordlists" / f"{language}.txt").read_text(encoding="utf-8")
        words = [unicodedata.normalize("NFC", w.strip()).lower() for w in text.splitlines()]
        words = [w for w in words if w and not w.startswith("#")]
        return words, [1.0] * len(words), f"parp/synth/wordlists/{language}.txt (hand-written list of common words)"
    if language in _wordfreq_languages():
        import wordfreq  # optional, as in _wordfreq_languages

        words = wordfreq.top_n_list(language, TOP_N)
        # Weight by Zipf value (log10 frequency per billion words): frequent words recur, but function words do
        # not swamp sentences as they would under raw frequency. The frequency dict avoids wordfreq's tokenizer
        # (which needs jieba / MeCab for zh / ja).
        freqs = wordfreq.get_frequency_dict(language)
        weights = [math.log10(max(freqs.get(w, 0.0), 1e-9)) + 9.0 for w in words]

        return [unicodedata.normalize("NFC", w) for w in words], weights, f"wordfreq {version('wordfreq')} top {TOP_N}"
    raise ConfigError(f"no word list for language {language!r}; languages with text: {', '.join(text_languages())}")


@lru_cache(maxsize=None)
def word_list(language: str) -> tuple[tuple[str, ...], np.ndarray, str]:
    """(words, sampling probabilities, source description) for ``language``.

    The language's scripts are learnt from its own most frequent words (any script carrying >= 10 % of their
    letters), so Russian keeps Cyrillic and drops stray Latin tokens while Japanese keeps kana and kanji.
    """
    words, weights, source = _raw_words(language)
    letters = Counter(_script(c) for w in words[:300] if _is_letters(w) for c in w)
    total = sum(letters.values()) or 1
    scripts = {s for s, n in letters.items() if n / total >= 0.10}
    kept, kept_w, seen = [], [], set()
    for rank, (w, wt) in enumerate(zip(words, weights)):
        if w in seen or not _is_letters(w) or any(_script(c) not in scripts for c in w):
            continue
        # lone alphabetic letters are mostly fragments (French "l", "t" of "a-t-il") that eSpeak spells out
        if len(w) == 1 and _script(w) in ALPHABETIC and w not in ONE_LETTER_WORDS.get(language, ""):
            continue
        seen.add(w)
        kept.append(w)
        kept_w.append(max(float(wt), 0.1))
    if len(kept) < 20:
        raise ConfigError(f"word list for {language!r} has only {len(kept)} usable words ({source})")
    p = np.asarray(kept_w, dtype=np.float64)
    return tuple(kept), p / p.sum(), source


def make_sentence(language: str, rng: np.random.Generator, min_words: int = 3, max_words: int = 10) -> str:
    """One lowercase sentence of ``min_words``..``max_words`` words drawn from the language's list."""
    words, p, _ = word_list(language)
    n = int(rng.integers(min_words, max_words + 1))
    picked = [words[i] for i in rng.choice(len(words), size=n, p=p)]
    return ("" if language in NO_SPACE else " ").join(picked)


def sentences(language: str, n: int, seed: int = 0, min_words: int = 3, max_words: int = 10) -> list[str]:
    """``n`` sentences, identical for the same (language, seed)."""
    if not 1 <= min_words <= max_words:
        raise ConfigError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    rng = np.random.default_rng([seed, _stable_id(language)])
    return [make_sentence(language, rng, min_words, max_words) for _ in range(n)]


def _stable_id(text: str) -> int:
    """Process-independent integer for a string (``hash`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))
