"""PruningCallback inside transformers.Trainer / Seq2SeqTrainer: exact sparsity after training and in every saved
checkpoint, the mask beside each checkpoint (safetensors), resume equal to an uninterrupted run, Whisper's encoder
and decoder scopes, and the OMP / IMP recipes' helpers."""

from __future__ import annotations

import pytest
import torch
import transformers
from safetensors.torch import load_file
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, Trainer, TrainerCallback, TrainingArguments

from parp.errors import MaskError
from parp.integrations.transformers import MASK_FILE, PruningCallback, prune_now, rewind
from parp.models import tiny_ctc_model
from parp.sparsity import Mask, measure_sparsity


class RandomCTC(torch.utils.data.Dataset):
    """Fixed random clips with short label sequences: enough for the Trainer to take real steps."""

    def __init__(self, n=8, samples=4000, vocab=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.items = [{"input_values": torch.randn(samples, generator=g),
                       "labels": torch.randint(1, vocab, (4,), generator=g)} for _ in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def _args(out, steps=6, save_steps=3, cls=TrainingArguments, **extra):
    return cls(output_dir=str(out), max_steps=steps, per_device_train_batch_size=2, learning_rate=1e-2,
               lr_scheduler_type="constant", save_strategy="steps", save_steps=save_steps, logging_steps=1,
               report_to=[], use_cpu=True, seed=0, data_seed=0, dataloader_num_workers=0, disable_tqdm=True,
               **extra)


def _ctc_trainer(out, callback, arch="wav2vec2", steps=6, extra_callbacks=()):
    model = tiny_ctc_model(arch, vocab_size=12, seed=1)
    return Trainer(model=model, args=_args(out, steps), train_dataset=RandomCTC(),
                   callbacks=[callback, *extra_callbacks])


def _exact(model, callback, sparsity=0.5):
    names = list(callback.parameters(model))
    measured = measure_sparsity(model, names)
    assert measured.zeros == round(sparsity * measured.total)
    return measured.overall


def _own_inputs(arch, g) -> dict:
    """One item in the family's own input format (what its feature extractor would give)."""
    if arch == "omniasr_ctc":
        return {"input_values": torch.randn(1, 4000, generator=g), "padding_mask": torch.ones(4000, dtype=torch.long)}
    width = 64 if arch == "granite_speech5_ctc" else 16  # Granite stacks 4 frames of 16 mel bins
    return {"input_features": torch.randn(40, width, generator=g), "attention_mask": torch.ones(40, dtype=torch.long)}


# the CLI's families train through its own loop (test_families.py); here the callback in Trainer: two of them, and
# every family the CLI refuses, fed in its own input format
@pytest.mark.parametrize("arch", ["wav2vec2", "wav2vec2-conformer", "parakeet_ctc", "lasr_ctc", "granite_speech5_ctc",
                                  "omniasr_ctc"])
def test_parp_in_trainer_is_exact_after_training_and_in_every_checkpoint(arch, tmp_path):
    callback = PruningCallback("parp", sparsity=0.5, prune_every=2)
    if arch.startswith("wav2vec2"):
        trainer = _ctc_trainer(tmp_path, callback, arch)
    else:
        g = torch.Generator().manual_seed(0)
        data = [{**_own_inputs(arch, g), "labels": torch.randint(1, 12, (3,), generator=g)} for _ in range(8)]
        trainer = Trainer(model=tiny_ctc_model(arch, vocab_size=12, seed=1), args=_args(tmp_path), train_dataset=data,
                          callbacks=[callback])
    start = {n: p.detach().clone() for n, p in callback.parameters(trainer.model).items()}
    trainer.train()
    assert _exact(trainer.model, callback) == 0.5
    assert callback.hook.reprunes, "PARP re-pruned during training"
    assert any(not torch.equal(start[n], p) for n, p in callback.parameters(trainer.model).items())
    for step in (3, 6):
        folder = tmp_path / f"checkpoint-{step}"
        mask = Mask.load(folder / MASK_FILE)
        assert mask.sparsity() == 0.5 and set(mask) == set(start)
        weights = load_file(folder / "model.safetensors")
        assert sum(int((weights[n] == 0).sum()) for n in mask) == mask.num_pruned()


def test_resume_from_a_trainer_checkpoint_equals_an_uninterrupted_run(tmp_path):
    whole_callback = PruningCallback("parp", sparsity=0.5, prune_every=2)
    whole = _ctc_trainer(tmp_path / "whole", whole_callback)
    whole.train()
    first = _ctc_trainer(tmp_path / "cut", PruningCallback("parp", sparsity=0.5, prune_every=2),
                         extra_callbacks=[StopAt(3)])
    first.train()
    assert (tmp_path / "cut" / "checkpoint-3" / MASK_FILE).is_file()
    resumed_callback = PruningCallback("parp", sparsity=0.5, prune_every=2)
    resumed = _ctc_trainer(tmp_path / "cut", resumed_callback)
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-3"))
    assert resumed.state.global_step == 6
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0, msg=name)
    assert resumed_callback.mask == whole_callback.mask
    assert resumed_callback.hook.reprunes == whole_callback.hook.reprunes  # the history came back from the file
    assert _exact(resumed.model, resumed_callback) == 0.5


def test_epoch_checkpoints_are_saved_at_the_target_sparsity(tmp_path):
    """With save_strategy "epoch" Trainer decides to save at epoch end, 1 step after PARP's last re-prune at 3."""
    callback = PruningCallback("parp", sparsity=0.5, prune_every=3)
    args = _args(tmp_path, steps=-1, num_train_epochs=1)
    args.save_strategy = "epoch"
    trainer = Trainer(model=tiny_ctc_model("wav2vec2", vocab_size=12, seed=1), args=args, train_dataset=RandomCTC(),
                      callbacks=[callback])
    trainer.train()
    assert trainer.state.global_step == 4
    weights = load_file(tmp_path / "checkpoint-4" / "model.safetensors")
    mask = Mask.load(tmp_path / "checkpoint-4" / MASK_FILE)
    assert mask.sparsity() == 0.5 and sum(int((weights[n] == 0).sum()) for n in mask) == mask.num_pruned()


@pytest.mark.parametrize("method", ["mpi", "random", "fixed"])
def test_fixed_masks_never_move(method, tmp_path):
    model = tiny_ctc_model("wav2vec2", vocab_size=12, seed=1)
    given = prune_now(tiny_ctc_model("wav2vec2", vocab_size=12, seed=2), 0.5) if method == "fixed" else None
    callback = PruningCallback(method, sparsity=0.5, mask=given)
    trainer = Trainer(model=model, args=_args(tmp_path, steps=4), train_dataset=RandomCTC(), callbacks=[callback])
    trainer.train()
    assert _exact(trainer.model, callback) == 0.5
    final = Mask({n: p.detach() != 0 for n, p in callback.parameters(trainer.model).items()})
    assert final == callback.mask and (given is None or final == given)


def test_omp_and_imp_recipes_with_the_helpers(tmp_path):
    model = tiny_ctc_model("wav2vec2", vocab_size=12, seed=1)
    pretrained = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model=model, args=_args(tmp_path / "dense", steps=3), train_dataset=RandomCTC()).train()
    mask = prune_now(model, 0.5)  # OMP: prune the fine-tuned weights ...
    callback = PruningCallback("fixed", mask=mask)  # ... and fine-tune again with the mask fixed
    Trainer(model=model, args=_args(tmp_path / "omp", steps=3), train_dataset=RandomCTC(), callbacks=[callback]).train()
    assert _exact(model, callback) == 0.5
    rewind(model, pretrained, mask)  # IMP: survivors back to their pretrained values
    kept = mask[next(iter(mask))]
    name = next(iter(mask))
    assert torch.equal(dict(model.named_parameters())[name][kept], pretrained[name][kept])


