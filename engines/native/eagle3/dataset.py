"""Training data for the EAGLE-3 head: the target model's own answers to a committed prompt set.

Step 1 (``generate_sequences``): every prompt of ``data/train_prompts.txt`` is
rendered with the model's chat template and answered by the native engine
itself (speculation off), so the sequences are exactly what the target produces
when it serves: answer 0 greedily, answers 1.. (``samples`` > 1) sampled at
``SAMPLED_TEMPERATURE`` with a seed per (prompt, answer), which gives the head
the target's other likely continuations too. Each finished sequence is appended
to a JSONL file at once, keyed by prompt and answer number, so an interrupted
run resumes where it stopped.

Step 2 (``extract_features``, in ``features``) runs the target once over every
whole sequence and keeps what the head learns from.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from engines.contract import (
    ChatMessage,
    EngineRequest,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    StoppingParams,
    TokenId,
)

_log = structlog.get_logger(__name__)

DATA_DIR = Path(__file__).parent / "data"
TRAIN_PROMPTS = DATA_DIR / "train_prompts.txt"
"""Instructions the head is trained on (composed for this repository)."""
HELDOUT_PROMPTS = DATA_DIR / "heldout_prompts.txt"
"""Instructions it never sees in training: acceptance is measured on these."""
TRAIN_COMPOSED = DATA_DIR / "train_prompts_composed.jsonl"
"""More varied instructions (code, lists, rewriting, structured output, ...): ``compose_prompts``."""
HELDOUT_COMPOSED = DATA_DIR / "heldout_prompts_composed.jsonl"
"""Their held-out counterpart, built only from held-out materials."""


SAMPLED_TEMPERATURE = 0.8
"""Temperature of the sampled answers (answer 0 is greedy)."""

Conversation = tuple[str, ...]
"""Turns of a chat, user first, alternating user / assistant, ending with a user turn."""

FOLLOW_UPS = (
    "Can you make that shorter?",
    "Give me a concrete example.",
    "Now put that as a bulleted list.",
    "Explain that to a ten-year-old.",
    "Why is that?",
    "Rewrite that in a more formal tone.",
    "What is the most important point there?",
    "Can you say more about the second part?",
    "Summarize your answer in one sentence.",
    "Thanks! What should I do next?",
    "Is there anything you left out?",
    "Turn that into a short poem.",
    "What would be a common mistake here?",
    "Give me three follow-up questions I could ask.",
    "Make it sound more friendly.",
    "Can you add a title to that?",
    "How would an expert put it?",
    "Please continue.",
    "Rewrite your answer as a numbered list of steps.",
    "What are the pros and cons?",
)
"""Second user turns for the multi-turn sequences (``follow_ups``); one per conversation, by hash."""


@dataclass(frozen=True, slots=True)
class TrainingSequence:
    """One chat prompt and the target's answer to it, as token ids."""

    prompt: tuple[int, ...]
    answer: tuple[int, ...]

    @property
    def tokens(self) -> tuple[int, ...]:
        return self.prompt + self.answer


def read_prompts(path: Path) -> list[str]:
    """A prompt file: non-empty lines of ``.txt``; one JSON string per line of ``.jsonl``.

    A missing ``.jsonl`` file reads as empty (the composed sets are optional extras).
    """
    if path.suffix == ".jsonl":
        if not path.exists():
            return []
        prompts = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                text = json.loads(line)
                if not isinstance(text, str) or not text.strip():
                    raise ValueError(f"{path}: every line must be a non-empty JSON string")
                prompts.append(text)
        return prompts
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def training_prompts() -> list[str]:
    """Every instruction the head may be trained on: the first set, then the composed one."""
    return read_prompts(TRAIN_PROMPTS) + read_prompts(TRAIN_COMPOSED)


def heldout_prompts() -> list[str]:
    """Every held-out instruction: never trained on."""
    return read_prompts(HELDOUT_PROMPTS) + read_prompts(HELDOUT_COMPOSED)


def validation_prompts() -> list[str]:
    """Half of the held-out prompts (even positions): validation during training and tuning."""
    return heldout_prompts()[0::2]


def benchmark_prompts() -> list[str]:
    """The other half (odd positions): only the final benchmarks read these."""
    return heldout_prompts()[1::2]


def _key(record: dict[str, object]) -> Conversation:
    turns = record.get("turns")
    if isinstance(turns, list):
        return tuple(str(t) for t in turns)
    return (str(record["text"]),)


def read_sequences(path: Path) -> list[TrainingSequence]:
    """Sequences written by ``generate_sequences`` (empty if the file does not exist)."""
    if not path.exists():
        return []
    sequences = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        sequences.append(TrainingSequence(tuple(record["prompt"]), tuple(record["answer"])))
    return sequences


