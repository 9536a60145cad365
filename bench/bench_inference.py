"""Inference speed (real-time factor) and peak memory of dense vs pruned forms, side by side in one run.

    python bench/bench_inference.py [--shapes embedded base large] [--seconds 8] [--batch 1] [--repeats 5] [--threads 1]
        [--device cpu|cuda] [--dtype float32|float16|bfloat16] [--sparsity 0.5]
        [--model LABEL=DIR ...] [--out docs/results/inference]

Shapes: ``embedded`` is parp's own small model (src/parp/assets/parp-ssl-small); ``base`` and ``large`` are
randomly initialised wav2vec2-base / -large shapes (speed does not depend on the weights' values).
Forms of each shape, all from the same weights:

* ``dense``         the unpruned model;
* ``unstructured``  global magnitude mask at --sparsity applied (zeros in dense tensors: what --scope global gives);
* ``ffn``           --sparsity of the feed-forward neurons of every layer removed (--scope ffn, model-compact/);
* ``2:4``           2:4 mask on the encoder linears run through torch's semi-structured sparse kernels
                    (CUDA 8.0+, fp16/bf16 only; elsewhere the row says why it was not run).
* ``[ffnNN-]onnx[-int8-dynamic|-int8-static]``  the deployment forms: exported with ``parp export onnx``'s
                    code and run by onnxruntime on the CPU (NN % of the FFN neurons removed first; int8 linears;
                    int8 linears + statically calibrated int8 feature-encoder convolutions, calibrated on
                    --calibration-utterances of --calibration). ONNX files are cached in --work-dir.

RTF = compute seconds / audio seconds for a batch of --batch utterances of --seconds each, median of --repeats
rounds; the forms take turns within each round, so background load hits them alike. On a GPU, batch 1 of a small
model is bound by kernel launches rather than arithmetic: --batch 16 shows what throughput work sees. Peak memory: on CPU the peak resident
set of a fresh process that builds the form and runs it once (peak reset after the build with Linux
clear_refs), minus its resident set before the build: weights + activations (+ whatever the allocator kept from
building); on GPU the form's own weights plus the peak ``torch.cuda.max_memory_allocated`` rise during one run
(the other forms stay resident while it runs, so the raw peak would count them all). Weights of a 2:4 form count its
packed values and metadata.

``--model LABEL=DIR`` adds real model folders (e.g. ``parp prune`` outputs) in the form ``parp evaluate`` runs
them; when DIR/eval/metrics.json exists (``parp evaluate --model DIR``) its CER goes into the table and the
speed-vs-CER plot. ``--deploy LABEL=DIR`` (trained folders; the first is the reference, dense fp32 torch) times
each folder in torch (its fast form) and as ONNX fp32 / int8-dynamic / int8-static, all in the same rounds, and
scores every form on the --valid-utterances validation utterances of the folder's own training run (greedy CER):
the deployment table and ``deploy_speed_vs_cer.png`` (speed-up vs CER change, one point per form).
Writes ``table.md``, ``results.json`` and (with CER) ``speed_vs_cer.png`` to --out.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import transformers  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

from parp.export.compact import compact_ffn_  # noqa: E402
from parp.export.onnx import (OnnxExportArguments, export_graph, manifest_clips, quantize_model,  # noqa: E402
                              run_export_onnx, validation_clips)
from parp.export.onnx_session import OnnxCTC, import_onnxruntime, session_options  # noqa: E402
from parp.inference import fast_form, semi_structured_unsupported, to_semi_structured_  # noqa: E402
from parp.data.dataset import normalize_waveform  # noqa: E402
from parp.data.text import Vocabulary  # noqa: E402
from parp.evaluation.metrics import error_rates  # noqa: E402
from parp.models import default_model_path  # noqa: E402
from parp.records import read_run  # noqa: E402
from parp.sparsity import magnitude_mask, nm_mask  # noqa: E402
from parp.sparsity.structured import ffn_mask, ffn_parameters  # noqa: E402

SHAPES = ("embedded", "base", "large")
ONNX_FORM = re.compile(r"^(?:ffn(\d+)-)?onnx(?:-(int8-dynamic|int8-static))?$")
ONNX_FORMS = tuple(f"{ffn}onnx{q}" for ffn in ("", "ffn50-", "ffn70-") for q in ("", "-int8-dynamic", "-int8-static"))
TORCH_FORMS = ("dense", "unstructured", "ffn", "2:4")  # the default; the ONNX forms are asked for with --forms
FORMS = (*TORCH_FORMS, *ONNX_FORMS)
QUANTS = ("none", "int8-dynamic", "int8-static")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
             do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)


def build_shape(shape: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if shape == "embedded":
        return transformers.AutoModelForCTC.from_pretrained(default_model_path(), vocab_size=32,
                                                            ignore_mismatched_sizes=True)
    config = transformers.Wav2Vec2Config(vocab_size=32, **(LARGE if shape == "large" else {}))
    return transformers.Wav2Vec2ForCTC(config)


_CALIBRATION: list = []


def onnx_file(args, shape: str, form: str) -> Path:
    """The ONNX file of ``form`` (exported and quantized once, then cached in --work-dir)."""
    ffn, quant = ONNX_FORM.match(form).groups()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / f"{shape}-ffn{ffn or 0}-none.onnx"
    path = work / f"{shape}-ffn{ffn or 0}-{quant or 'none'}.onnx"
    if not fp32.is_file():
        model = build_shape(shape).eval()
        if ffn:
            with torch.no_grad():
                mask = ffn_mask(ffn_parameters(model), int(ffn) / 100)
                mask.apply_(model)
                compact_ffn_(model, mask)
        export_graph(model, fp32, 17, "torchscript")
    if not path.is_file():
        if quant == "int8-static" and not _CALIBRATION:
            _CALIBRATION.extend(manifest_clips(args.calibration, args.calibration_utterances))
        quantize_model(fp32, path, quant, _CALIBRATION)
    return path


def onnx_session(path: Path, threads: int):
    ort = import_onnxruntime()
    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


def build_form(shape: str, form: str, sparsity: float, device, dtype, args=None) -> tuple[object | None, str]:
    """The model in ``form`` on ``device``/``dtype`` (None and the reason when it cannot run here); an ONNX form
    is an onnxruntime session (CPU, float32 input)."""
    if ONNX_FORM.match(form):
        if str(device) != "cpu" or dtype != torch.float32:
            return None, "the ONNX forms run on onnxruntime's CPU provider with float32 input"
        return onnx_session(onnx_file(args, shape, form), args.threads), ""
    model = build_shape(shape).eval()
    with torch.no_grad():
        if form == "unstructured":
            magnitude_mask(model, sparsity).apply_(model)
        elif form == "ffn":
            mask = ffn_mask(ffn_parameters(model), sparsity)
            mask.apply_(model)
            compact_ffn_(model, mask)
        model = model.to(device=device, dtype=dtype)
        if form == "2:4":
            reason = semi_structured_unsupported(device, dtype)
            if reason:
                return None, reason
            if not to_semi_structured_(model, nm_mask(model, 2, 4)):
                return None, "no linear fits the kernels' shapes"
    return model, ""


def forward(model, audio) -> None:
    if not isinstance(model, torch.nn.Module):  # an onnxruntime session
        model.run(None, {"input_values": audio.numpy()})
        return
    with torch.inference_mode():
        model(audio)
    if audio.is_cuda:
        torch.cuda.synchronize()


def time_forms(models: dict, audio, repeats: int) -> dict[str, list[float]]:
    times = {name: [] for name in models}
    for model in models.values():
        forward(model, audio)  # warm-up
    for _ in range(repeats):
        for name, model in models.items():
            t0 = time.perf_counter()
            forward(model, audio)
            times[name].append(time.perf_counter() - t0)
    return times


def weights_mib(model) -> float:
    """Bytes the weights hold: a semi-structured tensor counts its packed values and metadata, not its shape; an
    ONNX form counts its file."""
    if not isinstance(model, torch.nn.Module):
        return Path(model._model_path).stat().st_size / 2**20
    total = 0
    for p in model.parameters():
        data = p.data
        if type(data).__name__.startswith("SparseSemi"):
            total += sum(t.numel() * t.element_size() for t in (getattr(data, k, None) for k in
                         ("packed", "meta", "packed_t", "meta_t", "compressed_swizzled_bitmask"))
                         if isinstance(t, torch.Tensor))
        else:
            total += data.numel() * data.element_size()
    return total / 2**20


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child_peak_memory(args) -> None:
    """--child: build one form, reset the peak RSS, run it once, print the peak (MiB) as JSON."""
    torch.set_num_threads(args.threads)
    audio = torch.randn(args.batch, int(16000 * args.seconds), dtype=DTYPES[args.dtype])
    baseline = _rss_kib("VmRSS")
    if args.child_onnx:
        model, reason = onnx_session(Path(args.child_onnx), args.threads), ""
    elif args.child_torch_dir:
        model, reason = load_fast(Path(args.child_torch_dir), "cpu", torch.float32).model, ""
    else:
        model, reason = build_form(args.shapes[0], args.child, args.sparsity, "cpu", DTYPES[args.dtype], args)
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give the build's freed memory back before measuring
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (Linux >= 4.0)
    except OSError:
        pass
    forward(model, audio)
    print(json.dumps({"peak_mib": (_rss_kib("VmHWM") - baseline) / 1024, "reason": reason}))


def peak_memory_cpu(args, shape: str, form: str, extra: tuple[str, ...] = ()) -> float | None:
    cmd = [sys.executable, __file__, "--child", form, "--shapes", shape, "--threads", str(args.threads),
           "--seconds", str(args.seconds), "--batch", str(args.batch), "--sparsity", str(args.sparsity), "--dtype", args.dtype,
           "--work-dir", args.work_dir, *extra]
    res = subprocess.run(cmd, capture_output=True, text=True)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])["peak_mib"]
    except (IndexError, ValueError, KeyError):
        print(f"  memory of {shape}/{form} not measured: {res.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None


def peak_memory_gpu(model, audio) -> float:
    """The form's weights plus what one run allocates above what was resident before it (other forms included)."""
    torch.cuda.synchronize()
    resident = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    forward(model, audio)
    return weights_mib(model) + (torch.cuda.max_memory_allocated() - resident) / 2**20


