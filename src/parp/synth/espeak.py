"""Minimal ctypes binding to the libespeak-ng shipped inside the ``espeakng-loader`` wheel.

Why ctypes and not a subprocess: there is no system ``espeak-ng`` binary to call, but the wheel carries the shared
library and its data folder, so the C API (``speak_lib.h``) is the only offline way in. The library keeps global
state (one voice, one parameter set, one callback), so it is initialised once per process and every synthesis runs
under a single lock.
"""

from __future__ import annotations

import ctypes
import os
import threading
from functools import lru_cache
from pathlib import Path

import espeakng_loader
import numpy as np

from parp.errors import ConfigError

# speak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
espeakCHARS_UTF8 = 1
espeakPHONEMES_IPA = 0x02
PHONE_SEPARATOR = "_"  # eSpeak writes it between its own phonemes (phonememode bits 8-23); never inside an IPA one
EE_OK = 0
espeakRATE = 1
espeakVOLUME = 2
espeakPITCH = 3
espeakRANGE = 4

SAMPLE_RATE = 22050

# Parp language codes (ISO 639-1 where it exists, as Common Voice uses) -> eSpeak voice names whose spelling differs.
VOICE_ALIASES = {"zh": "cmn"}

# Human-sounding variants; the Klatt/robot ones are excluded from defaults because they sound unlike speech.
DEFAULT_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated code)* then a zero byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_LOCK = threading.RLock()
_STATE: dict = {}


def _data_path() -> str:
    return espeakng_loader.get_data_path()


def _library():
    """Load and initialise libespeak-ng once per process; returns (lib, sample_rate)."""
    with _LOCK:
        if "lib" in _STATE:
            return _STATE["lib"], _STATE["rate"]

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]

        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, _data_path().encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate}) with data folder {_data_path()}")
        chunks: list[np.ndarray] = []

        def _collect(wav, numsamples, events):
            if wav and numsamples > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
            return 0  # 0 = continue synthesis

        callback = _SynthCallback(_collect)  # must stay referenced for the life of the process
        lib.espeak_SetSynthCallback(callback)
        _STATE.update(lib=lib, rate=rate, chunks=chunks, callback=callback)
        # Klatt variants draw noise from eSpeak's own PRNG; reseeding per utterance keeps output reproducible
        seed_fn = getattr(lib, "espeak_ng_SetRandSeed", None)
        if seed_fn is not None:
            seed_fn.restype = None
            seed_fn.argtypes = [ctypes.c_long]
        _STATE["srand"] = seed_fn
        return lib, rate


def espeak_version() -> str:
    lib, _ = _library()
    with _LOCK:
        return lib.espeak_Info(None).decode()


@lru_cache(maxsize=1)
def _voices() -> dict[str, str]:
    """{language code: voice identifier} from espeak_ListVoices, variants excluded.

    A code maps to the voice whose file is named after it ("en" -> "gmw/en", not "en-029"), else to the voice
    that lists it with the best (lowest) priority.
    """
    lib, _ = _library()
    ranked: dict[str, tuple[int, int, str]] = {}
    with _LOCK:
        arr = lib.espeak_ListVoices(None)
        i = 0
        while arr[i]:
            v = arr[i].contents
            ident = (v.identifier or b"").decode()
            if ident and not ident.startswith(("mb/", "!v")):
                addr = v.languages
                while (priority := ctypes.c_ubyte.from_address(addr).value) != 0:
                    code = ctypes.string_at(addr + 1).decode().lower()
                    key = (0 if ident.rsplit("/", 1)[-1].lower() == code else 1, priority, ident)
                    ranked[code] = min(ranked.get(code, key), key)
                    addr += 2 + len(code)
            i += 1
    return {code: key[2] for code, key in ranked.items()}


def available_languages() -> list[str]:
    """Language codes eSpeak can speak (e.g. ``es``, ``fr-fr``, ``cmn``), plus the aliases parp accepts (``zh``)."""
    return sorted(set(_voices()) | {a for a, target in VOICE_ALIASES.items() if target in _voices()})


def voice_name(language: str) -> str:
    """eSpeak voice name for a parp language code; raises ConfigError naming the language when unsupported."""
    code = language.lower()
    voices = _voices()
    code = VOICE_ALIASES.get(code, code)
    if code in voices:
        return voices[code].rsplit("/", 1)[-1]  # SetVoiceByName takes the voice file's name ("trk/ky" -> "ky")
    raise ConfigError(
        f"language {language!r} is not supported by eSpeak NG; available: {', '.join(available_languages())}"
    )


@lru_cache(maxsize=1)
def available_variants() -> list[str]:
    """Voice variant names from the data folder's ``voices/!v`` (usable as ``<lang>+<variant>``)."""
    folder = Path(_data_path()) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file() and " " not in p.name)


