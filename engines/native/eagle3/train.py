"""Train the EAGLE-3 head for SmolLM2-135M-Instruct on this CPU: ``tokenwire train-draft``.

Three resumable stages in a work directory (``--work-dir``); ``--stage`` stops after one:

1. generate: ``train_sequences.jsonl``, the target's own answers to the training prompts
   (``dataset.training_prompts``): ``samples_per_prompt`` per prompt (greedy, then
   sampled), then ``follow_up_samples`` per two-turn conversation built on its greedy
   answers (``dataset.follow_ups``); and ``validation_sequences.jsonl``, greedy answers to
   the validation half of the held-out prompts (never trained on).
2. features: one target forward over every whole sequence, keeping at every position the
   hidden states of the three feature layers (fp16) and the target's argmax (what a
   greedy draft must guess), in shards on disk (``features.FeatureStore``).
3. train: the draft vocabulary is the ``draft_vocab`` most frequent of those argmax
   tokens; the output layer starts from the target's (tied) embedding rows for them;
   AdamW with warm-up and cosine decay; each batch is unrolled ``unroll`` steps
   (training-time test), step j's loss weighted ``0.8 ** j``; the shared system message
   carries no loss. Validation accuracy per step after each epoch. A checkpoint every
   ``checkpoint_seconds`` and at each epoch's end lets an interrupted run resume with
   exactly the batches it would have used.

The result is written in fp16 as safetensors plus a JSON manifest (config,
sha256 of the weights file, the training record) that the engine verifies
before it loads the head.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import structlog
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from engines.native.eagle3.dataset import (
    Conversation,
    TrainingSequence,
    follow_ups,
    generate_sequences,
    read_records,
    read_sequences,
    training_prompts,
    validation_prompts,
)
from engines.native.eagle3.features import FeatureStore, extract_features
from engines.native.eagle3.head import (
    DEFAULT_HEAD,
    Eagle3Config,
    Eagle3Head,
    default_feature_layers,
    manifest_path,
)

_log = structlog.get_logger(__name__)

SEQUENCES_FILE = "train_sequences.jsonl"
VALIDATION_FILE = "validation_sequences.jsonl"
_NOT_IN_FINGERPRINT = ("stage", "checkpoint_seconds", "run_steps", "threads", "concurrency")
"""Settings that do not change what training computes: a checkpoint survives them."""

IGNORE = -100
"""Label of positions without a target (padding, end of sequence, out of the draft vocabulary)."""


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Everything that decides the result; recorded in the manifest."""

    work_dir: Path
    output: Path = DEFAULT_HEAD
    max_tokens: int = 160
    """Longest answer generated per prompt."""
    samples_per_prompt: int = 1
    """Answers per prompt: the greedy one, then sampled ones (``dataset.answer_sampling``)."""
    follow_up_samples: int = 0
    """Answers per two-turn conversation (``dataset.follow_ups``); 0: no multi-turn data."""
    concurrency: int = 16
    """Requests the engine answers at once while generating."""
    draft_vocab: int = 4096
    ffn_dim: int = 1024
    unroll: int = 4
    epochs: int = 3
    batch_tokens: int = 1024
    learning_rate: float = 1e-3
    warmup_steps: int = 30
    seed: int = 0
    threads: int | None = None
    stage: Literal["generate", "features", "train"] = "train"
    """The last stage to run (each resumes where an earlier run stopped)."""
    checkpoint_seconds: float = 600.0
    """Training saves a checkpoint this often (and after each epoch); a new run resumes from it."""
    run_steps: int | None = None
    """Stop (with a checkpoint) after this many optimizer steps in this run; None: run to the end."""


