"""``parp export onnx``: a CTC model folder as ``model.onnx`` (+ vocabulary, feature settings, model card) that
onnxruntime runs without torch, optionally int8, checked against torch before it is handed over.

* Input: ``model/`` of ``parp finetune`` / ``prune`` (a ``--scope ffn`` mask is applied and its neurons removed,
  as ``parp evaluate`` runs it), ``model-compact/``, or any plain Hugging Face CTC folder with ``vocab.json``.
* Exporter: torch 2.13 has two. ``torchscript`` (``dynamo=False``, deprecated but present) exported the four
  supported families with logits within 1e-6 of torch at every tested length in 2-7 s on the shared 2-core CPU;
  ``dynamo`` (``torch.export`` + onnxscript, the default of ``torch.onnx.export``) gives the same logits but took
  30-90 s per tiny model there, so it is the option and TorchScript the default.
* int8 (onnxruntime.quantization's own tools): ``int8-dynamic`` quantizes the weights of every linear (MatMul /
  Gemm) with activations quantized on the fly; ``int8-static`` does that too and quantizes the feature
  encoder's convolutions statically (all but the first, which reads the raw waveform), their activation ranges
  calibrated on ``--calibration`` utterances.
* The self-check runs torch and onnxruntime on the same utterances and records the largest logit difference, how
  many greedy transcripts agree, and (with transcripts) the CER of both: the card's "accuracy change".

onnx / onnxruntime are imported only here and only when exporting (``pip install 'parp[onnx]'``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.arguments import DataArguments, load_utterances
from ..data.audio import load_audio
from ..data.dataset import normalize_waveform
from ..data.manifest import read_manifest
from ..data.text import Vocabulary
from ..errors import ConfigError, ModelError, ParpError
from ..models import load_finetuned_model
from ..records import RunRecord, read_run
from ..sparsity.mask import Mask
from .card import _command, write_model_card
from .compact import compact_if_ffn_
from .onnx_session import FEATURES_FILE, ONNX_FILE, OnnxCTC, import_onnxruntime

SUPPORTED_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
QUANTIZE = ("none", "int8-dynamic", "int8-static")
EXPORTERS = ("torchscript", "dynamo")
LINEAR_OPS = ["MatMul", "Gemm"]
COPIED_FILES = ("vocab.json", "parp_text.json", "tokenizer_config.json", "special_tokens_map.json", "sparsity.json")


@dataclass
class OnnxExportArguments:
    model_dir: str = field(default="", metadata={
        "positional": True, "help": "Model folder: model/ or model-compact/ of parp finetune / prune, or a plain HF "
                                    "CTC folder with vocab.json."})
    output_dir: str | None = field(default=None, metadata={"help": "Where model.onnx, vocab and card go."})
    quantize: str = field(default="none", metadata={
        "help": "none | int8-dynamic (linears) | int8-static (linears, plus the feature-encoder convolutions "
                "calibrated on --calibration)."})
    calibration: str | None = field(default=None, metadata={
        "help": "Manifest (TSV/CSV) whose audio calibrates int8-static; also the self-check's default audio."})
    calibration_utterances: int = field(default=200, metadata={
        "help": "Utterances of --calibration used, spread evenly over the manifest."})
    check_manifest: str | None = field(default=None, metadata={
        "help": "Manifest for the self-check (default: --calibration, else the run's validation utterances)."})
    check_utterances: int = field(default=16, metadata={"help": "Utterances the self-check decodes both ways."})
    opset: int = field(default=17, metadata={"help": "ONNX opset of the exported graph."})
    exporter: str = field(default="torchscript", metadata={"help": "torchscript | dynamo (torch.export)."})


@dataclass
class ExportSource:
    """A model folder ready to export: the model in the form it runs (neurons removed), its vocabulary, and
    what the card says about it."""

    model: nn.Module
    vocabulary: Vocabulary
    folder: Path
    form: str  # "dense" | "ffn-compact" | "masked"
    record: dict
    sparsity: dict[str, float] | None


class _Logits(nn.Module):
    """The exported graph: raw (normalised) samples in, CTC logits out."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.model(input_values).logits


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def load_source(model_dir: str) -> ExportSource:
    """Load ``model_dir`` for export, refusing (one line) what is not a supported CTC folder."""
    folder = Path(model_dir)
    if not model_dir:
        raise ConfigError("give the model folder to export: parp export onnx MODEL_DIR --output-dir OUT")
    if not folder.is_dir():
        raise ModelError(f"{model_dir}: no such model folder")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{model_dir}: not a model folder (no config.json)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{config_file}: not valid JSON ({_first_line(exc)})") from None
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_TYPES:
        raise ModelError(f"{model_dir}: architecture {model_type!r} is not supported by parp export onnx "
                         f"(supported: {', '.join(SUPPORTED_TYPES)})")
    architectures = config.get("architectures") or []
    if not any(str(a).endswith("ForCTC") for a in architectures):
        raise ModelError(f"{model_dir}: not a CTC model (its config.json names {architectures or 'no class'}); "
                         "export a folder written by parp finetune / prune")
    if not (folder / "vocab.json").is_file():
        raise ModelError(f"{model_dir}: no vocab.json, so its outputs cannot be decoded; export a folder written "
                         "by parp finetune / prune")
    vocabulary = Vocabulary.load(folder)
    model = load_finetuned_model(folder)
    if model.config.vocab_size != len(vocabulary):
        raise ModelError(f"{model_dir}: the CTC head has {model.config.vocab_size} outputs but vocab.json has "
                         f"{len(vocabulary)} tokens")
    form = "dense"
    mask_file = folder / "mask.safetensors"
    if mask_file.is_file():
        mask = Mask.load(mask_file)
        mask.check_compatible(model)
        compact = compact_if_ffn_(model, mask) if mask.num_pruned() else None
        if compact is not None:
            model, form = compact, "ffn-compact"
        elif mask.num_pruned():
            mask.apply_(model)
            form = "masked"
    run = read_run(folder.parent)  # parp writes run.json beside model/ and model-compact/
    record = run.data if run is not None else {}
    metrics = record.get("metrics") or {}
    sparsity = None
    if "sparsity_achieved" in metrics:
        sparsity = {"target": metrics.get("sparsity_target"), "achieved": metrics["sparsity_achieved"]}
    return ExportSource(model.eval(), vocabulary, folder, form, record, sparsity)


