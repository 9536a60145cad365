"""``parp export onnx``: the exported graph agrees with torch (tiny model and the embedded encoder), int8 forms are
really quantized, a --scope ffn folder is exported with its neurons removed, the documented torch-free snippet
decodes real Mboshi clips like ``parp transcribe``, and bad input is one ``parp: error:`` line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from parp.cli import main  # noqa: E402
from parp.data.audio import load_audio  # noqa: E402
from parp.data.dataset import normalize_waveform  # noqa: E402
from parp.data.text import Vocabulary  # noqa: E402
from parp.evaluation.evaluate import transcribe  # noqa: E402
from parp.export import save_pruned_model  # noqa: E402
from parp.export.onnx import OnnxExportArguments, run_export_onnx  # noqa: E402
from parp.models import load_ctc_model, load_finetuned_model, tiny_ctc_model  # noqa: E402
from parp.sparsity.structured import ffn_mask, ffn_parameters  # noqa: E402
from test_cli_errors import _mboshi_clips, _write_manifest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# int8 changes logits a little: this much CER between the int8-static file's greedy transcripts and torch fp32's is
# allowed on the embedded encoder with a fitted head (measured 0.025 on the 6 clips; the bench's trained models
# give the CER change on 150 validation utterances)
INT8_CER_TOLERANCE = 0.10


def _vocabulary(texts) -> Vocabulary:
    return Vocabulary.build(texts)


@pytest.fixture(scope="module")
def clips(mboshi_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("mboshi")
    rows = _mboshi_clips(mboshi_dir, root / "audio", 6)
    return rows, _write_manifest(root / "clips.tsv", rows)


@pytest.fixture(scope="module")
def tiny_dir(clips, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "model"
    vocabulary = _vocabulary(text for _, text in clips[0])
    tiny_ctc_model("wav2vec2", vocab_size=len(vocabulary), conv_dim=(16,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2),
                   conv_kernel=(10, 3, 3, 3, 3, 2, 2)).save_pretrained(folder)
    vocabulary.save(folder)
    return folder


def _fit_head(model, rows, vocabulary, steps: int = 200) -> None:
    """Fit only the CTC head on the clips (encoder frozen): a random head's near-tied logits would make any
    int8 comparison noise; a fitted one decodes these clips with confident frames, like a trained model."""
    model.eval()
    with torch.no_grad():
        hidden = [model.wav2vec2(torch.from_numpy(normalize_waveform(load_audio(path)))[None]).last_hidden_state[0]
                  for path, _ in rows]
    labels = [torch.tensor(vocabulary.encode(text)) for _, text in rows]
    optimizer = torch.optim.Adam(model.lm_head.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = sum(torch.nn.functional.ctc_loss(model.lm_head(h).log_softmax(-1), y, [len(h)], [len(y)])
                   for h, y in zip(hidden, labels))
        loss.backward()
        optimizer.step()


@pytest.fixture(scope="module")
def embedded_dir(clips, tmp_path_factory) -> Path:
    """The embedded encoder with a CTC head fitted to the clips' transcripts."""
    folder = tmp_path_factory.mktemp("embedded") / "model"
    vocabulary = _vocabulary(text for _, text in clips[0])
    torch.manual_seed(0)
    model = load_ctc_model(None, len(vocabulary))
    _fit_head(model, clips[0], vocabulary)
    model.save_pretrained(folder)
    vocabulary.save(folder)
    return folder


def _export(model_dir, out, clips, **kwargs) -> dict:
    return run_export_onnx(OnnxExportArguments(model_dir=str(model_dir), output_dir=str(out),
                                               check_manifest=str(clips[1]), check_utterances=6, **kwargs))


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_tiny_export_agrees_with_torch(tiny_dir, clips, tmp_path):
    summary = _export(tiny_dir, tmp_path / "onnx", clips)
    assert summary["form"] == "dense" and summary["utterances"] == 6
    assert summary["max_abs_logit_diff"] < 1e-4
    assert summary["transcripts_identical"] == 6 and summary["cer_change"] == 0
    out = tmp_path / "onnx"
    for name in ("model.onnx", "vocab.json", "preprocessor_config.json", "README.md", "run.json"):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "## ONNX export" in card and "accuracy change" in card and "parp export onnx" in card
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    # batch and time axes are dynamic: two utterances of another length in one call
    model = load_finetuned_model(tiny_dir)
    audio = torch.randn(2, 23456)
    with torch.inference_mode():
        expected = model.eval()(audio).logits.numpy()
    got = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input_values": audio.numpy()})[0]
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


def test_int8_forms_are_quantized(tiny_dir, clips, tmp_path):
    dynamic = _export(tiny_dir, tmp_path / "dyn", clips, quantize="int8-dynamic")
    static = _export(tiny_dir, tmp_path / "static", clips, quantize="int8-static", calibration=str(clips[1]),
                     calibration_utterances=4)
    dyn_ops, static_ops = _ops(tmp_path / "dyn" / "model.onnx"), _ops(tmp_path / "static" / "model.onnx")
    assert "MatMulInteger" in dyn_ops and "DequantizeLinear" not in dyn_ops
    assert "MatMulInteger" in static_ops and {"QuantizeLinear", "DequantizeLinear"} <= static_ops
    graph = onnx.load(str(tmp_path / "static" / "model.onnx")).graph
    produced_by = {out: node.op_type for node in graph.node for out in node.output}
    quantized_convs = [n for n in graph.node if n.op_type == "Conv" and produced_by.get(n.input[0]) == "DequantizeLinear"]
    assert len(quantized_convs) == 6  # the feature encoder's convolutions but the first; the positional one stays
    assert not (tmp_path / "static" / "model.fp32.onnx").exists()
    for summary in (dynamic, static):
        assert 0 < summary["max_abs_logit_diff"] < 1.0  # quantized, but still the same model
    assert "calibrated on 4 utterances" in (tmp_path / "static" / "README.md").read_text()


