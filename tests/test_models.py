"""Every supported architecture loads through ``load_ctc_model`` with a fresh CTC head and trains."""

import math

import pytest
import torch

from parp.errors import ModelError
from parp.models import ARCHITECTURES, load_ctc_model, tiny_ctc_model


def _fixed_batch(vocab_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    input_values = torch.randn(2, 8000, generator=g)
    attention_mask = torch.ones(2, 8000, dtype=torch.long)
    attention_mask[1, 6000:] = 0
    input_values[1, 6000:] = 0.0
    labels = torch.randint(1, vocab_size, (2, 6), generator=g)
    labels[1, 4:] = -100
    return {"input_values": input_values, "attention_mask": attention_mask, "labels": labels}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_architecture_loads_with_fresh_head_and_trains(arch, tmp_path):
    folder = tmp_path / arch
    tiny_ctc_model(arch, vocab_size=32, seed=1).save_pretrained(folder)

    model = load_ctc_model(str(folder), vocab_size=11)
    assert model.config.vocab_size == 11
    assert model.lm_head.out_features == 11
    assert model.config.ctc_loss_reduction == "mean"

    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    batch = _fixed_batch(11)
    losses = []
    for _ in range(6):
        loss = model(**batch).loss
        assert math.isfinite(loss.item()), f"{arch}: non-finite loss {loss.item()}"
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], f"{arch}: loss did not decrease on a fixed batch: {losses}"
    # the encoder body was loaded from the folder, not re-initialised
    saved = tiny_ctc_model(arch, vocab_size=32, seed=1)
    reloaded = load_ctc_model(str(folder), vocab_size=11)
    body = dict(reloaded.base_model.named_parameters())
    assert body and all(torch.equal(body[n], p) for n, p in saved.base_model.named_parameters())


def test_missing_model_folder_names_it(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError, match="no-such-model"):
        load_ctc_model(str(missing), vocab_size=10)


def test_folder_without_config_is_a_model_error(tmp_path):
    folder = tmp_path / "empty-model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="config.json"):
        load_ctc_model(str(folder), vocab_size=10)