def feature_settings(folder: Path) -> dict:
    """The feature extractor's settings (sampling rate, per-utterance normalisation) of a model folder: its own
    preprocessor_config.json, or the ``feature_extractor`` section of transformers 5's processor_config.json."""
    for name, key in ((FEATURES_FILE, None), ("processor_config.json", "feature_extractor")):
        path = folder / name
        if path.is_file():
            settings = json.loads(path.read_text(encoding="utf-8"))
            settings = settings.get(key, {}) if key else settings
            if settings:
                return settings
    return {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "sampling_rate": 16000, "do_normalize": True}


def export_graph(model: nn.Module, path: Path, opset: int, exporter: str) -> None:
    """Write ``model`` (eval mode) as ONNX with dynamic batch and time axes."""
    wrapper = _Logits(model).eval()
    example = torch.zeros(1, 16000)
    try:
        if exporter == "dynamo":
            dynamic = torch.export.Dim.DYNAMIC
            torch.onnx.export(wrapper, (example,), str(path), input_names=["input_values"], output_names=["logits"],
                              dynamo=True, opset_version=opset, external_data=False, verbose=False,
                              dynamic_shapes={"input_values": {0: dynamic, 1: dynamic}})
        else:
            import warnings

            with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer warnings
                warnings.simplefilter("ignore")
                torch.onnx.export(wrapper, (example,), str(path), input_names=["input_values"],
                                  output_names=["logits"], dynamo=False, opset_version=opset,
                                  dynamic_axes={"input_values": {0: "batch", 1: "samples"},
                                                "logits": {0: "batch", 1: "frames"}})
    except ParpError:
        raise
    except Exception as exc:  # the exporters raise many types (OnnxExporterError, RuntimeError, ValueError, ...)
        raise ModelError(f"--opset {opset} / --exporter {exporter}: torch.onnx.export failed "
                         f"({_first_line(exc)}); opsets 14-20 are supported by the TorchScript exporter") from None


