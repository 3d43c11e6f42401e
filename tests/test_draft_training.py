"""Training the EAGLE-3 head at scale: features in shards on disk, resumable training.

Stages 2 and 3 of ``train-draft`` run here for real (the embedded model's forward, the
real head and optimizer) on a handful of short made-up sequences.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engines.native.eagle3.dataset import TrainingSequence
from engines.native.eagle3.features import FeatureStore, write_shard
from engines.native.eagle3.head import load_head, read_manifest
from engines.native.eagle3.train import (
    SEQUENCES_FILE,
    VALIDATION_FILE,
    TrainSettings,
    shared_prefix_length,
    train_from_data,
)


def _random_shard(rng: torch.Generator, lengths: list[int]) -> tuple[list[torch.Tensor], ...]:
    tokens = [torch.randint(0, 1000, (n,), generator=rng) for n in lengths]
    argmax = [torch.randint(0, 1000, (n,), generator=rng) for n in lengths]
    hidden = [torch.randn(n, 12, generator=rng).to(torch.float16) for n in lengths]
    return tokens, argmax, hidden


def test_feature_shards_read_back_exactly_and_must_chain(tmp_path: Path) -> None:
    rng = torch.Generator().manual_seed(0)
    first, second = _random_shard(rng, [3, 5]), _random_shard(rng, [4])
    write_shard(tmp_path, 0, *first)
    write_shard(tmp_path, 2, *second)
    (tmp_path / "00000003-00000009.tmp").mkdir()  # an interrupted write is not a shard
    store = FeatureStore(tmp_path)
    assert len(store) == 3 and store.lengths() == [3, 5, 4] and store.total_tokens() == 12
    assert store.feature_width() == 12
    for index, (tokens, argmax, hidden) in enumerate(
        [(first[0][i], first[1][i], first[2][i]) for i in range(2)]
        + [(second[0][0], second[1][0], second[2][0])]
    ):
        assert torch.equal(store.tokens(index), tokens)
        assert torch.equal(store.argmax(index), argmax)
        assert torch.equal(store.hidden(index), hidden.float())
    counts = store.argmax_counts(1000)
    assert int(counts.sum()) == 12
    # A shard that does not continue the chain is refused, not skipped.
    gap = tmp_path / "gap"
    write_shard(gap, 0, *first)
    write_shard(gap, 5, *second)
    with pytest.raises(ValueError, match="starting at 2"):
        FeatureStore(gap)


def test_the_shared_system_message_is_measured_from_the_prompts() -> None:
    def seq(*prompt: int) -> TrainingSequence:
        return TrainingSequence(prompt, (9,))

    assert shared_prefix_length([seq(1, 2, 3, 4), seq(1, 2, 3, 7, 8), seq(1, 2, 5)]) == 2
    assert shared_prefix_length([seq(1, 2)]) == 2
    assert shared_prefix_length([]) == 0


def _write_sequences(path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w") as out:
        for index in range(count):
            prompt = [1, 2, 3] + [rng.randrange(100, 5000) for _ in range(rng.randrange(3, 8))]
            answer = [rng.randrange(100, 5000) for _ in range(rng.randrange(4, 12))]
            out.write(
                json.dumps({"text": f"p{index}", "sample": 0, "prompt": prompt, "answer": answer}) + "\n"
            )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_training_resumed_from_a_checkpoint_ends_where_one_uninterrupted_run_does(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _write_sequences(data / SEQUENCES_FILE, 10, seed=1)
    _write_sequences(data / VALIDATION_FILE, 3, seed=2)
    runs = {}
    for name in ("whole", "resumed"):
        work = tmp_path / name
        shutil.copytree(data, work)
        runs[name] = TrainSettings(
            work_dir=work,
            output=work / "head.safetensors",
            draft_vocab=64,
            unroll=2,
            epochs=2,
            batch_tokens=48,
            warmup_steps=2,
            threads=1,
        )
    whole = train_from_data(runs["whole"])
    steps = int(str(whole["optimizer_steps"]))
    assert steps > 4
    # Features were written as shards and cover every sequence.
    assert len(FeatureStore(runs["whole"].work_dir / "features")) == 10
    assert len(FeatureStore(runs["whole"].work_dir / "features-validation")) == 3

    # Interrupted twice: inside the first epoch, then inside the second.
    paused = replace(runs["resumed"], run_steps=steps // 2 - 1)
    assert train_from_data(paused) == {}
    assert not runs["resumed"].output.exists()
    assert train_from_data(paused) == {}
    resumed = train_from_data(runs["resumed"])
    assert resumed["optimizer_steps"] == steps
    assert resumed["history"] == whole["history"]
    assert _digest(runs["resumed"].output) == _digest(runs["whole"].output)
    # The head loads through the engine's integrity check and records its data.
    head, _ = load_head(runs["whole"].output, max_seq=64)
    assert head.config.draft_vocab_size == 64
    record = read_manifest(runs["whole"].output)["training"]
    assert isinstance(record, dict) and record["sequences"] == 10 and record["loss_from_position"] == 3

    # A checkpoint from other settings is not resumed: the run starts over and differs.
    other = replace(runs["resumed"], learning_rate=3e-3, output=tmp_path / "other.safetensors")
    restarted = train_from_data(other)
    assert restarted["optimizer_steps"] == steps
    assert _digest(other.output) != _digest(runs["whole"].output)


def test_the_train_draft_command_passes_its_flags_to_the_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tokenwire train-draft` reaches the trainer through ``train_with`` (engine_choice no longer
    carries it); every flag given becomes its setting, and flags left out keep the defaults."""
    from engines.native.eagle3 import train as trainer
    from service import cli

    seen: list[TrainSettings] = []

    def fake_train(settings: TrainSettings) -> dict[str, object]:
        seen.append(settings)
        return {"stage": settings.stage, "epochs": settings.epochs}

    monkeypatch.setattr(trainer, "train", fake_train)
    argv = ["train-draft", "--work-dir", str(tmp_path), "--epochs", "5", "--stage", "features"]
    assert cli.main([*argv, "--follow-up-samples", "2", "--concurrency", "5"]) == 0
    (settings,) = seen
    defaults = TrainSettings(work_dir=tmp_path)
    assert settings == replace(defaults, epochs=5, stage="features", follow_up_samples=2, concurrency=5)
    assert json.loads(capsys.readouterr().out) == {"stage": "features", "epochs": 5}
    with pytest.raises(TypeError, match="not training settings"):
        trainer.train_with(tmp_path, learning_rate_typo=1.0)
