"""Offline labelled multilingual speech synthesised with eSpeak NG (``parp synth``)."""

from parp.synth.corpus import SynthConfig, run_synth, supported_languages, synthesize_corpus
from parp.synth.espeak import (
    DEFAULT_VARIANTS, ESpeakSynthesizer, available_languages, available_variants, espeak_version, voice_name,
)
from parp.synth.phones import phone_string, split_phones
from parp.synth.text_source import sentences, text_languages, word_list

__all__ = [
    "SynthConfig", "run_synth", "synthesize_corpus", "supported_languages", "ESpeakSynthesizer",
    "available_languages", "available_variants", "espeak_version", "voice_name", "DEFAULT_VARIANTS",
    "sentences", "text_languages", "word_list", "phone_string", "split_phones",
]