def _evenly(items: list, n: int) -> list:
    if n <= 0 or n >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def manifest_clips(manifest: str, n: int) -> list[tuple[str, np.ndarray, str | None]]:
    """(path, samples at 16 kHz, transcript) of ``n`` utterances spread evenly over ``manifest``; unreadable
    audio is skipped."""
    clips = []
    for utterance in _evenly(read_manifest(manifest), n):
        try:
            samples = utterance.audio if getattr(utterance, "audio", None) is not None else load_audio(utterance.path)
        except ParpError:
            continue
        clips.append((utterance.path, samples, utterance.text))
    if not clips:
        raise ConfigError(f"{manifest}: none of its audio could be read")
    return clips


def validation_clips(record: dict, n: int) -> list[tuple[str, np.ndarray, str | None]]:
    """The training run's own validation utterances (the ones its card's metrics come from), if they load."""
    data = (record.get("arguments") or {}).get("data") or {}
    names = {f.name for f in dataclasses.fields(DataArguments)}
    try:
        _, valid, _ = load_utterances(DataArguments(**{k: v for k, v in data.items() if k in names}))
    except (ParpError, OSError, TypeError):
        return []
    clips = []
    for utterance in _evenly(valid, n):
        try:
            samples = utterance.audio if getattr(utterance, "audio", None) is not None else load_audio(utterance.path)
        except ParpError:
            continue
        clips.append((utterance.path, samples, utterance.text))
    return clips


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol: one utterance per call, then None."""

    def __init__(self, clips):
        self._items = iter([{"input_values": normalize_waveform(samples)[None]} for _, samples, _ in clips])

    def get_next(self):
        return next(self._items, None)

    def rewind(self):  # some onnxruntime versions call it
        pass


def feature_encoder_convs(path: Path) -> list[str]:
    """Names of the Conv nodes of the CNN feature encoder that int8 can take: all but the first (and not the
    positional convolution). The first one reads the raw waveform, which 8 bits cannot carry: quantizing it alone
    moved the embedded model's logits by up to 16 (any other single conv: 0.17-0.87) and broke every transcript,
    for ~0.2-2 % of the CNN's MACs (one input channel)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "Conv" and any(
        "feature_extractor" in s or "conv_layers" in s for s in (n.name, *n.input))][1:]


