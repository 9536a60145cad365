"""GPU figures side by side with their references, in one run (``bench/gpu_check.sh`` calls this).

    python bench/gpu_check.py [--quick] [--device cuda]

* threshold: parp's exact global magnitude mask vs ``torch.nn.utils.prune.global_unstructured`` (same weights,
  same device), wav2vec2-base and -large prunable shapes; goal: base no slower than torch, large <= 60 ms and
  <= 0.5 GB extra device memory;
* mask upkeep: PARP re-prune every 50 steps and fixed-mask re-zeroing vs one CTC step (wav2vec2-base, bf16
  autocast on GPU, AdamW); goal <= 1 % of step time;
* evaluation real-time factor: batched greedy decoding of 8 x 16 s of audio (seconds of compute per second of audio);
* fine-tuning throughput: parp's loop vs a plain transformers loop on the same batches, bf16 autocast on both
  sides on a GPU (``bench/bench_finetune_throughput.py``); goal: ratio >= 0.97.

``--quick`` shrinks every shape so it runs in seconds on a CPU (the test suite runs it that way); its figures
check that the script works, not the goals.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from parp.sparsity import Mask  # noqa: E402
from parp.sparsity.threshold import global_kth_smallest, keep_masks  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(work, device, repeats):
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        work()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def _peak_extra_mb(work, device):
    if device.type != "cuda":
        return float("nan")
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    work()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def _weights(layers, hidden, ffn, device):
    gen = torch.Generator().manual_seed(0)
    shapes = [(hidden, hidden)] * 4 + [(ffn, hidden), (hidden, ffn)]
    return [(torch.randn(s, generator=gen) * 0.02).to(device) for _ in range(layers) for s in shapes]


def threshold_figures(name, layers, hidden, ffn, device, repeats, sparsity=0.5):
    import torch.nn.utils.prune as prune

    weights = _weights(layers, hidden, ffn, device)
    total = sum(w.numel() for w in weights)
    k = round(sparsity * total)

    def ours():
        return keep_masks(weights, global_kth_smallest(weights, k))

    keep = ours()
    pruned = sum(int((~m).sum()) for m in keep)
    del keep
    ours_s = _best(ours, device, repeats)
    ours_mb = _peak_extra_mb(ours, device)

    modules = []
    for w in weights:
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, device=device)
        with torch.no_grad():
            lin.weight.copy_(w)
        modules.append(lin)

    def reference():
        prune.global_unstructured([(m, "weight") for m in modules], pruning_method=prune.L1Unstructured,
                                  amount=sparsity)
        for m in modules:
            prune.remove(m, "weight")

    ref_s = _best(reference, device, 1 if total > 100e6 and device.type == "cpu" else repeats)
    print(f"threshold {name:<5} {total / 1e6:6.1f} M: parp {ours_s * 1000:8.1f} ms, extra {ours_mb:7.1f} MB | "
          f"torch global_unstructured {ref_s * 1000:8.1f} ms | ratio torch/parp {ref_s / ours_s:6.2f} | "
          f"exact: {'OK' if pruned == k else 'MISMATCH'}", flush=True)
    return ours_s, ref_s, pruned == k


def _ctc_model(config_kwargs, device):
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=32, ctc_zero_infinity=True, mask_time_prob=0.0,
                                          **config_kwargs)).to(device)
    model.freeze_feature_encoder()
    return model


def upkeep_figures(config_kwargs, batch, seconds, device, repeats, prune_every=50, sparsity=0.5):
    from parp.methods.hooks import FixedMaskHook, PARPHook
    from parp.sparsity import prunable_parameters
    from parp.training.hooks import LoopState

    model = _ctc_model(config_kwargs, device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    samples = int(16000 * seconds)
    inputs = torch.randn(batch, samples, device=device)
    labels = torch.randint(3, 32, (batch, max(1, samples // 320 // 3)), device=device)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_values=inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    step_s = statistics.median([_best(step, device, 1) for _ in range(repeats)])
    state = LoopState(model=model, accelerator=None, config=None)
    parp = PARPHook(lambda m: Mask.magnitude(prunable_parameters(m), sparsity), prune_every)
    reprune_s = _best(lambda: parp._reprune(state), device, repeats)
    fixed = FixedMaskHook(parp.mask)
    fixed.on_train_begin(state)
    apply_s = _best(lambda: fixed.on_step_end(state), device, repeats)
    print(f"mask upkeep: step {step_s * 1000:.1f} ms ({batch} x {seconds:g} s, {'bf16' if bf16 else 'fp32'}) | "
          f"PARP re-prune {reprune_s * 1000:.1f} ms = {100 * reprune_s / prune_every / step_s:.2f} % of step at "
          f"every {prune_every} | fixed mask {apply_s * 1000:.2f} ms = {100 * apply_s / step_s:.2f} % | goal <= 1 %",
          flush=True)
    return step_s, reprune_s, apply_s


def rtf_figures(config_kwargs, batch, seconds, device, repeats):
    from parp.evaluation.inference import ctc_logits, resolve_precision

    model = _ctc_model(config_kwargs, device).eval()
    dtype = resolve_precision("auto", device)
    values = torch.randn(batch, int(16000 * seconds))
    mask = torch.ones_like(values, dtype=torch.long)
    best = _best(lambda: ctc_logits(model, values, mask, device, dtype), device, repeats)
    print(f"evaluation: {batch} x {seconds:g} s in {best * 1000:.1f} ms ({dtype or torch.float32}) -> real-time "
          f"factor {best / (batch * seconds):.5f} (x{batch * seconds / best:.0f} faster than real time)", flush=True)
    return best / (batch * seconds)


def throughput_figures(device, repeats, quick):
    from bench_finetune_throughput import ThroughputArgs, measure

    figures = measure(ThroughputArgs(device=str(device), repeats=repeats, quick=quick), log=lambda line: None)
    best, args = figures["best"], figures["args"]
    precision = "fp32" if args["precision"] == "no" else args["precision"]
    print(f"finetune throughput ({precision}, {args['steps']} steps x {args['batch_seconds']:g} s batches): "
          f"parp loop {best['parp']:.1f} audio-s/s | plain transformers loop {best['plain']:.1f} audio-s/s | "
          f"ratio parp/plain {figures['ratio_best']:.3f} best, {figures['ratio_median']:.3f} median | "
          f"goal >= {figures['goal']}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="Tiny shapes: seconds on a CPU (checks the script).")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; quick={args.quick}", flush=True)
    if args.quick:
        shapes = [("tiny", 2, 64, 256)]
        model_kwargs = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
        batch, seconds = 2, 1.0
    else:
        shapes = [("base", 12, 768, 3072), ("large", 24, 1024, 4096)]
        model_kwargs, batch, seconds = {}, 8, 16.0
    ok = True
    for shape in shapes:
        ok &= threshold_figures(*shape, device, args.repeats)[2]
    upkeep_figures(model_kwargs, batch, seconds, device, args.repeats)
    rtf_figures(model_kwargs, batch, seconds, device, args.repeats)
    throughput_figures(device, 1 if args.quick else max(2, args.repeats), args.quick)
    print("gpu_check: all masks exact" if ok else "gpu_check: MASK MISMATCH", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