def init_from_target(head: Eagle3Head, state: dict[str, torch.Tensor], d2t: torch.Tensor, layer: int) -> None:
    """Start from the target's own pieces where shapes allow, so few CPU steps go far.

    Output layer: the target's (tied) embedding rows of the draft vocabulary and its final
    norm. Decoder layer: the target's last layer, its attention reading the fused-feature half
    of the input (the token half starts small and random) and its feed-forward keeping the
    first ``ffn_dim`` units. ``fc`` starts as "take the high layer's features".
    """
    c = head.config
    p = f"layers.{layer}."
    with torch.no_grad():
        head.d2t.copy_(d2t)
        head.lm_head.weight.copy_(state["tok_embeddings.weight"][d2t].float())
        head.out_norm.weight.copy_(state["norm.weight"].float())
        qkv = torch.cat([state[p + f"attention.{n}.weight"] for n in ("wq", "wk", "wv")]).float()
        head.wqkv.weight[:, c.dim :].copy_(qkv)
        head.wqkv.weight[:, : c.dim].mul_(0.1)
        head.wo.weight.copy_(state[p + "attention.wo.weight"].float())
        head.hidden_norm.weight.copy_(state[p + "attention_norm.weight"].float())
        head.ffn_norm.weight.copy_(state[p + "ffn_norm.weight"].float())
        units = min(c.ffn_dim, state[p + "feed_forward.w1.weight"].shape[0])
        head.w13.weight[:units].copy_(state[p + "feed_forward.w1.weight"][:units].float())
        up = state[p + "feed_forward.w3.weight"][:units].float()
        head.w13.weight[c.ffn_dim : c.ffn_dim + units].copy_(up)
        head.w2.weight[:, :units].copy_(state[p + "feed_forward.w2.weight"][:, :units].float())
        head.fc.weight.mul_(0.05)
        head.fc.weight[:, 2 * c.dim :].add_(torch.eye(c.dim))


def choose_draft_vocab(features: FeatureStore, size: int, target_vocab: int) -> tuple[torch.Tensor, float]:
    """The ``size`` most frequent target predictions (sorted ids) and the share of predictions they cover."""
    counts = features.argmax_counts(target_vocab)
    ranked = np.argsort(-counts, kind="stable")[: min(size, target_vocab)]
    chosen = np.sort(ranked)
    covered = float(counts[chosen].sum()) / max(1, int(counts.sum()))
    return torch.from_numpy(chosen.astype(np.int64)), covered


def _batches(lengths: Sequence[int], batch_tokens: int, rng: random.Random) -> list[list[int]]:
    """Sequences of similar length together (little padding), in a shuffled order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (len(current) + 1) * lengths[index] > batch_tokens:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def _collate(
    features: FeatureStore, indices: Sequence[int], t2d: torch.Tensor, unroll: int, loss_from: int = 0
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Padded features [B, L, 3d], tokens [B, L + unroll] and per-step labels [B, L].

    Predictions of the first ``loss_from`` tokens (the chat template's system message,
    the same in every sequence) carry no label.
    """
    lengths = [features.length(i) for i in indices]
    length = max(lengths)
    hidden = torch.zeros(len(indices), length, features.feature_width())
    tokens = torch.zeros(len(indices), length + unroll, dtype=torch.long)
    argmax = torch.full((len(indices), length + unroll), IGNORE, dtype=torch.long)
    for row, (i, n) in enumerate(zip(indices, lengths, strict=True)):
        hidden[row, :n] = features.hidden(i)
        tokens[row, :n] = features.tokens(i)
        argmax[row, :n] = t2d[features.argmax(i)]
    # argmax[p] is the target's choice of token p + 1.
    argmax[:, : max(0, loss_from - 1)] = IGNORE
    # Step j (1-based) at position p predicts the target's choice at position p + j.
    labels = [argmax[:, j : j + length] for j in range(1, unroll + 1)]
    return hidden, tokens, labels


def _unrolled_loss(
    head: Eagle3Head, embeddings: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    hidden, tokens, labels = batch
    step_logits = head.unroll(hidden, tokens, embeddings, len(labels))
    total = torch.zeros(())
    hits: list[tuple[int, int]] = []
    for step, (logits, target) in enumerate(zip(step_logits, labels, strict=True)):
        flat_target = target.reshape(-1)
        valid = flat_target != IGNORE
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), flat_target, ignore_index=IGNORE)
        total = total + (0.8**step) * loss
        correct = (logits.argmax(-1).reshape(-1) == flat_target) & valid
        hits.append((int(correct.sum()), int(valid.sum())))
    return total, hits


