"""SSL pretraining: both objectives learn, targets are reproducible, the export loads for CTC, bad audio is counted."""

import json
import logging

import numpy as np
import pytest
import soundfile
import torch
from transformers import AutoModelForCTC

from parp.pretrain.data import UnlabelledAudioDataset
from parp.pretrain.model import small_wav2vec2_config
from parp.pretrain.objectives import BestRQObjective, RandomProjectionQuantizer, make_objective
from parp.pretrain.recipe import PretrainConfig, run_pretrain

TINY = dict(conv_channels=32, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, codevector_dim=64, proj_codevector_dim=64,
            num_codevectors_per_group=32, num_negatives=20, hidden_dropout=0.0, attention_dropout=0.0)


def _speechlike(seconds: float, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    """Voiced/unvoiced segments with drifting pitch: enough structure for masked prediction to learn."""
    pieces = []
    while sum(p.size for p in pieces) < seconds * rate:
        n = int(rng.uniform(0.05, 0.25) * rate)
        t = np.arange(n) / rate
        if rng.random() < 0.7:
            f0 = rng.uniform(90, 250) * (1 + 0.2 * t)
            phase = 2 * np.pi * np.cumsum(f0) / rate
            seg = sum(np.sin(k * phase) / k for k in range(1, 6))
        else:
            seg = rng.normal(0, 0.5, n)
        pieces.append(0.3 * seg * np.hanning(n))
    return np.concatenate(pieces)[: int(seconds * rate)].astype(np.float32)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The test machine is shared: one thread avoids oversubscription stalls that make timings erratic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unlabelled")
    rng = np.random.default_rng(0)
    rows = ["path\tduration"]
    for i in range(10):
        seconds = float(rng.uniform(1.0, 2.5))
        rate = 16000 if i % 2 else 8000  # exercise resampling
        wave = _speechlike(seconds, rng, rate)
        name = f"clip{i}.flac" if i % 3 else f"clip{i}.wav"
        soundfile.write(folder / name, wave, rate)
        rows.append(f"{name}\t{seconds:.3f}")
    (folder / "corrupt.wav").write_bytes(b"RIFF not really a wave file")
    (folder / "empty.flac").write_bytes(b"")
    rows += ["corrupt.wav\t1.0", "empty.flac\t1.0", "missing.ogg\t1.0"]
    (folder / "train.tsv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def dataset(audio_dir):
    return UnlabelledAudioDataset([audio_dir / "train.tsv"], max_seconds=2.0, seed=0)


def test_unreadable_audio_is_skipped_and_counted(audio_dir, dataset, caplog):
    assert len(dataset) == 10 and dataset.skipped == 3
    assert max(dataset.durations) <= 2.0 and min(dataset.durations) >= 1.0
    item = dataset[0]
    assert item["input_values"].dtype == np.float32 and item["input_values"].ndim == 1
    with caplog.at_level(logging.WARNING):
        folder = UnlabelledAudioDataset([audio_dir], max_seconds=2.0)  # folder source finds the same files
    assert len(folder) == 10 and folder.skipped == 2  # corrupt.wav + empty.flac (missing.ogg is only in the tsv)
    assert sum("unreadable" in r.message for r in caplog.records) == 3  # one line each + the summary


def test_targets_are_deterministic_for_a_seed(dataset, tmp_path):
    config = small_wav2vec2_config(**TINY)
    items = [dataset[i] for i in range(3)]
    a = BestRQObjective(config, codebook_size=64, seed=7).collate(items)["targets"]
    b = BestRQObjective(config, codebook_size=64, seed=7).collate(items)["targets"]
    c = BestRQObjective(config, codebook_size=64, seed=8).collate(items)["targets"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    valid = a[a != -100]
    assert valid.unique().numel() > 5  # targets are not collapsed onto a few codewords
    # frame alignment: exactly one target per real CNN frame, -100 on padding only
    lengths = BestRQObjective(config).collate(items)["frame_lengths"]
    assert ((a[..., 0] != -100).sum(1) == lengths).all()
    quantizer = RandomProjectionQuantizer(160, 64, 16, 2, seed=3)
    quantizer.save(tmp_path / "q.safetensors")
    loaded = RandomProjectionQuantizer.load(tmp_path / "q.safetensors")
    features = torch.randn(50, 160)
    assert torch.equal(quantizer(features), loaded(features))


@pytest.mark.parametrize("name", ["best-rq", "wav2vec2"])
def test_a_few_dozen_steps_lower_the_loss_on_a_batch(dataset, name):
    torch.manual_seed(0)
    config = small_wav2vec2_config(**TINY)
    objective = make_objective(name, config, mask_prob=0.5, **({"codebook_size": 64} if name == "best-rq" else {}))
    model = objective.build_model(seed=0)
    if name == "wav2vec2":
        model.set_gumbel_temperature(0.5)  # where the recipe's annealing ends; 2.0 learns too slowly for a test
    batch = objective.collate([dataset[i] for i in range(3)])
    before = objective.evaluate(model, [batch])
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    np.random.seed(0)
    for _ in range(25):
        loss = objective.loss(model, batch)
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = objective.evaluate(model, [batch])
    assert after["loss"] < before["loss"] - 0.1, (before, after)
    assert 0.0 <= after["accuracy"] <= 1.0


@pytest.mark.parametrize("name", ["best-rq", "wav2vec2"])
def test_run_pretrain_exports_a_folder_that_loads_for_ctc(audio_dir, tmp_path, name):
    cfg = PretrainConfig(
        sources=[str(audio_dir / "train.tsv")], output_dir=str(tmp_path / "run"), objective=name, max_steps=4,
        warmup_steps=1, max_batch_seconds=6.0, eval_every=2, save_every=2, log_every=1, max_clip_seconds=2.0,
        valid_fraction=0.2, progress=False, codebook_size=64, conv_channels=32, hidden_size=64, num_layers=2,
        intermediate_size=128, num_negatives=20,
        model_overrides=json.dumps({k: TINY[k] for k in ("num_attention_heads", "num_conv_pos_embeddings",
                                                          "num_conv_pos_embedding_groups", "codevector_dim",
                                                          "proj_codevector_dim", "num_codevectors_per_group")}),
    )
    record = run_pretrain(cfg)
    model_dir = tmp_path / "run" / "model"
    for name_ in ("config.json", "model.safetensors", "preprocessor_config.json", "pretraining.json"):
        assert (model_dir / name_).is_file(), name_
    assert (tmp_path / "run" / "loss_curve.png").is_file()
    assert record["steps"] == 4 and record["data"]["unreadable_skipped"] == 3
    assert any("loss" in h for h in record["history"]) and "loss" in record["final_metrics"]
    preprocessor = json.loads((model_dir / "preprocessor_config.json").read_text())
    assert preprocessor["do_normalize"] is True and preprocessor["sampling_rate"] == 16000

    ctc = AutoModelForCTC.from_pretrained(model_dir, vocab_size=12, ignore_mismatched_sizes=True)
    assert ctc.lm_head.out_features == 12
    ctc.eval()
    with torch.no_grad():
        logits = ctc(torch.randn(2, 16000)).logits
    assert logits.shape[-1] == 12 and torch.isfinite(logits).all()


def test_parp_pretrain_downstream_fine_tunes_both_arms_and_records_them(tmp_path, capsys):
    """The SSL-gain comparison as a parp command: both arms fine-tuned with one schedule, downstream.json read back
    through parp.records, the figure written, and a finished arm not rerun."""
    from helpers import synthetic_corpus, tiny_model_dir

    from parp.cli import main
    from parp.records import DOWNSTREAM, read_record

    manifest = synthetic_corpus(tmp_path / "data", n=12, seconds=1.0)
    model = tiny_model_dir(tmp_path / "encoder")
    args = ["pretrain", "downstream", "--checkpoint", str(model), "--train_manifest", str(manifest),
            "--valid_fraction", "0.25", "--max_steps", "2", "--warmup_steps", "0", "--eval_every", "0",
            "--save_every", "0", "--max_batch_seconds", "4", "--no_progress", "--output_dir", str(tmp_path / "gain")]
    assert main(args) == 0
    summary = read_record(tmp_path / "gain", DOWNSTREAM)
    assert set(summary["arms"]) == {"pretrained", "random"} and summary["schedule"]["max_steps"] == 2
    assert all(arm["status"] == "completed" for arm in summary["arms"].values())
    assert (tmp_path / "gain" / "downstream.png").read_bytes()[:4] == b"\x89PNG"
    assert capsys.readouterr().out.splitlines()[0].startswith("pretrained ")
    record = (tmp_path / "gain" / "pretrained" / "run.json").stat().st_mtime
    assert main(args) == 0 and (tmp_path / "gain" / "pretrained" / "run.json").stat().st_mtime == record
