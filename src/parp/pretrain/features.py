"""The audio side of BEST-RQ: stacked log-mel frames, one per 20 ms model frame, and the frozen random-projection
quantizer that turns them into codeword targets (Chiu et al. 2022); plus how many CNN frames a clip gives."""

from __future__ import annotations

import math

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import Wav2Vec2Config


def mel_filterbank(n_mels: int, n_fft: int, sampling_rate: int, f_min: float = 0.0, f_max: float | None = None):
    """HTK-scale triangular mel filters, shape ``(n_fft // 2 + 1, n_mels)`` (torchaudio is not a dependency)."""
    f_max = f_max or sampling_rate / 2

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    bins = np.linspace(0.0, sampling_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower[None]) / (centre - lower)[None]
    falling = (upper[None] - bins[:, None]) / (upper - centre)[None]
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


class StackedLogMel:
    """80-mel log energies every 10 ms, two frames stacked -> one 160-d vector per 20 ms model frame.

    The waveform is padded by one hop at the end so there is a feature frame for every CNN frame
    (the CNN's receptive field is 400 samples with stride 320; the stacked frame i spans samples
    [320 i, 320 i + 560)). Features are mean/variance normalised per utterance and dimension, as BEST-RQ
    normalises its inputs before the random projection.
    """

    def __init__(self, sampling_rate: int = 16000, n_mels: int = 80, stack: int = 2, win_ms: float = 25.0):
        self.hop = sampling_rate // 100
        self.win = int(round(sampling_rate * win_ms / 1000))
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.stack = stack
        self.dim = n_mels * stack
        self.window = torch.hann_window(self.win)
        self.filters = torch.from_numpy(mel_filterbank(n_mels, self.n_fft, sampling_rate))

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        # torch.stft centres the 400-sample window in each 512-sample FFT frame: pad so window i starts at
        # sample 160 i, plus one hop at the end so every CNN frame gets a stacked feature frame.
        side = (self.n_fft - self.win) // 2
        wave = torch.nn.functional.pad(wave.float(), (side, side + self.hop))
        if wave.numel() < self.n_fft:
            wave = torch.nn.functional.pad(wave, (0, self.n_fft - wave.numel()))
        spec = torch.stft(
            wave, self.n_fft, self.hop, self.win, self.window, center=False, return_complex=True
        ).abs().pow(2)
        mel = torch.log(spec.T @ self.filters + 1e-6)  # (frames, n_mels)
        frames = mel.shape[0] // self.stack
        stacked = mel[: frames * self.stack].reshape(frames, self.dim)
        mean = stacked.mean(0, keepdim=True)
        std = stacked.std(0, keepdim=True, unbiased=False) if frames > 1 else torch.ones_like(mean)
        return (stacked - mean) / (std + 1e-5)


class RandomProjectionQuantizer(nn.Module):
    """BEST-RQ target generator: frozen Xavier projection + frozen unit-norm random codebooks.

    Everything is drawn from ``seed`` on a private generator, so the same seed always gives the same targets;
    ``save``/``load`` store the tensors too so a run can be reproduced even if torch's RNG changes.
    """

    def __init__(self, input_dim: int, codebook_size: int = 1024, codebook_dim: int = 16, num_codebooks: int = 1,
                 seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        bound = math.sqrt(6.0 / (input_dim + codebook_dim))
        projection = (torch.rand(num_codebooks, input_dim, codebook_dim, generator=generator) * 2 - 1) * bound
        codebooks = torch.randn(num_codebooks, codebook_size, codebook_dim, generator=generator)
        self.register_buffer("projection", projection)
        self.register_buffer("codebooks", nn.functional.normalize(codebooks, dim=-1))
        self.seed = seed

    @property
    def num_codebooks(self) -> int:
        return self.codebooks.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.codebooks.shape[1]

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(frames, input_dim)`` features -> ``(frames, num_codebooks)`` codeword ids (nearest by cosine)."""
        projected = nn.functional.normalize(torch.einsum("td,kde->kte", features, self.projection), dim=-1)
        return torch.einsum("kte,kve->ktv", projected, self.codebooks).argmax(-1).T.contiguous()

    def save(self, path) -> None:
        save_file({"projection": self.projection, "codebooks": self.codebooks}, str(path),
                  metadata={"seed": str(self.seed)})

    @classmethod
    def load(cls, path) -> "RandomProjectionQuantizer":
        tensors = load_file(str(path))
        k, d, e = tensors["projection"].shape
        quantizer = cls(d, tensors["codebooks"].shape[1], e, k, seed=0)
        quantizer.projection.copy_(tensors["projection"])
        quantizer.codebooks.copy_(tensors["codebooks"])
        return quantizer


def frame_lengths(config: Wav2Vec2Config, samples: torch.Tensor) -> torch.Tensor:
    """Number of CNN output frames for ``samples`` input samples (same rule as the model's own)."""
    lengths = samples.clone()
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    return lengths.clamp(min=0)
