"""The embedded default checkpoint: present, small, loads as a CTC model with no network, finite outputs."""

import json

import torch

from parp.models import default_model_path, load_ctc_model


def test_embedded_checkpoint_is_small_documented_and_loads():
    folder = default_model_path()
    weights = folder / "model.safetensors"
    assert weights.is_file(), f"missing embedded checkpoint {weights}"
    assert weights.stat().st_size <= 25 * 1024 * 1024
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "BEST-RQ" in card and "Reproduce" in card and (folder / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((folder / "pretraining.json").read_text())
    assert record["steps"] > 0 and record["data"]["train_hours"] > 1

    model = load_ctc_model(None, vocab_size=37).eval()  # None = the embedded default
    torch.manual_seed(0)
    with torch.no_grad():
        logits = model(torch.randn(2, 24000)).logits
    assert logits.shape == (2, 74, 37)
    assert torch.isfinite(logits).all()
    # the encoder really is pretrained: its weights are the file's, not a fresh initialisation
    from safetensors.torch import load_file

    saved = load_file(str(weights))  # a Wav2Vec2Model file: keys without the CTC model's "wav2vec2." prefix
    name = "encoder.layers.0.attention.q_proj.weight"
    assert torch.equal(dict(model.named_parameters())["wav2vec2." + name], saved[name])


def test_embedded_card_agrees_with_its_record():
    """The card is written from pretraining.json: steps, hardware, data and time must be the record's."""
    folder = default_model_path()
    card = (folder / "README.md").read_text(encoding="utf-8")
    record = json.loads((folder / "pretraining.json").read_text())
    hardware = record["hardware"]
    assert f"| updates | {record['steps']} " in card
    assert f"| hardware | {hardware.get('gpu') or 'CPU only'}, {hardware['cpus']} CPU cores" in card
    assert f"{record['train_audio_seconds'] / 3600:.2f} h" in card
    assert f"{record['data']['train_hours']:.2f} h in {record['data']['train_clips']} clips" in card
    losses = [h["valid_loss"] for h in record["loss_history"] if "valid_loss" in h]
    assert f"{losses[-1]:.2f} at updates" in card

