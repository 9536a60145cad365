"""User-facing errors: one clear line naming the culprit, never a traceback.

The CLI catches :class:`ParpError` and prints ``parp: error: <message>``; library users get a normal
exception whose message is the same line.
"""


class ParpError(Exception):
    """Base class for errors caused by the user's input (files, arguments, configs)."""


class AudioError(ParpError):
    """An audio file cannot be used (corrupt, empty, zero length, unreadable)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ManifestError(ParpError):
    """A manifest or dataset is malformed (missing column, bad row, missing file)."""


class TextError(ParpError):
    """A transcript has characters the vocabulary does not know, or is otherwise unusable."""


class ConfigError(ParpError):
    """An argument or config value is out of range or inconsistent."""


class ModelError(ParpError):
    """A model folder or hub id cannot be loaded."""


class MaskError(ParpError):
    """A mask file does not fit the model, or a sparsity is invalid."""


class TrainingError(ParpError):
    """Training cannot go on (the loss or the weights stopped being finite)."""


class ClusterError(ParpError):
    """A Ray cluster cannot be started or joined, or a sweep cell's worker kept dying."""


class StorageError(ParpError):
    """Output cannot be written: the disk is full (the last good checkpoint stays valid)."""


class SynthError(ParpError):
    """eSpeak NG produced no speech (or no phonemes) for a language: nothing usable was synthesised."""