def tiny_whisper():
    config = transformers.WhisperConfig(vocab_size=40, num_mel_bins=8, encoder_layers=2, decoder_layers=2,
                                        encoder_attention_heads=2, decoder_attention_heads=2, d_model=16,
                                        encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=20,
                                        max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                        decoder_start_token_id=1)
    torch.manual_seed(0)
    return transformers.WhisperForConditionalGeneration(config)


@pytest.mark.parametrize("targets, layers, per_layer", [("encoder", "encoder.layers", 6),
                                                        ("decoder", "decoder.layers", 10)])
def test_whisper_seq2seq_trainer_encoder_and_decoder_scopes(targets, layers, per_layer, tmp_path):
    model = tiny_whisper()
    g = torch.Generator().manual_seed(0)
    data = [{"input_features": torch.randn(8, 40, generator=g), "labels": torch.randint(3, 40, (5,), generator=g)}
            for _ in range(8)]
    callback = PruningCallback("parp", sparsity=0.5, prune_every=2, targets=targets)
    names = list(callback.parameters(model))
    assert len(names) == 2 * per_layer and all(f"model.{layers}." in n for n in names)
    trainer = Seq2SeqTrainer(model=model, args=_args(tmp_path, steps=4, save_steps=2, cls=Seq2SeqTrainingArguments),
                             train_dataset=data, callbacks=[callback])
    trainer.train()
    assert _exact(trainer.model, callback) == 0.5
    assert Mask.load(tmp_path / "checkpoint-4" / MASK_FILE).sparsity() == 0.5


def test_bad_callback_arguments_are_one_line_errors():
    with pytest.raises(MaskError, match="method must be one of"):
        PruningCallback("omp")
    with pytest.raises(MaskError, match="needs mask="):
        PruningCallback("fixed")
    with pytest.raises(MaskError, match="scope must be"):
        PruningCallback(scope="rows")
