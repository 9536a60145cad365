import json
import os
import subprocess
import sys

import pytest
import torch

from parp.errors import MaskError
from parp.export import compressed_mask, compression_report, load_compressed, save_compressed, save_pruned_model
from parp.sparsity import Mask, magnitude_mask
from test_sparsity_targets import tiny_model


@pytest.mark.parametrize("arch", ["wav2vec2", "wavlm"])
def test_hf_folder_loads_with_plain_transformers(tmp_path, arch):
    model = tiny_model(arch)
    mask = magnitude_mask(model, 0.7)
    out = save_pruned_model(model, mask, tmp_path / "pruned")
    report = json.loads((out / "sparsity.json").read_text())
    assert report["measured_overall"] == pytest.approx(0.7, abs=1e-3)
    assert Mask.load(out / "mask.safetensors") == mask
    names = json.dumps(list(mask.masks))
    code = (
        "import json, sys, transformers\n"
        f"m = transformers.AutoModelForCTC.from_pretrained({str(out)!r})\n"
        "p = dict(m.named_parameters())\n"
        f"names = json.loads({names!r})\n"
        "zeros = sum(int((p[n] == 0).sum()) for n in names); total = sum(p[n].numel() for n in names)\n"
        "assert 'parp' not in sys.modules\n"
        "print(zeros, total)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    zeros, total = map(int, res.stdout.split()[-2:])
    assert zeros == mask.num_pruned() and zeros == round(0.7 * total)


def test_compressed_round_trip_bit_exact(tmp_path, capsys):
    model = tiny_model("hubert")
    mask = magnitude_mask(model, 0.8)
    mask.apply_(model)
    path = save_compressed(model, mask, tmp_path / "model.safetensors")
    fresh = tiny_model("hubert")
    torch.nn.init.normal_(fresh.lm_head.weight)  # make sure values really come from the file
    load_compressed(path, fresh)
    ref, got = model.state_dict(), fresh.state_dict()
    assert ref.keys() == got.keys()
    for name in ref:
        assert torch.equal(ref[name], got[name]), name
        assert ref[name].view(torch.uint8).equal(got[name].view(torch.uint8)) if ref[name].is_floating_point() else True
    assert compressed_mask(path) == mask
    save_pruned_model(model, mask, tmp_path / "dense")
    report = compression_report(tmp_path / "dense", path)
    assert report["ratio"] < 1 and "ratio" in capsys.readouterr().out


def test_compressed_wrong_model(tmp_path):
    model = tiny_model("wav2vec2")
    mask = magnitude_mask(model, 0.5)
    path = save_compressed(model, mask, tmp_path / "w2v.safetensors")
    with pytest.raises(MaskError, match=r"w2v\.safetensors"):
        load_compressed(path, tiny_model("hubert"))
