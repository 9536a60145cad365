"""Data layer: audio decoding, manifests / HF corpora, text normalisation + vocabulary, batching, splits."""

from parp.data.arguments import DataArguments, load_utterances
from parp.data.audio import AudioInfo, audio_info, load_audio
from parp.data.batching import CTCCollator, LengthGroupedBatchSampler
from parp.data.dataset import SpeechDataset
from parp.data.manifest import Utterance, filter_by_duration, load_hf_corpus, read_manifest
from parp.data.splits import split_train_valid
from parp.data.text import DEFAULT_DROP_CHARS, TextNormalizer, Vocabulary

__all__ = [
    "DataArguments",
    "load_utterances",
    "AudioInfo",
    "audio_info",
    "load_audio",
    "CTCCollator",
    "LengthGroupedBatchSampler",
    "SpeechDataset",
    "Utterance",
    "filter_by_duration",
    "load_hf_corpus",
    "read_manifest",
    "split_train_valid",
    "DEFAULT_DROP_CHARS",
    "TextNormalizer",
    "Vocabulary",
]
