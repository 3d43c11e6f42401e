"""What the EAGLE-3 head learns from, kept on disk in shards: ``train-draft``'s second stage.

For every sequence (prompt and answer) the target runs once over the whole of it and
we keep, at every position, the token, the target's argmax (what a greedy draft must
guess) and the hidden states after the three feature layers (fp16). Millions of tokens
of 3 x 576 fp16 features are ~10 GB: more than a training process should hold, so the
features go to disk as shards of consecutive sequences, each a directory

    features/<start:08d>-<end:08d>/{tokens,argmax}.npy (int32 [T]), hidden.npy (fp16 [T, 3d]),
                                   offsets.npy (int64 [end - start + 1])

written under a temporary name and renamed when complete, so an interrupted run leaves
no half shard, and a resumed one starts after the last complete shard. Training reads
them memory-mapped (``FeatureStore``): the OS keeps what fits in its page cache.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import structlog
import torch

from engines.native.eagle3.dataset import TrainingSequence

_log = structlog.get_logger(__name__)

SHARD_SEQUENCES = 512
"""Sequences per shard (~100k tokens, ~350 MB of features at SmolLM2's width)."""

_FILES = ("tokens", "argmax", "hidden", "offsets")


def _shard_name(start: int, end: int) -> str:
    return f"{start:08d}-{end:08d}"


class FeatureStore:
    """The complete shards under ``root``, memory-mapped, indexed by sequence number.

    Shards must chain from sequence 0 without gaps; a shard that does not continue the
    chain (left from a different sequences file) is an error, not silently skipped.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tokens: list[npt.NDArray[np.int32]] = []
        self._argmax: list[npt.NDArray[np.int32]] = []
        self._hidden: list[npt.NDArray[np.float16]] = []
        self._offsets: list[npt.NDArray[np.int64]] = []
        self._where: list[tuple[int, int]] = []  # sequence -> (shard, index in shard)
        for path in sorted(root.glob("*-*")) if root.exists() else []:
            if not path.is_dir() or path.name.endswith(".tmp"):
                continue
            start, end = (int(part) for part in path.name.split("-"))
            if start != len(self._where):
                raise ValueError(f"{path}: expected a shard starting at {len(self._where)}")
            self._load(path, end - start)

    def _load(self, path: Path, count: int) -> None:
        def load(name: str) -> npt.NDArray[np.generic]:
            array: npt.NDArray[np.generic] = np.load(path / f"{name}.npy", mmap_mode="r")
            return array

        offsets = load("offsets").astype(np.int64)
        tokens, argmax, hidden = load("tokens"), load("argmax"), load("hidden")
        total = int(offsets[-1]) if len(offsets) else 0
        if len(offsets) != count + 1 or len(tokens) != total or len(argmax) != total or len(hidden) != total:
            raise ValueError(f"{path}: the shard's arrays do not agree with its name")
        shard = len(self._offsets)
        self._offsets.append(offsets)
        self._tokens.append(tokens.view(np.int32))
        self._argmax.append(argmax.view(np.int32))
        self._hidden.append(hidden.view(np.float16))
        self._where.extend((shard, i) for i in range(count))

    def __len__(self) -> int:
        return len(self._where)

    def _span(self, index: int) -> tuple[int, int, int]:
        shard, i = self._where[index]
        offsets = self._offsets[shard]
        return shard, int(offsets[i]), int(offsets[i + 1])

    def length(self, index: int) -> int:
        _, a, b = self._span(index)
        return b - a

    def lengths(self) -> list[int]:
        return [int(b - a) for offsets in self._offsets for a, b in itertools.pairwise(offsets)]

    def tokens(self, index: int) -> torch.Tensor:
        shard, a, b = self._span(index)
        return torch.from_numpy(np.array(self._tokens[shard][a:b], dtype=np.int64))

    def argmax(self, index: int) -> torch.Tensor:
        shard, a, b = self._span(index)
        return torch.from_numpy(np.array(self._argmax[shard][a:b], dtype=np.int64))

    def hidden(self, index: int) -> torch.Tensor:
        """fp32 ``[L, 3 dim]`` (a copy: the store stays read-only)."""
        shard, a, b = self._span(index)
        return torch.from_numpy(np.array(self._hidden[shard][a:b], dtype=np.float32))

    def feature_width(self) -> int:
        return int(self._hidden[0].shape[1]) if self._hidden else 0

    def argmax_counts(self, vocab: int) -> npt.NDArray[np.int64]:
        """How often the target predicts each token over all stored positions."""
        counts = np.zeros(vocab, dtype=np.int64)
        for argmax in self._argmax:
            counts += np.bincount(argmax, minlength=vocab)[:vocab]
        return counts

    def total_tokens(self) -> int:
        return sum(int(offsets[-1]) for offsets in self._offsets)


def write_shard(
    root: Path,
    start: int,
    tokens: Sequence[torch.Tensor],
    argmax: Sequence[torch.Tensor],
    hidden: Sequence[torch.Tensor],
) -> Path:
    """Write sequences ``start .. start + len(tokens)`` as one shard, atomically."""
    root.mkdir(parents=True, exist_ok=True)
    end = start + len(tokens)
    final = root / _shard_name(start, end)
    scratch = root / (final.name + ".tmp")
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    lengths = [len(t) for t in tokens]
    offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    arrays: dict[str, npt.NDArray[np.generic]] = {
        "tokens": torch.cat(list(tokens)).to(torch.int32).numpy(),
        "argmax": torch.cat(list(argmax)).to(torch.int32).numpy(),
        "hidden": torch.cat(list(hidden)).to(torch.float16).numpy(),
        "offsets": offsets,
    }
    for name in _FILES:
        np.save(scratch / f"{name}.npy", arrays[name])
    scratch.rename(final)
    return final


def extract_features(
    sequences: Sequence[TrainingSequence],
    root: Path,
    layers: tuple[int, int, int],
    threads: int | None,
    *,
    shard_sequences: int = SHARD_SEQUENCES,
) -> FeatureStore:
    """Add shards for every sequence ``root`` lacks (sequences are appended, never reordered)."""
    from engines.native.kv_cache import KVCache
    from engines.native.model import Transformer
    from engines.native.weights import default_gguf_path, load_weights

    have = len(FeatureStore(root))
    if have > len(sequences):
        raise ValueError(f"{root} holds features of {have} sequences; the data has only {len(sequences)}")
    if have == len(sequences):
        return FeatureStore(root)
    if threads is not None:
        torch.set_num_threads(threads)
    weights = load_weights(default_gguf_path(), None, None)
    config = weights.config
    longest = max(len(s.tokens) for s in sequences[have:])
    started = time.monotonic()
    with torch.inference_mode():
        model = Transformer.from_weights(config, weights.state_dict, max_seq=longest)
        cache = KVCache(
            n_layers=config.n_layers,
            max_slots=1,
            n_kv_heads=config.n_kv_heads,
            max_seq=longest,
            head_dim=config.head_dim,
        )
        for start in range(have, len(sequences), shard_sequences):
            chunk = sequences[start : start + shard_sequences]
            tokens, argmax, hidden = [], [], []
            for sequence in chunk:
                ids = torch.tensor([sequence.tokens], dtype=torch.long)
                logits, features = model.forward_with_features(ids, [0], [0], cache, layers, all_logits=True)
                tokens.append(ids[0].clone())
                argmax.append(logits[0].argmax(-1))
                hidden.append(features[0].to(torch.float16))
            write_shard(root, start, tokens, argmax, hidden)
            _log.info(
                "draft_features_progress",
                done=start + len(chunk),
                total=len(sequences),
                seconds=round(time.monotonic() - started, 1),
            )
    return FeatureStore(root)
