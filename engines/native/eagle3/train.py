"""Train the EAGLE-3 head for SmolLM2-135M-Instruct on this CPU: ``tokenwire train-draft``.

Three resumable stages in a work directory (``--work-dir``):

1. ``train_sequences.jsonl``: the target's greedy answers to ``data/train_prompts.txt``
   (``dataset.generate_sequences``).
2. ``features.pt``: one target forward over every whole sequence, keeping the
   hidden states of the three feature layers (fp16) and the target's argmax at
   every position (what a greedy draft must guess).
3. training: the draft vocabulary is the ``draft_vocab`` most frequent of those
   argmax tokens; the output layer starts from the target's (tied) embedding
   rows for them; AdamW with warm-up and cosine decay; each batch is unrolled
   ``unroll`` steps (training-time test), step j's loss weighted ``0.8 ** j``.
   A few sequences are held out to report per-step accuracy.

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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from engines.native.eagle3.dataset import (
    TRAIN_PROMPTS,
    TrainingSequence,
    generate_sequences,
    read_prompts,
    read_sequences,
)
from engines.native.eagle3.head import (
    DEFAULT_HEAD,
    Eagle3Config,
    Eagle3Head,
    default_feature_layers,
    manifest_path,
)

_log = structlog.get_logger(__name__)

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
    concurrency: int = 16
    draft_vocab: int = 4096
    ffn_dim: int = 1024
    unroll: int = 4
    epochs: int = 3
    batch_tokens: int = 1024
    learning_rate: float = 1e-3
    warmup_steps: int = 30
    validation_sequences: int = 24
    seed: int = 0
    threads: int | None = None


@dataclass(slots=True)
class Features:
    """Per sequence: tokens [L], target argmax [L] and features [L, 3 dim] (fp16)."""

    tokens: list[torch.Tensor] = field(default_factory=list)
    argmax: list[torch.Tensor] = field(default_factory=list)
    hidden: list[torch.Tensor] = field(default_factory=list)


def extract_features(
    sequences: Sequence[TrainingSequence], layers: tuple[int, int, int], threads: int | None
) -> Features:
    """Run the target once over each whole sequence (its answer included)."""
    from engines.native.kv_cache import KVCache
    from engines.native.model import Transformer
    from engines.native.weights import default_gguf_path, load_weights

    if threads is not None:
        torch.set_num_threads(threads)
    weights = load_weights(default_gguf_path(), None, None)
    config = weights.config
    longest = max(len(s.tokens) for s in sequences)
    result = Features()
    with torch.inference_mode():
        model = Transformer.from_weights(config, weights.state_dict, max_seq=longest)
        cache = KVCache(
            n_layers=config.n_layers,
            max_slots=1,
            n_kv_heads=config.n_kv_heads,
            max_seq=longest,
            head_dim=config.head_dim,
        )
        started = time.monotonic()
        for index, sequence in enumerate(sequences):
            tokens = torch.tensor([sequence.tokens], dtype=torch.long)
            logits, hidden = model.forward_with_features(tokens, [0], [0], cache, layers, all_logits=True)
            result.tokens.append(tokens[0].clone())
            result.argmax.append(logits[0].argmax(-1))
            result.hidden.append(hidden[0].to(torch.float16))
            if (index + 1) % 100 == 0:
                _log.info(
                    "draft_features_progress",
                    done=index + 1,
                    total=len(sequences),
                    seconds=round(time.monotonic() - started, 1),
                )
    return result


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


def choose_draft_vocab(features: Features, size: int, target_vocab: int) -> tuple[torch.Tensor, float]:
    """The ``size`` most frequent target predictions (sorted ids) and the share of predictions they cover."""
    counts: Counter[int] = Counter()
    for argmax in features.argmax:
        counts.update(argmax.tolist())
    chosen = sorted(token for token, _ in counts.most_common(min(size, target_vocab)))
    covered = sum(counts[t] for t in chosen) / max(1, sum(counts.values()))
    return torch.tensor(chosen, dtype=torch.long), covered


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
    features: Features, indices: Sequence[int], t2d: torch.Tensor, unroll: int
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Padded features [B, L, 3d], tokens [B, L + unroll] and per-step labels [B, L]."""
    length = max(len(features.tokens[i]) for i in indices)
    dim3 = features.hidden[indices[0]].shape[-1]
    hidden = torch.zeros(len(indices), length, dim3)
    tokens = torch.zeros(len(indices), length + unroll, dtype=torch.long)
    argmax = torch.full((len(indices), length + unroll), IGNORE, dtype=torch.long)
    for row, i in enumerate(indices):
        n = len(features.tokens[i])
        hidden[row, :n] = features.hidden[i].float()
        tokens[row, :n] = features.tokens[i]
        argmax[row, :n] = t2d[features.argmax[i]]
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