def read_records(path: Path) -> list[dict[str, object]]:
    """The raw records of a sequences file, in order (empty if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _answered(path: Path) -> set[tuple[Conversation, int]]:
    """(conversation, answer number) pairs already in ``path`` (records without a number are answer 0)."""
    return {(_key(record), int(str(record.get("sample", 0)))) for record in read_records(path)}


def answer_sampling(text: str | Conversation, sample: int) -> SamplingParams:
    """Answer 0: greedy. Others: sampled, with a seed fixed by the prompt and the answer number."""
    if sample == 0:
        return SamplingParams(temperature=0.0)
    key = text if isinstance(text, str) else "\x1e".join(text)
    digest = hashlib.blake2b(f"{sample}:{key}".encode(), digest_size=8).digest()
    return SamplingParams(temperature=SAMPLED_TEMPERATURE, seed=int.from_bytes(digest, "little") >> 1)


def follow_ups(
    records: Sequence[dict[str, object]], decode: Callable[[Sequence[int]], str]
) -> list[Conversation]:
    """Two-turn conversations from the greedy single-turn answers among ``records``.

    Each is (the prompt, the target's own greedy answer, a follow-up from ``FOLLOW_UPS``
    chosen by a hash of the prompt), so the head also learns from the target answering with
    its earlier answer in context, as a multi-turn chat client sends it.
    """
    conversations: list[Conversation] = []
    for record in records:
        if "turns" in record or int(str(record.get("sample", 0))) != 0:
            continue
        text = str(record["text"])
        answer = record["answer"]
        if not isinstance(answer, list):
            raise ValueError("a record's answer must be a list of token ids")
        reply = decode([int(t) for t in answer]).strip()
        if not reply:
            continue
        pick = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")
        conversations.append((text, reply, FOLLOW_UPS[pick % len(FOLLOW_UPS)]))
    return conversations


async def generate_sequences(
    prompts: Sequence[str | Conversation],
    out_path: Path,
    *,
    max_tokens: int,
    concurrency: int,
    threads: int | None = None,
    samples: int = 1,
) -> None:
    """Give every prompt ``samples`` answers (the first greedy) that ``out_path`` lacks; append them.

    A prompt is one user message, or a conversation (``Conversation``) answered as its
    last user turn.
    """
    # Imported here: the engine pulls in torch and the weights, the readers above do not.
    from engines.native.engine import NativeEngine, NativeEngineConfig

    done = _answered(out_path)
    conversations: list[Conversation] = [(p,) if isinstance(p, str) else tuple(p) for p in prompts]
    todo = [(c, k) for k in range(samples) for c in conversations if (c, k) not in done]
    _log.info("draft_data_generate", prompts=len(prompts), already_done=len(done), todo=len(todo))
    if not todo:
        return
    # Prompts admitted together share one forward pass, and the KV budget holds every answer at
    # once: 10% more tokens/s than the serving defaults at concurrency 64, same greedy tokens
    # (96 training prompts, 18,409 tokens, 2-core Xeon: 152 -> 168 tokens/s).
    engine = NativeEngine(
        NativeEngineConfig(
            max_batch_size=concurrency,
            speculation=SpeculationMethod.OFF,
            draft_head=None,
            threads=threads,
            prefill="batched",
            kv_cache_mb=max(768, 32 * concurrency),
        )
    )
    await engine.start()
    tokenizer = engine.tokenizer
    gate = asyncio.Semaphore(concurrency)
    written = 0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("a", encoding="utf-8") as out:

        async def answer(index: int, turns: Conversation, sample: int) -> None:
            nonlocal written
            roles = ("user", "assistant")
            messages = [ChatMessage(role=roles[i % 2], content=t) for i, t in enumerate(turns)]
            rendered = tokenizer.render_chat(messages)
            prompt = tuple(tokenizer.encode(rendered, add_special_tokens=False))
            request = EngineRequest(
                request_id=RequestId(f"draft-data-{index}"),
                prompt_token_ids=prompt,
                sampling=answer_sampling(turns[0] if len(turns) == 1 else turns, sample),
                stopping=StoppingParams(max_tokens=max_tokens),
            )
            async with gate:
                answer_ids: list[TokenId] = []
                async for output in engine.generate(request):
                    answer_ids.extend(output.token_ids)
            record: dict[str, object] = {"text": turns[0], "sample": sample}
            if len(turns) > 1:
                record["turns"] = list(turns)
            record["prompt"] = list(prompt)
            record["answer"] = [int(t) for t in answer_ids]
            out.write(json.dumps(record) + "\n")
            out.flush()
            written += 1
            if written % 20 == 0:
                _log.info("draft_data_progress", written=written, todo=len(todo))

        try:
            await asyncio.gather(*(answer(i, turns, sample) for i, (turns, sample) in enumerate(todo)))
        finally:
            await engine.shutdown()
