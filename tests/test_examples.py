"""The examples/ scripts (a transformers Trainer CTC recipe and a Whisper Seq2SeqTrainer script, PARP added in a few
lines) run on tiny random models and real Mboshi clips, and end with exactly the target sparsity."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import transformers
from safetensors.torch import load_file
from transformers import AutoModelForCTC, AutoModelForSpeechSeq2Seq

from parp.integrations.transformers import MASK_FILE
from parp.models import tiny_ctc_model
from parp.sparsity import Mask, measure_sparsity, prunable_parameters

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COMMON = ["--max_steps", "4", "--save_steps", "2", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3",
          "--parp_prune_every", "2", "--parp_sparsity", "0.5", "--use_cpu", "--report_to", "none", "--seed", "0",
          "--disable_tqdm", "true", "--logging_steps", "1", "--max_train_samples", "6"]


def _example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their annotations through the module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mboshi_clips(mboshi_dir, tmp_path_factory):
    """Six short Mboshi clips, read in place (absolute paths in a small manifest)."""
    lines = (mboshi_dir / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
    path_at, duration_at = header.index("path"), header.index("duration")
    short = [r for r in rows if float(r[duration_at]) < 3.0][:6]
    for r in short:
        r[path_at] = str(mboshi_dir / r[path_at])
    manifest = tmp_path_factory.mktemp("mboshi") / "train.tsv"
    manifest.write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in short]) + "\n", encoding="utf-8")
    return manifest


def _ctc_folder(folder: Path, arch: str) -> Path:
    tiny_ctc_model(arch, vocab_size=8).save_pretrained(folder)
    if arch == "wav2vec2-bert":  # 80 mel bins, two frames stacked: feature_projection_input_dim 160
        transformers.SeamlessM4TFeatureExtractor(feature_size=80, num_mel_bins=80, stride=2).save_pretrained(folder)
    else:
        transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("arch", ["wav2vec2", "wav2vec2-bert"])
def test_ctc_recipe_with_parp_on_mboshi(arch, mboshi_clips, tmp_path):
    out = tmp_path / "run"
    trainer = _example("run_speech_recognition_ctc_parp").main(
        ["--model_name_or_path", str(_ctc_folder(tmp_path / "model", arch)), "--train_manifest", str(mboshi_clips),
         "--output_dir", str(out), *COMMON])
    assert trainer.state.global_step == 4
    saved = AutoModelForCTC.from_pretrained(out)  # plain transformers
    measured = measure_sparsity(saved, list(prunable_parameters(saved)))
    assert measured.zeros * 2 == measured.total
    mask = Mask.load(out / "checkpoint-4" / MASK_FILE)
    weights = load_file(out / "checkpoint-4" / "model.safetensors")
    assert mask.sparsity() == 0.5 and sum(int((weights[n] == 0).sum()) for n in mask) == mask.num_pruned()


def _whisper_folder(folder: Path, texts: list[str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=80, special_tokens=["<pad>", "<s>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                     pad_token="<pad>", unk_token="<unk>")
    tokenizer.save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=8, chunk_length=4).save_pretrained(folder)
    config = transformers.WhisperConfig(vocab_size=len(tokenizer), num_mel_bins=8, encoder_layers=2, decoder_layers=2,
                                        encoder_attention_heads=2, decoder_attention_heads=2, d_model=16,
                                        encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=200,
                                        max_target_positions=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                        decoder_start_token_id=1)
    transformers.WhisperForConditionalGeneration(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("targets", ["encoder", "decoder"])
def test_whisper_example_with_parp_on_mboshi(targets, mboshi_clips, tmp_path):
    texts = [line.split("\t")[3] for line in mboshi_clips.read_text(encoding="utf-8").splitlines()[1:]]
    out = tmp_path / "run"
    trainer = _example("run_whisper_parp").main(
        ["--model_name_or_path", str(_whisper_folder(tmp_path / "model", texts)), "--train_manifest",
         str(mboshi_clips), "--output_dir", str(out), "--parp_targets", targets, *COMMON])
    assert trainer.state.global_step == 4
    saved = AutoModelForSpeechSeq2Seq.from_pretrained(out)
    names = list(prunable_parameters(saved, targets=targets))
    assert names and all(f"model.{targets}.layers." in n for n in names)
    measured = measure_sparsity(saved, names)
    assert measured.zeros * 2 == measured.total
    assert Mask.load(out / "checkpoint-4" / MASK_FILE).sparsity() == 0.5