def load_fast(directory: Path, device, dtype):
    model = transformers.AutoModelForCTC.from_pretrained(directory).eval().to(device=device, dtype=dtype)
    return fast_form(model, directory)


def _greedy_cer(transcribe, clips, vocabulary) -> float:
    refs = [vocabulary.normalizer(text) for _, _, text in clips]
    return error_rates(refs, [transcribe(samples) for _, samples, _ in clips])["cer"]


def bench_deploy(specs: list[str], args, audio) -> list[dict]:
    """Trained folders in torch (fast form) and as ONNX fp32 / int8: timed in the same rounds, CER on the
    validation utterances of each folder's own training run."""
    runners, info = {}, {}
    for spec in specs:
        label, _, directory = spec.partition("=")
        directory = Path(directory)
        fast = load_fast(directory, "cpu", torch.float32)
        runners[(label, "torch")] = fast.model
        info[(label, "torch")] = {"file_mib": sum(p.stat().st_size for p in directory.glob("*.safetensors")
                                                  if p.name != "mask.safetensors") / 2**20, "dir": directory,
                                  "torch_form": fast.form}
        for quant in QUANTS:
            out = Path(args.work_dir) / f"deploy-{label}-{quant}"
            if not (out / "model.onnx").is_file():
                run_export_onnx(OnnxExportArguments(
                    model_dir=str(directory), output_dir=str(out), quantize=quant, calibration=args.calibration,
                    calibration_utterances=args.calibration_utterances, check_utterances=4))
            runners[(label, f"onnx-{quant}")] = onnx_session(out / "model.onnx", args.threads)
            info[(label, f"onnx-{quant}")] = {"file_mib": (out / "model.onnx").stat().st_size / 2**20, "dir": out}
    times = time_forms(runners, audio, args.repeats)
    rows = []
    for (label, form), runner in runners.items():
        facts = info[(label, form)]
        directory = Path(dict(s.partition("=")[::2] for s in specs)[label])
        run = read_run(directory.parent)
        clips = validation_clips(run.data if run else {}, args.valid_utterances) if args.valid_utterances else []
        if form == "torch":
            vocabulary = Vocabulary.load(directory)

            def transcribe(samples, model=runner):
                with torch.inference_mode():
                    logits = model(torch.from_numpy(normalize_waveform(samples))[None]).logits[0]
                return vocabulary.decode_ids(logits.argmax(-1).numpy())
            cer = _greedy_cer(transcribe, clips, vocabulary) if clips else None
            child = ("--child-torch-dir", str(directory))
        else:
            onnx = OnnxCTC(facts["dir"], threads=args.threads)
            cer = _greedy_cer(onnx.transcribe, clips, onnx.vocabulary) if clips else None
            child = ("--child-onnx", str(facts["dir"] / "model.onnx"))
        rows.append({"model": label, "form": form if form != "torch" else f"torch fp32 ({facts['torch_form']})",
                     "rtf": statistics.median(times[(label, form)]) / audio_seconds(args),
                     "file_mib": facts["file_mib"], "cer": cer, "valid_utterances": len(clips),
                     "peak_mib": None if args.no_memory else peak_memory_cpu(args, "embedded", "dense", child)})
    reference = rows[0]
    for row in rows:
        row["speedup"] = reference["rtf"] / row["rtf"]
        row["file_ratio"] = row["file_mib"] / reference["file_mib"]
        row["cer_change"] = None if row["cer"] is None or reference["cer"] is None else row["cer"] - reference["cer"]
    return rows