def test_ffn_model_folder_is_exported_compact(clips, tmp_path):
    vocabulary = _vocabulary(text for _, text in clips[0])
    model = tiny_ctc_model("wav2vec2", vocab_size=len(vocabulary), conv_dim=(16,) * 7,
                           conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2))
    folder = save_pruned_model(model, ffn_mask(ffn_parameters(model), 0.5), tmp_path / "model")
    vocabulary.save(folder)
    summary = _export(folder, tmp_path / "onnx", clips)
    assert summary["form"] == "ffn-compact"
    assert summary["max_abs_logit_diff"] < 1e-4 and summary["transcripts_identical"] == 6
    widths = {d for t in onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph.initializer for d in t.dims}
    assert 64 not in widths and 32 in widths  # intermediate_size 64 -> 32: the pruned neurons are gone


def _snippet() -> str:
    text = (REPO / "docs" / "onnx.md").read_text(encoding="utf-8")
    return re.search(r"## Decoding without torch.*?```python\n(.*?)```", text, re.S).group(1)


def _run_snippet(folder: Path, files: list[str], tmp_path: Path) -> dict[str, str]:
    """The docs' snippet in a fresh interpreter where ``import torch`` (and parp) fail."""
    blocked = tmp_path / "blocked"
    for name in ("torch", "parp", "transformers"):
        (blocked / name).mkdir(parents=True, exist_ok=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked in this test')\n")
    script = tmp_path / "snippet.py"
    script.write_text(_snippet(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(blocked)}
    res = subprocess.run([sys.executable, str(script), str(folder), *files], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return dict(line.split("\t", 1) if "\t" in line else (line, "") for line in res.stdout.splitlines())


def test_tiny_export_decodes_like_torch_without_torch(tiny_dir, clips, tmp_path):
    files = [path for path, _ in clips[0]]
    _export(tiny_dir, tmp_path / "onnx", clips)
    assert _run_snippet(tmp_path / "onnx", files, tmp_path) == dict(transcribe(str(tiny_dir), files, "cpu", "fp32"))
    blocked = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(tmp_path / "blocked")})
    assert blocked.returncode != 0 and "blocked" in blocked.stderr  # the snippet really ran without torch


def test_embedded_export_and_torch_free_snippet_match_torch(embedded_dir, clips, tmp_path):
    files = [path for path, _ in clips[0]]
    torch_text = dict(transcribe(str(embedded_dir), files, device="cpu", precision="fp32"))
    fp32 = _export(embedded_dir, tmp_path / "fp32", clips)
    assert fp32["max_abs_logit_diff"] < 1e-3 and fp32["transcripts_identical"] == len(files)
    assert _run_snippet(tmp_path / "fp32", files, tmp_path) == torch_text
    onnx_backend = subprocess.run([sys.executable, "-m", "parp", "transcribe", "--backend", "onnx",
                                   str(tmp_path / "fp32"), *files], capture_output=True, text=True, timeout=300)
    assert onnx_backend.returncode == 0, onnx_backend.stderr[-2000:]
    assert dict(line.split("\t", 1) for line in onnx_backend.stdout.splitlines()) == torch_text
    _export(embedded_dir, tmp_path / "int8", clips, quantize="int8-static", calibration=str(clips[1]))
    int8_text = _run_snippet(tmp_path / "int8", files, tmp_path)
    references = [torch_text[f] for f in files]
    normalize = Vocabulary.load(embedded_dir).normalizer
    assert all(references) and jiwer.cer([normalize(t) for _, t in clips[0]], references) < 0.5  # it decodes
    cer = jiwer.cer(references, [int8_text[f] for f in files])
    assert cer <= INT8_CER_TOLERANCE, f"int8 vs torch fp32 transcripts: CER {cer:.3f}"
    print(f"int8-static vs torch fp32 transcripts: CER {cer:.4f}")


def _error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("parp: error: "), err
    return err[0]


def test_bad_inputs_give_one_line(tiny_dir, clips, tmp_path, capsys):
    assert "no such model folder" in _error_line(capsys, ["export", "onnx", str(tmp_path / "missing"),
                                                          "--output-dir", str(tmp_path / "o")])
    (tmp_path / "empty").mkdir()
    assert "no config.json" in _error_line(capsys, ["export", "onnx", str(tmp_path / "empty"),
                                                    "--output-dir", str(tmp_path / "o")])
    encoder = REPO / "src" / "parp" / "assets" / "parp-ssl-small"  # an SSL encoder: no CTC head
    assert "not a CTC model" in _error_line(capsys, ["export", "onnx", str(encoder), "--output-dir",
                                                     str(tmp_path / "o")])
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]}))
    assert "'bert' is not supported" in _error_line(capsys, ["export", "onnx", str(bert), "--output-dir",
                                                             str(tmp_path / "o")])
    assert "--opset 5" in _error_line(capsys, ["export", "onnx", str(tiny_dir), "--output-dir",
                                               str(tmp_path / "o"), "--opset", "5"])
    assert "--quantize" in _error_line(capsys, ["export", "onnx", str(tiny_dir), "--output-dir",
                                                str(tmp_path / "o"), "--quantize", "int4"])
    assert "--calibration" in _error_line(capsys, ["export", "onnx", str(tiny_dir), "--output-dir",
                                                   str(tmp_path / "o"), "--quantize", "int8-static"])
    assert "--output-dir" in _error_line(capsys, ["export", "onnx", str(tiny_dir)])