def default_work_dir() -> Path:
    """``$TOKENWIRE_CACHE_DIR/eagle3`` (default ``~/.cache/tokenwire/eagle3``)."""
    from engines.native.weights import default_cache_dir

    return default_cache_dir() / "eagle3"


def shared_prefix_length(sequences: Sequence[TrainingSequence]) -> int:
    """Tokens every prompt starts with (the chat template's system message)."""
    if not sequences:
        return 0
    first = sequences[0].prompt
    length = len(first)
    for sequence in sequences[1:]:
        prompt = sequence.prompt
        length = min(length, len(prompt))
        while length and prompt[:length] != first[:length]:
            length -= 1
    return length


def generate_data(settings: TrainSettings) -> None:
    """Stage 1: answers to the training prompts, then the multi-turn follow-ups, then validation."""
    work = settings.work_dir
    prompts = training_prompts()
    sequences_path = work / SEQUENCES_FILE

    def run(items: Sequence[str | Conversation], path: Path, samples: int) -> None:
        asyncio.run(
            generate_sequences(
                items,
                path,
                max_tokens=settings.max_tokens,
                concurrency=settings.concurrency,
                threads=settings.threads,
                samples=samples,
            )
        )

    run(prompts, sequences_path, settings.samples_per_prompt)
    if settings.follow_up_samples:
        from engines.native.tokenizer import NativeTokenizer
        from engines.native.weights import default_gguf_path, load_weights

        tokenizer = NativeTokenizer(load_weights(default_gguf_path(), None, None).tokenizer)
        wanted = set(prompts)
        records = [r for r in read_records(sequences_path) if r.get("text") in wanted]
        conversations = follow_ups(records, tokenizer.decode)
        run(conversations, sequences_path, settings.follow_up_samples)
    run(validation_prompts(), work / VALIDATION_FILE, 1)


def _fingerprint(settings: TrainSettings, sequences: int, d2t: torch.Tensor) -> str:
    relevant = {k: v for k, v in _settings_dict(settings).items() if k not in _NOT_IN_FINGERPRINT}
    described = json.dumps(
        {"settings": relevant, "sequences": sequences, "d2t": d2t.tolist()}, sort_keys=True
    )
    return hashlib.sha256(described.encode()).hexdigest()


def train_with(work_dir: Path | None, **overrides: object) -> dict[str, object]:
    """``tokenwire train-draft``: ``train`` with ``TrainSettings`` fields named in ``overrides``.

    Overrides given as None keep the defaults; ``work_dir`` None means ``default_work_dir()``.
    """
    unknown = set(overrides) - set(TrainSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"not training settings: {sorted(unknown)}")
    given = {name: value for name, value in overrides.items() if value is not None}
    base = TrainSettings(work_dir=work_dir or default_work_dir())
    settings = replace(base, **given)  # type: ignore[arg-type]  # names checked above
    return train(settings)


def train(settings: TrainSettings) -> dict[str, object]:
    """Run (or resume) the stages up to ``settings.stage``; write the head after training.

    Returns the training record (empty when it stops before training).
    """
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    generate_data(settings)
    if settings.stage == "generate":
        return {}
    return train_from_data(settings, generated_s=time.monotonic() - started)


