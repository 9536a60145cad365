"""Compute bound of each deployment form: GMAC per second of audio by part, and the speed-up they allow.

    python bench/compute_bound.py [--seconds 8]

Parts: the CNN feature encoder (its first convolution apart: int8-static leaves it float32), the positional convolution, the attention projections (q, k, v,
out), the feed-forward network (FFN), attention scores (QK^T and AV, grow with the clip: --seconds), and the
small rest (feature projection, CTC head). Forms: FFN neurons removed (the FFN part shrinks), int8 (a MAC of a
quantized part is counted at 1/4 of a float32 one: AVX-512 VNNI does 64 int8 multiply-adds per instruction where
FMA does 16 float32; nothing else is assumed), int8-static (the CNN's convolutions quantized too). ONNX itself
removes no MAC: whatever it gains over torch is overhead, not compute. The bound is total fp32 MACs / weighted
MACs of the form, i.e. the speed-up if every MAC cost its share of time and nothing else did.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import transformers  # noqa: E402

from parp.models import default_model_path  # noqa: E402

INT8_COST = 0.25
FORMS = [  # (label, FFN fraction removed, linears int8, CNN int8)
    ("dense fp32 (torch or ONNX)", 0.0, False, False), ("int8-dynamic", 0.0, True, False),
    ("int8-static", 0.0, True, True), ("ffn 50 %", 0.5, False, False), ("ffn 50 % + int8-dynamic", 0.5, True, False),
    ("ffn 50 % + int8-static", 0.5, True, True), ("ffn 70 %", 0.7, False, False),
    ("ffn 70 % + int8-dynamic", 0.7, True, False), ("ffn 70 % + int8-static", 0.7, True, True)]


def gmac_per_second(config, seconds: float) -> dict[str, float]:
    """GMAC per second of audio of each part of a wav2vec2-style CTC model."""
    samples = 16000 * seconds
    convs, length, channels = [], samples, 1
    for dim, kernel, stride in zip(config.conv_dim, config.conv_kernel, config.conv_stride):
        length = (length - kernel) // stride + 1
        convs.append(length * dim * channels * kernel)
        channels = dim
    frames, h, layers = length, config.hidden_size, config.num_hidden_layers
    parts = {
        "CNN first conv": convs[0],  # reads the raw waveform: int8-static leaves it in float32
        "CNN": sum(convs[1:]),
        "positional conv": frames * h * (h // config.num_conv_pos_embedding_groups) * config.num_conv_pos_embeddings,
        "attention projections": layers * frames * 4 * h * h,
        "FFN": layers * frames * 2 * h * config.intermediate_size,
        "attention scores": layers * 2 * frames * frames * h,
        "rest (feature projection, CTC head)": frames * (channels * h + h * 32),
    }
    return {k: v / seconds / 1e9 for k, v in parts.items()}


def bound(parts: dict[str, float], ffn_removed: float, linears_int8: bool, cnn_int8: bool) -> float:
    cost = 0.0
    for part, gmac in parts.items():
        if part == "FFN":
            gmac *= 1 - ffn_removed
        quantized = (linears_int8 and part in ("attention projections", "FFN", "rest (feature projection, CTC head)")
                     or cnn_int8 and part == "CNN")
        cost += gmac * (INT8_COST if quantized else 1.0)
    return sum(parts.values()) / cost


def shapes() -> dict[str, transformers.PretrainedConfig]:
    return {"embedded": transformers.AutoConfig.from_pretrained(default_model_path()),
            "wav2vec2-base": transformers.Wav2Vec2Config()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = {}
    for name, config in shapes().items():
        parts = gmac_per_second(config, args.seconds)
        result[name] = {"gmac_per_second": parts, "bounds": {label: bound(parts, *flags) for label, *flags in FORMS}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, r in result.items():
        total = sum(r["gmac_per_second"].values())
        print(f"\n{name} ({args.seconds:g} s clips): {total:.2f} GMAC per second of audio")
        print("| part | GMAC/s | share |\n|---|---:|---:|")
        for part, g in r["gmac_per_second"].items():
            print(f"| {part} | {g:.3f} | {g / total:.0%} |")
        print("\n| form | compute bound (speed-up vs dense fp32) |\n|---|---:|")
        for label, b in r["bounds"].items():
            print(f"| {label} | {b:.2f}x |")


if __name__ == "__main__":
    main()