def train(settings: TrainSettings) -> dict[str, object]:
    """Run (or resume) the three stages and write the head; returns the training record."""
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    work = settings.work_dir
    work.mkdir(parents=True, exist_ok=True)
    sequences_path = work / "train_sequences.jsonl"
    started = time.monotonic()
    prompts = read_prompts(TRAIN_PROMPTS)
    asyncio.run(
        generate_sequences(
            prompts,
            sequences_path,
            max_tokens=settings.max_tokens,
            concurrency=settings.concurrency,
            threads=settings.threads,
            samples=settings.samples_per_prompt,
        )
    )
    generated_s = time.monotonic() - started
    sequences = read_sequences(sequences_path)

    from engines.native.matrices import dense_state_dict
    from engines.native.weights import default_gguf_path, load_weights

    weights = load_weights(default_gguf_path(), None, None)
    target = weights.config
    state = dense_state_dict(weights.state_dict)
    embeddings = state["tok_embeddings.weight"]
    layers = default_feature_layers(target.n_layers)
    features_path = work / "features.pt"
    # Features are kept in sequence order; sequences appended since the last run are added.
    features = Features(**torch.load(features_path)) if features_path.exists() else Features()
    if len(features.tokens) < len(sequences):
        more = extract_features(sequences[len(features.tokens) :], layers, settings.threads)
        features.tokens += more.tokens
        features.argmax += more.argmax
        features.hidden += more.hidden
        torch.save(
            {"tokens": features.tokens, "argmax": features.argmax, "hidden": features.hidden}, features_path
        )
    features_s = time.monotonic() - started - generated_s

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
    longest = max(len(t) for t in features.tokens) + settings.unroll
    head = Eagle3Head(config, max_seq=longest)
    init_from_target(head, state, d2t, target.n_layers - 1)

    indices = list(range(len(features.tokens)))
    rng.shuffle(indices)
    held_out, train_ids = indices[: settings.validation_sequences], indices[settings.validation_sequences :]
    lengths = [len(features.tokens[i]) for i in train_ids]
    plan = [[train_ids[j] for j in b] for b in _batches(lengths, settings.batch_tokens, rng)]
    total_steps = settings.epochs * len(plan)
    optimizer = torch.optim.AdamW(head.parameters(), lr=settings.learning_rate, weight_decay=0.0)

    def lr_at(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, total_steps - settings.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    train_tokens = sum(lengths)
    _log.info(
        "draft_train_start",
        sequences=len(train_ids),
        tokens=train_tokens,
        batches=len(plan),
        epochs=settings.epochs,
        draft_vocab=len(d2t),
        coverage=round(coverage, 4),
    )
    history: list[dict[str, object]] = []
    step = 0
    train_started = time.monotonic()
    for epoch in range(settings.epochs):
        rng.shuffle(plan)
        running = 0.0
        for number, batch_ids in enumerate(plan):
            loss, _ = _unrolled_loss(head, embeddings, _collate(features, batch_ids, t2d, settings.unroll))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            running += float(loss.detach())
            if (number + 1) % 25 == 0:
                _log.info(
                    "draft_train_progress",
                    epoch=epoch + 1,
                    batch=number + 1,
                    of=len(plan),
                    loss=round(running / 25, 4),
                    seconds=round(time.monotonic() - train_started),
                )
                running = 0.0
        answers_from = {i: len(sequences[i].prompt) for i in held_out}
        accuracy = evaluate(head, embeddings, features, held_out, t2d, settings.unroll, answers_from)
        history.append({"epoch": epoch + 1, "validation_step_accuracy": accuracy})
        _log.info("draft_train_epoch", epoch=epoch + 1, validation_step_accuracy=accuracy)
    train_s = time.monotonic() - train_started
    record: dict[str, object] = {
        "prompts": len(prompts),
        "sequences": len(sequences),
        "train_tokens": train_tokens,
        "validation_sequences": len(held_out),
        "draft_vocab_coverage": round(coverage, 4),
        "optimizer_steps": step,
        "history": history,
        "seconds": {"generate": round(generated_s), "features": round(features_s), "train": round(train_s)},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in _settings_dict(settings).items()},
    }
    save_head(head, settings.output, record)
    return record


def evaluate(
    head: Eagle3Head,
    embeddings: torch.Tensor,
    features: Features,
    ids: Sequence[int],
    t2d: torch.Tensor,
    unroll: int,
    answers_from: dict[int, int],
) -> list[float]:
    """Per unrolled step: the share of answer tokens whose draft argmax is the target's choice.

    Only predictions of answer tokens count (``answers_from``: each sequence's prompt length):
    the prompts share a system message the head learns by heart, which would flatter it.
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