def _synth_unlocked(lib, name: str, text: str, rate_wpm: int, pitch: int, pitch_range: int) -> np.ndarray:
    chunks = _STATE["chunks"]
    chunks.clear()
    if lib.espeak_SetVoiceByName(name.encode()) != EE_OK:
        raise ConfigError(f"eSpeak could not load voice {name!r}")
    # parameters after the voice: loading a voice resets them
    lib.espeak_SetParameter(espeakRATE, int(rate_wpm), 0)
    lib.espeak_SetParameter(espeakPITCH, int(pitch), 0)
    lib.espeak_SetParameter(espeakRANGE, int(pitch_range), 0)
    lib.espeak_SetParameter(espeakVOLUME, 100, 0)
    if _STATE["srand"] is not None:
        _STATE["srand"](0)
    data = text.encode("utf-8") + b"\0"
    err = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, espeakCHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    if err != EE_OK:
        raise RuntimeError(f"espeak_Synth failed ({err}) for voice {name!r}")
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    chunks.clear()
    return audio.astype(np.int16, copy=False)


def _phonemes_unlocked(lib, name: str, text: str) -> str:
    """eSpeak's own phoneme string for ``text`` (IPA, phonemes separated by ``PHONE_SEPARATOR``, words by spaces).

    ``espeak_TextToPhonemes`` translates one clause per call and advances the text pointer; clauses are joined
    with a space. It is the same translator ``espeak_Synth`` runs, so these are the phonemes that are spoken.
    """
    if lib.espeak_SetVoiceByName(name.encode()) != EE_OK:
        raise ConfigError(f"eSpeak could not load voice {name!r}")
    buffer = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
    cursor = ctypes.c_void_p(ctypes.addressof(buffer))
    mode = espeakPHONEMES_IPA | (ord(PHONE_SEPARATOR) << 8)
    clauses = []
    for _ in range(len(buffer)):  # each call consumes at least one clause; bounded against a stuck pointer
        if not cursor.value:
            break
        result = lib.espeak_TextToPhonemes(ctypes.byref(cursor), espeakCHARS_UTF8, mode)
        if result:
            clauses.append(result.decode("utf-8"))
    return " ".join(c for c in clauses if c)


def _forked(function, *args) -> bytes:
    """Run ``function(*args) -> bytes`` in a forked child so every call starts from the same pristine library state.

    eSpeak keeps hidden synthesis state between utterances (pitch-flutter index, wave phase, filter memories), so
    the same text gives slightly different samples depending on what was spoken (or phonemised) before. The parent
    never synthesises; each child inherits its untouched state, which makes output independent of call order.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's Python stack
        os.close(read_fd)
        status = 0
        try:
            payload = b"\0" + function(*args)
        except BaseException as exc:  # report the message back, not a traceback on stderr
            payload, status = b"\1" + f"{type(exc).__name__}: {exc}".encode(), 1
        try:
            with os.fdopen(write_fd, "wb") as f:
                f.write(payload)
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        payload = f.read()
    os.waitpid(pid, 0)
    if not payload or payload[:1] != b"\0":
        message = payload[1:].decode(errors="replace") or "child process died"
        if message.startswith("ConfigError: "):
            raise ConfigError(message[len("ConfigError: "):])
        raise RuntimeError(f"eSpeak failed: {message}")
    return payload[1:]


def _synth_forked(lib, *args) -> np.ndarray:
    return np.frombuffer(_forked(lambda: _synth_unlocked(lib, *args).tobytes()), dtype=np.int16).copy()


def _voice_with_variant(language: str, variant: str | None) -> str:
    voice = voice_name(language)
    if variant is not None and variant not in available_variants():
        raise ConfigError(f"eSpeak voice variant {variant!r} not found; available: {', '.join(available_variants())}")
    return f"{voice}+{variant}" if variant else voice


class ESpeakSynthesizer:
    """Thread-safe, reproducible text-to-speech with eSpeak NG; every call sets voice and prosody afresh.

    On POSIX each utterance is rendered in a forked child (about 10 ms) so identical arguments give identical
    samples whatever was synthesised before; elsewhere it runs in-process (audible output is the same, but samples
    may differ slightly between runs).
    """

    def __init__(self, isolated: bool | None = None):
        self.lib, self.sample_rate = _library()
        self.isolated = hasattr(os, "fork") if isolated is None else isolated

    def synthesize(
        self, text: str, language: str, variant: str | None = None, rate_wpm: int = 175, pitch: int = 50,
        pitch_range: int = 50,
    ) -> tuple[np.ndarray, int]:
        args = (_voice_with_variant(language, variant), text, rate_wpm, pitch, pitch_range)
        with _LOCK:
            audio = _synth_forked(self.lib, *args) if self.isolated else _synth_unlocked(self.lib, *args)
        return audio, self.sample_rate

    def phonemes(self, text: str, language: str, variant: str | None = None) -> str:
        """eSpeak's own IPA for ``text`` as this voice speaks it: phonemes joined by ``PHONE_SEPARATOR``, words by
        spaces, stress marks included (see :func:`parp.synth.phones.split_phones` for the phone tokens).

        Runs in a forked child like synthesis, so phonemising never changes what is synthesised afterwards.
        """
        args = (self.lib, _voice_with_variant(language, variant), text)
        with _LOCK:
            if self.isolated:
                return _forked(lambda: _phonemes_unlocked(*args).encode("utf-8")).decode("utf-8")
            return _phonemes_unlocked(*args)


__all__ = [
    "ESpeakSynthesizer", "available_languages", "available_variants", "voice_name", "espeak_version",
    "DEFAULT_VARIANTS", "SAMPLE_RATE", "PHONE_SEPARATOR",
]