def quantize_model(src: Path, dst: Path, mode: str, calibration=None) -> dict:
    """int8 with onnxruntime.quantization: linears dynamically; with ``int8-static`` the feature-encoder convs
    statically first (calibrated on ``calibration`` clips). Returns what was quantized."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    facts: dict = {"mode": mode}
    logging.disable(logging.WARNING)  # onnxruntime.quantization's "consider pre-processing" advice on the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = src
            if mode == "int8-static":
                convs = feature_encoder_convs(src)
                if not convs:
                    raise ModelError(f"{src}: no feature-encoder convolutions found to quantize statically")
                source = Path(tmp) / "convs-int8.onnx"
                quantize_static(str(src), str(source), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                                op_types_to_quantize=["Conv"], nodes_to_quantize=convs, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax)
                facts.update(static_convs=len(convs), calibration_utterances=len(calibration))
            quantize_dynamic(str(source), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=LINEAR_OPS)
    finally:
        logging.disable(logging.NOTSET)
    return facts


def check_export(model: nn.Module, folder: Path, clips) -> dict:
    """Torch vs onnxruntime on the same clips: largest logit difference, agreeing greedy transcripts, and CER of
    both against the transcripts when the clips have them."""
    import jiwer

    runner = OnnxCTC(folder)
    max_diff, agree, refs, torch_hyps, onnx_hyps = 0.0, 0, [], [], []
    for _, samples, text in clips:
        with torch.inference_mode():
            reference = model(torch.from_numpy(normalize_waveform(samples))[None]).logits[0].float().numpy()
        got = runner.logits(samples)
        if got.shape != reference.shape:
            raise ModelError(f"{folder / ONNX_FILE}: logits of shape {got.shape}, torch gives {reference.shape}")
        max_diff = max(max_diff, float(np.abs(got - reference).max()))
        torch_text = runner.vocabulary.decode_ids(reference.argmax(-1))
        onnx_text = runner.vocabulary.decode_ids(got.argmax(-1))
        agree += torch_text == onnx_text
        if text is not None and runner.vocabulary.normalizer(text).strip():
            refs.append(runner.vocabulary.normalizer(text))
            torch_hyps.append(torch_text)
            onnx_hyps.append(onnx_text)
    result = {"utterances": len(clips), "max_abs_logit_diff": max_diff, "transcripts_identical": agree}
    if refs:
        result.update(scored=len(refs), cer_torch=float(jiwer.cer(refs, torch_hyps)),
                      cer_onnx=float(jiwer.cer(refs, onnx_hyps)))
        result["cer_change"] = result["cer_onnx"] - result["cer_torch"]
    return result


def _mib(path: Path) -> float:
    return path.stat().st_size / 2**20


def _torch_weights_mib(model: nn.Module) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def _card_section(args: OnnxExportArguments, source: ExportSource, facts: dict, check: dict, clips_from: str) -> str:
    quant = {"none": "none (float32)", "int8-dynamic": "int8: weights of every linear (MatMul/Gemm), activations "
             "quantized on the fly (onnxruntime quantize_dynamic)",
             "int8-static": f"int8: linears as int8-dynamic, plus the {facts.get('static_convs', '?')} feature-encoder "
             f"convolutions statically (QDQ, per channel; ranges calibrated on {facts.get('calibration_utterances', '?')} "
             f"utterances of {args.calibration})"}[args.quantize]
    accuracy = (f"CER {check['cer_torch']:.4f} (torch fp32) -> {check['cer_onnx']:.4f} (this file): "
                f"{check['cer_change']:+.4f} on {check['scored']} utterances" if "cer_torch" in check
                else "not measured (no transcribed audio given: --check-manifest)")
    rows = [("format", f"ONNX opset {args.opset} ({args.exporter} exporter), inputs `input_values` [batch, samples] "
             "float32, normalised per utterance; output `logits` [batch, frames, vocabulary]; batch and time dynamic"),
            ("form", {"dense": "dense", "masked": "masked (zeros in dense tensors: no faster)",
                      "ffn-compact": f"pruned feed-forward neurons removed (intermediate_size "
                                     f"{getattr(source.model.config, 'intermediate_size', '?')})"}[source.form]),
            ("quantization", quant),
            ("file size", f"{facts['onnx_mib']:.2f} MiB (torch float32 weights of the same form: "
                          f"{facts['torch_mib']:.2f} MiB)"),
            ("self-check", f"{check['utterances']} utterances ({clips_from}): max abs logit difference "
                           f"{check['max_abs_logit_diff']:.3g}, greedy transcripts identical "
                           f"{check['transcripts_identical']} / {check['utterances']}"),
            ("accuracy change", accuracy)]
    table = "\n".join(["| | |", "|---|---|"] + [f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows])
    command = _command({"command": "onnx", "arguments": {"onnxexport": dataclasses.asdict(args)}},
                       [OnnxExportArguments]).replace("parp onnx", "parp export onnx", 1)
    return f"## ONNX export\n\n{table}\n\nExported with\n\n```bash\n{command}\n```"


ONNX_USAGE = ("Runs with onnxruntime alone (no torch, no parp): `pip install onnxruntime numpy soundfile`, then "
              "the snippet in parp's docs/onnx.md, or `parp transcribe --backend onnx THIS_FOLDER audio.wav`.")


def run_export_onnx(args: OnnxExportArguments) -> dict:
    """Export, quantize if asked, check against torch, write the card; returns the summary."""
    if args.quantize not in QUANTIZE:
        raise ConfigError(f"--quantize must be one of {', '.join(QUANTIZE)}, got {args.quantize!r}")
    if args.exporter not in EXPORTERS:
        raise ConfigError(f"--exporter must be one of {', '.join(EXPORTERS)}, got {args.exporter!r}")
    if not args.output_dir:
        raise ConfigError("--output-dir is required: the folder model.onnx goes to")
    if args.quantize == "int8-static" and not args.calibration:
        raise ConfigError("--quantize int8-static needs --calibration MANIFEST: audio to calibrate the "
                          "convolutions' activation ranges on")
    for flag, manifest in (("--calibration", args.calibration), ("--check-manifest", args.check_manifest)):
        if manifest and not Path(manifest).is_file():
            raise ConfigError(f"{flag} {manifest}: no such manifest file")
    if args.calibration_utterances < 1 or args.check_utterances < 1:
        raise ConfigError("--calibration-utterances and --check-utterances must be at least 1")
    ort = import_onnxruntime()
    source = load_source(args.model_dir)
    out = Path(args.output_dir)
    if out.resolve() == source.folder.resolve():
        raise ConfigError(f"--output-dir {out}: choose another folder than the model's own")
    out.mkdir(parents=True, exist_ok=True)
    record = RunRecord(out / "run.json", "export onnx", args)
    record.update("source", {"model_dir": str(source.folder), "form": source.form, "model_type":
                             source.model.config.model_type})
    calibration = manifest_clips(args.calibration, args.calibration_utterances) if args.calibration else None
    with record.phase("export") as phase:
        fp32 = out / (ONNX_FILE if args.quantize == "none" else "model.fp32.onnx")
        export_graph(source.model, fp32, args.opset, args.exporter)
        phase.update(opset=args.opset, exporter=args.exporter, torch=torch.__version__, onnxruntime=ort.__version__)
    for name in COPIED_FILES:
        if (source.folder / name).is_file():
            shutil.copyfile(source.folder / name, out / name)
    settings = feature_settings(source.folder)
    if int(settings.get("sampling_rate", 16000)) != 16000:
        raise ModelError(f"{source.folder}: sampling rate {settings['sampling_rate']} Hz; parp's decoders feed 16 kHz")
    (out / FEATURES_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    facts: dict = {"mode": "none"}
    if args.quantize != "none":
        with record.phase("quantize") as phase:
            facts = quantize_model(fp32, out / ONNX_FILE, args.quantize, calibration)
            fp32.unlink()
            phase.update(**facts)
    facts.update(onnx_mib=_mib(out / ONNX_FILE), torch_mib=_torch_weights_mib(source.model))
    if args.check_manifest:
        clips, clips_from = manifest_clips(args.check_manifest, args.check_utterances), args.check_manifest
    elif calibration:
        clips, clips_from = calibration[: args.check_utterances], f"{args.calibration}, also used for calibration"
    else:
        clips = validation_clips(source.record, args.check_utterances)
        clips_from = "the training run's validation utterances"
        if not clips:
            rng = np.random.default_rng(0)
            clips = [(f"noise-{i}", rng.standard_normal(16000 * (i + 1)).astype(np.float32), None) for i in range(3)]
            clips_from = "random noise: no transcribed audio found; give --check-manifest"
    with record.phase("check") as phase:
        check = check_export(source.model, out, clips)
        phase.update(**check, clips_from=clips_from)
    metrics = (source.record.get("metrics") or {}).get("final") or {}
    write_model_card(out, source.record, metrics, source.sparsity,
                     usage=ONNX_USAGE, extra=_card_section(args, source, facts, check, clips_from))
    summary = {"output_dir": str(out), "form": source.form, "quantize": args.quantize,
               "onnx_mib": round(facts["onnx_mib"], 3), "torch_weights_mib": round(facts["torch_mib"], 3), **check}
    record.update("metrics", summary)
    record.finish()
    line = (f"parp: {out / ONNX_FILE}: {summary['onnx_mib']:.2f} MiB; torch vs onnxruntime on {check['utterances']} "
            f"utterances: max |logit diff| {check['max_abs_logit_diff']:.3g}, transcripts identical "
            f"{check['transcripts_identical']}/{check['utterances']}")
    if "cer_torch" in check:
        line += f", CER {check['cer_torch']:.4f} -> {check['cer_onnx']:.4f} ({check['cer_change']:+.4f})"
    print(line, file=sys.stderr)
    return summary