def write_deploy_table(rows: list[dict], meta: dict, out: Path) -> str:
    lines = ["", f"Deployment forms of trained folders (reference: {rows[0]['model']}, {rows[0]['form']}); CER on the "
             f"validation utterances of each folder's training run; {meta['threads']} thread(s).", "",
             "| model | form | RTF | speed-up | file MiB | file vs ref | peak MiB | CER | CER change |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cer = "" if r["cer"] is None else f"{r['cer']:.4f}"
        change = "" if r["cer_change"] is None else f"{r['cer_change']:+.4f}"
        peak = "n/a" if r.get("peak_mib") is None else f"{r['peak_mib']:.0f}"
        lines.append(f"| {r['model']} | {r['form']} | {r['rtf']:.4f} | {r['speedup']:.2f}x | {r['file_mib']:.1f} | "
                     f"{r['file_ratio']:.2f}x | {peak} | {cer} | {change} |")
    return "\n".join(lines) + "\n"


def _pyplot():
    """matplotlib's pyplot on the file backend, imported only when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_deploy(rows: list[dict], out: Path) -> Path | None:
    points = [r for r in rows if r["cer_change"] is not None]
    if not points:
        return None
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(7, 5))
    models = list(dict.fromkeys(r["model"] for r in points))
    forms = list(dict.fromkeys("torch fp32" if r["form"].startswith("torch") else r["form"] for r in points))
    colors = {m: f"C{i}" for i, m in enumerate(models)}
    markers = dict(zip(forms, "osD^v<>p*"))
    for r in points:  # colour: the model folder; marker: the form (a legend, no labels on top of each other)
        form = "torch fp32" if r["form"].startswith("torch") else r["form"]
        ax.scatter(r["speedup"], r["cer_change"], color=colors[r["model"]], marker=markers[form], s=60,
                   edgecolors="black", linewidths=0.5)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[m], marker="o", ls="", label=m) for m in models]
    handles += [Line2D([], [], color="gray", marker=markers[f], ls="", label=f.replace("onnx-none", "onnx fp32"))
                for f in forms]
    handles.append(ax.axhline(0.03, color="red", lw=0.8, ls="--", label="CER goal: within +0.03"))
    handles.append(ax.axvline(1.5, color="gray", lw=0.8, ls=":", label="speed goal: 1.5x"))
    ax.margins(x=0.1, y=0.2)
    ax.set_xlabel(f"speed-up vs {rows[0]['model']} torch fp32 (RTF ratio, 8 s clip)")
    ax.set_ylabel("validation CER change vs the same reference")
    ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "deploy_speed_vs_cer.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bench_folders(specs: list[str], args, device, dtype, audio) -> list[dict]:
    """Every folder as saved and in its fast form, all timed in the same rounds (load hits them alike)."""
    forms, found = {}, []
    for spec in specs:
        label, _, directory = spec.partition("=")
        directory = Path(directory)
        model = transformers.AutoModelForCTC.from_pretrained(directory).eval().to(device=device, dtype=dtype)
        fast = fast_form(model, directory)
        forms[(label, "as saved")] = transformers.AutoModelForCTC.from_pretrained(directory).eval().to(
            device=device, dtype=dtype)
        forms[(label, "fast")] = fast.model
        found.append((label, directory, fast))
    times = time_forms(forms, audio, args.repeats)
    rows = []
    for label, directory, fast in found:
        metrics = directory / "eval" / "metrics.json"
        cer = json.loads(metrics.read_text())["cer"] if metrics.is_file() else None
        rows.append({"model": label, "form": fast.form, "note": fast.note, "cer": cer,
                     "rtf": statistics.median(times[(label, "fast")]) / audio_seconds(args),
                     "rtf_as_saved": statistics.median(times[(label, "as saved")]) / audio_seconds(args),
                     "weights_mib": weights_mib(fast.model)})
    return rows


def audio_seconds(args) -> float:
    return args.seconds * args.batch


def write_table(rows: list[dict], folder_rows: list[dict], meta: dict, out: Path) -> str:
    lines = [f"Inference on {meta['device_name']}, {meta['dtype']}, {meta['threads']} CPU thread(s), "
             f"{meta.get('batch', 1)} utterance(s) of {meta['seconds']:g} s per batch, median of {meta['repeats']} rounds; sparsity {meta['sparsity']:g}."
             f" Command: `{meta['command']}`", "",
             "| shape | form | weights MiB | RTF | speed-up vs dense | " + ("peak GPU memory MiB (weights + run) |"
             if str(meta["device"]).startswith("cuda") else "peak memory MiB (above interpreter) |"),
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("skipped"):
            lines.append(f"| {r['shape']} | {r['form']} | | not run: {r['skipped']} | | |")
            continue
        mem = f"{r['peak_mib']:.0f}" if r.get("peak_mib") is not None else "n/a"
        lines.append(f"| {r['shape']} | {r['form']} | {r['weights_mib']:.0f} | {r['rtf']:.3g} | "
                     f"{r['speedup']:.2f}x | {mem} |")
    if folder_rows:
        lines += ["", "| model folder | fast form | RTF (fast) | RTF (as saved) | CER |", "|---|---|---:|---:|---:|"]
        for r in folder_rows:
            cer = "" if r["cer"] is None else f"{r['cer']:.4f}"
            lines.append(f"| {r['model']} | {r['form']} | {r['rtf']:.4f} | {r['rtf_as_saved']:.4f} | {cer} |")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text, encoding="utf-8")
    return text


def plot_speed_vs_cer(folder_rows: list[dict], out: Path) -> Path | None:
    points = [r for r in folder_rows if r["cer"] is not None]
    if not points:
        return None
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(5, 4))
    for r in points:
        ax.scatter(r["rtf"], r["cer"])
        ax.annotate(f"{r['model']} ({r['form']})", (r["rtf"], r["cer"]), fontsize=8)
    ax.margins(x=0.35, y=0.15)  # room for the labels beside the points
    ax.set_xlabel("real-time factor (lower is faster)")
    ax.set_ylabel("CER")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "speed_vs_cer.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    ap.add_argument("--forms", nargs="+", default=list(TORCH_FORMS), choices=FORMS)
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the utterance")
    ap.add_argument("--batch", type=int, default=1, help="utterances per forward pass")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=list(DTYPES))
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=DIR", help="a model folder to add")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-form peak memory processes (CPU)")
    ap.add_argument("--out", default="docs/results/inference")
    ap.add_argument("--deploy", action="append", default=[], metavar="LABEL=DIR",
                    help="a trained folder to time and score in torch and as ONNX fp32 / int8 (first: reference)")
    ap.add_argument("--calibration", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mboshi"
                                                 / "train.tsv"), help="manifest calibrating int8-static")
    ap.add_argument("--calibration-utterances", type=int, default=32)
    ap.add_argument("--valid-utterances", type=int, default=150, help="validation utterances scored per form (0: no CER)")
    ap.add_argument("--work-dir", default="runs/bench-onnx", help="cache of the exported ONNX files")
    ap.add_argument("--child", choices=FORMS, help=argparse.SUPPRESS)
    ap.add_argument("--child-onnx", help=argparse.SUPPRESS)
    ap.add_argument("--child-torch-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_peak_memory(args)
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    audio = torch.randn(args.batch, int(16000 * args.seconds), device=device, dtype=dtype)
    meta = {"device": str(device), "dtype": args.dtype, "threads": args.threads, "seconds": args.seconds,
            "batch": args.batch, "repeats": args.repeats, "sparsity": args.sparsity, "torch": torch.__version__,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
            "load_average": os.getloadavg(), "command": "python " + " ".join(sys.argv)}
    rows = []
    for shape in args.shapes:
        models, shape_rows = {}, {}
        for form in args.forms:
            model, reason = build_form(shape, form, args.sparsity, device, dtype, args)
            if model is None:
                shape_rows[form] = {"shape": shape, "form": form, "skipped": reason}
                continue
            models[form] = model
            shape_rows[form] = {"shape": shape, "form": form, "weights_mib": weights_mib(model),
                                "params_m": sum(p.numel() for p in model.parameters()) / 1e6
                                if isinstance(model, torch.nn.Module) else None}
        times = time_forms(models, audio, args.repeats)
        dense_rtf = statistics.median(times["dense"]) / audio_seconds(args) if "dense" in times else None
        for form, seconds in times.items():
            row = shape_rows[form]
            row["rtf"] = statistics.median(seconds) / audio_seconds(args)
            row["rtf_all"] = [s / audio_seconds(args) for s in seconds]
            row["speedup"] = dense_rtf / row["rtf"] if dense_rtf else float("nan")
            if device.type == "cuda":
                row["peak_mib"] = peak_memory_gpu(models[form], audio)
        del models
        gc.collect()
        if device.type == "cpu" and not args.no_memory:
            for form, row in shape_rows.items():
                if not row.get("skipped"):
                    row["peak_mib"] = peak_memory_cpu(args, shape, form)
        for row in shape_rows.values():
            rows.append(row)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                              if k != "rtf_all"}), flush=True)
    folder_rows = bench_folders(args.model, args, device, dtype, audio) if args.model else []
    for row in folder_rows:
        print(json.dumps(row), flush=True)
    deploy_rows = bench_deploy(args.deploy, args, audio) if args.deploy else []
    meta["load_average_end"] = os.getloadavg()
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows, "models": folder_rows,
                                                  "deploy": deploy_rows}, indent=2))
    print(write_table(rows, folder_rows, meta, out))
    if deploy_rows:
        text = write_deploy_table(deploy_rows, meta, out)
        with open(out / "table.md", "a", encoding="utf-8") as f:
            f.write(text)
        print(text)
    for plot in (plot_speed_vs_cer(folder_rows, out), plot_deploy(deploy_rows, out) if deploy_rows else None):
        if plot:
            print(f"plot: {plot}")


if __name__ == "__main__":
    main()
