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
from collections.abc import Sequence
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


SAMPLED_TEMPERATURE = 0.8
"""Temperature of the sampled answers (answer 0 is greedy)."""


@dataclass(frozen=True, slots=True)
class TrainingSequence:
    """One chat prompt and the target's greedy answer, as token ids."""

    prompt: tuple[int, ...]
    answer: tuple[int, ...]

    @property
    def tokens(self) -> tuple[int, ...]:
        return self.prompt + self.answer


def read_prompts(path: Path) -> list[str]:
    """Non-empty lines of a prompt file."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_sequences(path: Path) -> list[TrainingSequence]:
    """Sequences written by ``generate_sequences`` (empty if the file does not exist)."""
    if not path.exists():
        return []
    sequences = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        sequences.append(TrainingSequence(tuple(record["prompt"]), tuple(record["answer"])))
    return sequences


def _answered(path: Path) -> set[tuple[str, int]]:
    """(prompt, answer number) pairs already in ``path`` (records without a number are answer 0)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return {(record["text"], int(record.get("sample", 0))) for record in map(json.loads, lines)}


def answer_sampling(text: str, sample: int) -> SamplingParams:
    """Answer 0: greedy. Others: sampled, with a seed fixed by the prompt and the answer number."""
    if sample == 0:
        return SamplingParams(temperature=0.0)
    digest = hashlib.blake2b(f"{sample}:{text}".encode(), digest_size=8).digest()
    return SamplingParams(temperature=SAMPLED_TEMPERATURE, seed=int.from_bytes(digest, "little") >> 1)


async def generate_sequences(
    prompts: Sequence[str],
    out_path: Path,
    *,
    max_tokens: int,
    concurrency: int,
    threads: int | None = None,
    samples: int = 1,
) -> None:
    """Give every prompt ``samples`` answers (the first greedy) that ``out_path`` lacks; append them."""
    # Imported here: the engine pulls in torch and the weights, the readers above do not.
    from engines.native.engine import NativeEngine, NativeEngineConfig

    done = _answered(out_path)
    todo = [(p, k) for k in range(samples) for p in prompts if (p, k) not in done]
    _log.info("draft_data_generate", prompts=len(prompts), already_done=len(done), todo=len(todo))
    if not todo:
        return
    engine = NativeEngine(
        NativeEngineConfig(
            max_batch_size=concurrency, speculation=SpeculationMethod.OFF, draft_head=None, threads=threads
        )
    )
    await engine.start()
    tokenizer = engine.tokenizer
    gate = asyncio.Semaphore(concurrency)
    written = 0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("a", encoding="utf-8") as out:

        async def answer(index: int, text: str, sample: int) -> None:
            nonlocal written
            rendered = tokenizer.render_chat([ChatMessage(role="user", content=text)])
            prompt = tuple(tokenizer.encode(rendered, add_special_tokens=False))
            request = EngineRequest(
                request_id=RequestId(f"draft-data-{index}"),
                prompt_token_ids=prompt,
                sampling=answer_sampling(text, sample),
                stopping=StoppingParams(max_tokens=max_tokens),
            )
            async with gate:
                answer_ids: list[TokenId] = []
                async for output in engine.generate(request):
                    answer_ids.extend(output.token_ids)
            record = {
                "text": text,
                "sample": sample,
                "prompt": list(prompt),
                "answer": [int(t) for t in answer_ids],
            }
            out.write(json.dumps(record) + "\n")
            out.flush()
            written += 1
            if written % 20 == 0:
                _log.info("draft_data_progress", written=written, todo=len(todo))

        try:
            await asyncio.gather(*(answer(i, text, sample) for i, (text, sample) in enumerate(todo)))
        finally:
            await engine.shutdown()