def train_from_data(settings: TrainSettings, *, generated_s: float = 0.0) -> dict[str, object]:
    """Stages 2 and 3 over the sequences already in the work directory."""
    torch.manual_seed(settings.seed)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    work = settings.work_dir
    started = time.monotonic() - generated_s
    sequences = read_sequences(work / SEQUENCES_FILE)
    validation = read_sequences(work / VALIDATION_FILE)
    layers = default_feature_layers(_target_layers())
    features = extract_features(sequences, work / "features", layers, settings.threads)
    valid_features = extract_features(validation, work / "features-validation", layers, settings.threads)
    features_s = time.monotonic() - started - generated_s
    if settings.stage == "features":
        return {}

    from engines.native.matrices import dense_state_dict
    from engines.native.weights import default_gguf_path, load_weights

    weights = load_weights(default_gguf_path(), None, None)
    target = weights.config
    state = dense_state_dict(weights.state_dict)
    embeddings = state["tok_embeddings.weight"]
    d2t, coverage = choose_draft_vocab(features, settings.draft_vocab, target.vocab_size)
    t2d = torch.full((target.vocab_size + 1,), IGNORE, dtype=torch.long)
    t2d[d2t] = torch.arange(len(d2t))
    config = Eagle3Config(
        dim=target.dim,
        n_heads=target.n_heads,
        n_kv_heads=target.n_kv_heads,
        head_dim=target.head_dim,
        ffn_dim=settings.ffn_dim,
        draft_vocab_size=len(d2t),
        target_vocab_size=target.vocab_size,
        feature_layers=layers,
        norm_eps=target.norm_eps,
        rope_theta=target.rope_theta,
    )
    lengths = features.lengths()
    longest = max(lengths + valid_features.lengths()) + settings.unroll
    head = Eagle3Head(config, max_seq=longest)
    init_from_target(head, state, d2t, target.n_layers - 1)
    loss_from = shared_prefix_length(sequences)

    plan = _batches(lengths, settings.batch_tokens, random.Random(settings.seed))
    total_steps = settings.epochs * len(plan)
    optimizer = torch.optim.AdamW(head.parameters(), lr=settings.learning_rate, weight_decay=0.0)

    def lr_at(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, total_steps - settings.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    fingerprint = _fingerprint(settings, len(sequences), d2t)
    checkpoint_path = work / "train-checkpoint.pt"
    step = 0
    history: list[dict[str, object]] = []
    trained_s = 0.0
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, weights_only=False)
        if saved.get("fingerprint") == fingerprint:
            head.load_state_dict(saved["head"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            step, history, trained_s = int(saved["step"]), list(saved["history"]), float(saved["seconds"])
            _log.info("draft_train_resumed", step=step, of=total_steps)
        else:
            _log.info("draft_train_checkpoint_ignored", reason="settings or data changed")
    train_tokens = sum(lengths)
    _log.info(
        "draft_train_start",
        sequences=len(lengths),
        tokens=train_tokens,
        batches=len(plan),
        epochs=settings.epochs,
        draft_vocab=len(d2t),
        coverage=round(coverage, 4),
        loss_from=loss_from,
    )

    def save_checkpoint() -> None:
        scratch = checkpoint_path.with_suffix(".tmp")
        torch.save(
            {
                "fingerprint": fingerprint,
                "head": head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "history": history,
                "seconds": trained_s + time.monotonic() - session_started,
            },
            scratch,
        )
        scratch.replace(checkpoint_path)

    session_started = time.monotonic()
    last_saved = session_started
    first_step = step
    valid_ids = list(range(len(valid_features)))
    answers_from = {i: len(validation[i].prompt) for i in valid_ids}

    def paused() -> bool:
        return settings.run_steps is not None and step - first_step >= settings.run_steps

    while step < total_steps:
        if paused():
            save_checkpoint()
            _log.info("draft_train_paused", step=step, of=total_steps)
            return {}
        epoch, number = divmod(step, len(plan))
        # Each epoch's order comes from the seed and the epoch alone, so a resumed run
        # continues with exactly the batches an uninterrupted one would have used.
        order = list(plan)
        random.Random(settings.seed * 1_000_003 + epoch).shuffle(order)
        running, counted = 0.0, 0
        for batch_ids in order[number:]:
            if paused():
                break
            batch = _collate(features, batch_ids, t2d, settings.unroll, loss_from)
            loss, _ = _unrolled_loss(head, embeddings, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            running += float(loss.detach())
            counted += 1
            if step % 50 == 0:
                _log.info(
                    "draft_train_progress",
                    epoch=epoch + 1,
                    step=step,
                    of=total_steps,
                    loss=round(running / counted, 4),
                    seconds=round(trained_s + time.monotonic() - session_started),
                )
                running, counted = 0.0, 0
            if time.monotonic() - last_saved >= settings.checkpoint_seconds:
                save_checkpoint()
                last_saved = time.monotonic()
        if step < (epoch + 1) * len(plan):  # paused inside the epoch: the loop's top saves
            continue
        accuracy = evaluate(head, embeddings, valid_features, valid_ids, t2d, settings.unroll, answers_from)
        history.append({"epoch": epoch + 1, "validation_step_accuracy": accuracy})
        _log.info("draft_train_epoch", epoch=epoch + 1, validation_step_accuracy=accuracy)
        save_checkpoint()
        last_saved = time.monotonic()
    train_s = trained_s + time.monotonic() - session_started
    records = read_records(work / SEQUENCES_FILE)
    record: dict[str, object] = {
        "prompts": len(training_prompts()),
        "sequences": len(sequences),
        "multi_turn_sequences": sum(1 for r in records if "turns" in r),
        "sampled_sequences": sum(1 for r in records if int(str(r.get("sample", 0))) > 0),
        "train_tokens": train_tokens,
        "generated_answer_tokens": sum(len(s.answer) for s in sequences),
        "loss_from_position": loss_from,
        "validation": {"prompts": len(validation_prompts()), "sequences": len(validation)},
        "draft_vocab_coverage": round(coverage, 4),
        "optimizer_steps": step,
        "history": history,
        "seconds": {"generate": round(generated_s), "features": round(features_s), "train": round(train_s)},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in _settings_dict(settings).items()},
    }
    save_head(head, settings.output, record)
    return record


def _target_layers() -> int:
    from engines.native.weights import default_gguf_path, load_weights

    return load_weights(default_gguf_path(), None, None).config.n_layers


def evaluate(
    head: Eagle3Head,
    embeddings: torch.Tensor,
    features: FeatureStore,
    ids: Sequence[int],
    t2d: torch.Tensor,
    unroll: int,
    answers_from: dict[int, int],
) -> list[float]:
    """Per unrolled step: the share of answer tokens whose draft argmax is the target's choice.

    Only predictions of answer tokens count (``answers_from``: each sequence's prompt length).
    """
    totals = [[0, 0] for _ in range(unroll)]
    with torch.no_grad():
        for start in range(0, len(ids), 8):
            chunk = ids[start : start + 8]
            hidden, tokens, labels = _collate(features, chunk, t2d, unroll)
            for step, label in enumerate(labels, start=1):
                for row, i in enumerate(chunk):
                    # Step j at position p predicts token p + j + 1, an answer token from p = prompt - j - 1.
                    label[row, : max(0, answers_from[i] - step - 1)] = IGNORE
            _, hits = _unrolled_loss(head, embeddings, (hidden, tokens, labels))
            for total, (correct, valid) in zip(totals, hits, strict=True):
                total[0] += correct
                total[1] += valid
    return [round(c / max(1, v), 4) for c, v in totals]


def _settings_dict(settings: TrainSettings) -> dict[str, object]:
    return {
        name: getattr(settings, name)
        for name in settings.__dataclass_fields__
        if name not in ("work_dir", "output")
    }


def save_head(head: Eagle3Head, path: Path, record: dict[str, object]) -> None:
    """fp16 safetensors + manifest with the sha256 the loader checks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: t.detach().to(torch.float16).contiguous()
        for name, t in head.state_dict().items()
        if name != "d2t"
    }
    tensors["d2t"] = head.d2t.to(torch.int32).contiguous()
    save_file(tensors, str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = {"config": head.config.to_json(), "sha256": digest, "training": record}
    manifest_path(path).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _log.info("draft_head_saved", path=str(path), sha256=digest, bytes=path.stat().st_size)
